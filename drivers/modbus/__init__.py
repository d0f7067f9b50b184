"""Modbus TCP driver: device and point model (`config`), request planning (`plan`), decoding
(`decode`), links per host:port (`link`) and the driver (`driver`). See README.md beside it."""

"""OPC UA driver: device and point model (`config`) and the asyncua client driver (`driver`).
See README.md beside it."""

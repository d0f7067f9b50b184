"""drivers: one package per field protocol (`modbus/`, `opcua/`), each owning its device and point
model, and the shared pieces beside them (`base`: the driver protocol, `config`: common fields)."""

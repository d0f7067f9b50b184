"""simulators: plant equipment models on a simulated clock, served by real Modbus TCP and OPC UA servers."""

"""simulators: plant equipment models on a simulated clock, served by real Modbus TCP and OPC UA servers."""

# gateway.config reads the `simulation:` section with simulators.config, which builds on
# gateway.config's base classes. Loading gateway.config first resolves that import cycle whichever
# of the two modules a program imports first.
from ferrogate.gateway import config as _gateway_config  # noqa: F401

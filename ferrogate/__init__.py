"""ferrogate: plant telemetry and energy-management gateway."""

__version__ = "0.1.0"

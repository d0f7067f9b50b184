"""InfluxQL pieces the routes share: string literals and the derived series' retention policy."""

from __future__ import annotations

from ferrogate.gateway.influx import influxql_string
from ferrogate.gateway.influx_setup import DERIVED_POLICY

q = influxql_string  # an InfluxQL string literal (one implementation with the gateway's services)


def measurement(name: str) -> str:
    """A derived measurement (retention policy `long`)."""
    return f'"{DERIVED_POLICY}"."{name}"'

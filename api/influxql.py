"""InfluxQL pieces the routes share: string literals and the derived series' retention policy."""

from __future__ import annotations

from ferrogate.gateway.influx_setup import DERIVED_POLICY


def q(text: str) -> str:
    """An InfluxQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def measurement(name: str) -> str:
    """A derived measurement (retention policy `long`)."""
    return f'"{DERIVED_POLICY}"."{name}"'

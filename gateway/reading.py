"""The normalised value every driver produces, and the per-scan batch that carries it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Quality(StrEnum):
    """OPC UA's three quality classes; the detail goes in the reading's reason."""

    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"


# Reasons used across drivers, so consumers can count them; free text may follow after ': '.
COMM_ERROR = "comm_error"
TIMEOUT = "timeout"
DEVICE_EXCEPTION = "device_exception"
NOT_FINITE = "not_finite"
CLOCK_STEP = "clock_step"  # stamped by the gateway while its wall clock had stepped (timeutil.GatewayClock)
SENTINEL = "sentinel"  # an integer register's "not available" value (e.g. 0xFFFFFFFF)
OUT_OF_RANGE = "out_of_range"
SENSOR_FAULT = "sensor_fault"
STALE = "stale"
COUNTER_RESET = "counter_reset"
CONFIG_ERROR = "config_error"


@dataclass(slots=True)
class Reading:
    """One value of one point. `value` is None only when quality is BAD (never a fake 0)."""

    point: str
    value: float | None
    unit: str
    source_time_ns: int
    quality: Quality = Quality.GOOD
    reason: str | None = None


@dataclass(slots=True)
class ScanBatch:
    """All readings of one device scan: the unit of publishing (one MQTT message)."""

    site: str
    device: str
    seq: int
    gateway_time_ns: int
    readings: list[Reading] = field(default_factory=list)
    # point id -> asset id, shared per device (not copied per scan)
    assets: dict[str, str] = field(default_factory=dict)

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


PLAIN_GOOD: tuple[Quality, str | None] = (Quality.GOOD, None)


@dataclass(slots=True)
class Columns:
    """A checked `ferrogate/2` message as its aligned arrays, before any Reading is made: ingest turns
    these into line protocol directly (gateway/lineprotocol.py), without a Python object per reading.

    `values[i]` is a float, or None exactly when the reading is bad; `special` maps the index of every
    reading that is not plainly good to its (quality, reason); `time_ns` is every reading's source time,
    or None with `times` holding one each."""

    site: str
    device: str
    seq: int
    gateway_time_ns: int
    points: list[str]
    units: list[str]
    values: list[float | None]
    time_ns: int | None
    times: list[int] | None
    special: dict[int, tuple[Quality, str | None]]
    assets: dict[str, str]

    def batch(self) -> ScanBatch:
        special, time_ns, times = self.special, self.time_ns, self.times
        if times is None:
            times = [time_ns] * len(self.points)  # type: ignore[list-item]
        if special:
            readings = [
                Reading(point, value, unit, t, *special.get(i, PLAIN_GOOD))
                for i, (point, unit, value, t) in enumerate(
                    zip(self.points, self.units, self.values, times, strict=True)
                )
            ]
        else:
            readings = list(map(Reading, self.points, self.values, self.units, times))
        return ScanBatch(self.site, self.device, self.seq, self.gateway_time_ns, readings, self.assets)

"""What every field-device driver offers the collector. Drivers only read; they never write."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ferrogate.gateway.reading import COMM_ERROR, TIMEOUT, Quality, Reading
from ferrogate.gateway.timeutil import GATEWAY_CLOCK


class Driver(Protocol):
    device_id: str

    async def connect(self) -> None:
        """Open the connection (or make sure it is open); raising is allowed (the collector
        retries with backoff)."""

    def group(self, point_ids: Sequence[str]) -> object:
        """Prepare reading a subset of the points (a scan class): planned once, read each scan."""

    async def read(self, group: object | None = None) -> list[Reading]:
        """Read the group's points (all points without one) once. Communication problems become
        BAD readings with a reason starting with 'comm_error' or 'timeout', not exceptions."""

    async def close(self) -> None: ...


def now_ns() -> int:
    """The gateway's time (kept in order across wall-clock steps: timeutil.GatewayClock)."""
    return GATEWAY_CLOCK.now_ns()


def bad_readings(points: list[tuple[str, str]], reason: str, time_ns: int) -> list[Reading]:
    """BAD readings for (point_id, unit) pairs that could not be read, keeping the reason."""
    return [Reading(pid, None, unit, time_ns, Quality.BAD, reason) for pid, unit in points]


def is_comm_failure(reason: str | None) -> bool:
    """The device did not answer at all (as opposed to answering with an error or a bad value)."""
    return reason is not None and reason.startswith((COMM_ERROR, TIMEOUT))

"""What every field-device driver offers the collector. Drivers only read; they never write."""

from __future__ import annotations

import time
from typing import Protocol

from ferrogate.gateway.reading import Quality, Reading


class Driver(Protocol):
    device_id: str

    async def connect(self) -> None:
        """Open the connection; raising is allowed (the collector retries with backoff)."""

    async def read(self) -> list[Reading]:
        """Read every point once. Communication problems become BAD readings, not exceptions."""

    async def close(self) -> None: ...


def now_ns() -> int:
    return time.time_ns()


def bad_readings(points: list[tuple[str, str]], reason: str, time_ns: int) -> list[Reading]:
    """BAD readings for (point_id, unit) pairs that could not be read, keeping the reason."""
    return [Reading(pid, None, unit, time_ns, Quality.BAD, reason) for pid, unit in points]

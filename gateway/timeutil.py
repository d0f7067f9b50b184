"""Exact conversions between Unix nanoseconds and datetimes (no float rounding), and the gateway's
clock (`GatewayClock`: the wall clock, kept in order across steps)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ns_to_datetime(ns: int) -> datetime:
    """UTC datetime of Unix nanoseconds, truncated to microseconds (datetime's resolution)."""
    return datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC).replace(microsecond=(ns // 1000) % 1_000_000)


def datetime_to_ns(value: datetime) -> int:
    """Unix nanoseconds of a datetime; a naive one is taken as UTC (as OPC UA libraries return)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def iso_utc(ns: int) -> str:
    """ISO 8601 UTC with milliseconds and a 'Z', e.g. 2026-11-23T04:05:06.789Z."""
    return ns_to_datetime(ns).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*")
_DURATION_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_seconds(text: str) -> float:
    """'90', '90s', '15m', '6h', '2d' -> seconds (plant files and the command line alike)."""
    m = _DURATION.fullmatch(text)
    if not m:
        raise ValueError(f"not a duration: {text!r} (use seconds or e.g. 90s, 15m, 6h)")
    return float(m.group(1)) * _DURATION_UNIT_S[m.group(2)]


NS_PER_S = 1_000_000_000


class GatewayClock:
    """The gateway's own time: what it stamps readings with when a device gives none (a meter without
    a clock register, the BAD readings it makes up for a silent device, a batch's gateway time) and
    what device clocks are compared against. Its stamps only go forward: no two alike, never one
    before the last, so rows stay in order and none overwrites another in the database.

    It follows the wall clock while the wall clock keeps pace with the monotonic clock (NTP's slew
    stays within `tolerance_s`). When the wall clock steps (NTP correcting a bad clock, an operator,
    a VM resumed), the stamps go on along the monotonic clock from the last agreed time. If the wall
    clock comes back within `settle_s`, nothing else happens. If its new time holds that long, it is
    taken over: ahead, the stamps jump to it; back, they wait just after the last stamp given until
    the wall clock passes it. Whenever a stamp is more than `tolerance_s` off the wall clock,
    `stepped_ns` says by how much (wall - stamp), and the collector flags the readings it stamps
    `clock_step`. `wall` and `monotonic` are injectable (tests step the wall clock)."""

    def __init__(
        self,
        wall: Callable[[], int] = time.time_ns,
        monotonic: Callable[[], int] = time.monotonic_ns,
        tolerance_s: float = 2.0,
        settle_s: float = 60.0,
    ) -> None:
        self.wall = wall
        self.monotonic = monotonic
        self.tolerance_ns = int(tolerance_s * NS_PER_S)
        self.settle_ns = int(settle_s * NS_PER_S)
        self._offset = wall() - monotonic()  # wall - monotonic while they agree
        self._last = 0  # the last stamp given
        self._pending: tuple[int, int] | None = None  # (wall - ours, monotonic at first sight) of a step
        self.stepped_ns = 0  # how far the wall clock is off the last stamp (0: within the tolerance)
        self.steps = 0  # steps of the wall clock seen

    def now_ns(self) -> int:
        wall, mono = self.wall(), self.monotonic()
        t = mono + self._offset
        off = wall - t
        if abs(off) <= self.tolerance_ns:  # in pace (or back in pace): follow the wall clock, slew included
            self._offset, self._pending = wall - mono, None
            t = wall
        else:
            pending = self._pending
            if pending is None or abs(off - pending[0]) > self.tolerance_ns:  # a new step
                self.steps += 1
                self._pending = pending = (off, mono)
            if mono - pending[1] >= self.settle_ns:  # the new time held: take it over
                self._offset, self._pending = wall - mono, None
                t = wall
        t = max(t, self._last + 1)
        self._last = t
        self.stepped_ns = wall - t if abs(wall - t) > self.tolerance_ns else 0
        return t


GATEWAY_CLOCK = GatewayClock()  # the process's gateway clock (drivers, collector, books)

"""Cumulative curves built from intervals, and the quantity at or between event times.

The quantity at an event's time (a tap) is interpolated linearly inside the interval that brackets
it, so per-heat figures do not depend on the scan interval: a heat's energy is curve(tap) -
curve(previous tap), whatever the readings' spacing. Windows report the worst quality and every
flag of the intervals they touch, and whether readings cover the whole window. A window edge
interpolated inside an interval longer than `interpolation_gap_ns` (readings missing for a while: a
device that did not answer) is an estimate: the window is Uncertain with `interpolated_gap`, for the
load between two readings that far apart need not have been even (a tap inside a 20-minute gap).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field

from ferrogate.gateway.energy.counters import Flag, Interval
from ferrogate.gateway.reading import Quality

_RANK = {Quality.GOOD: 0, Quality.UNCERTAIN: 1, Quality.BAD: 2}


@dataclass(slots=True)
class Amount:
    """A quantity over a window with its quality, the flags met, and whether data covered it all."""

    value: float = 0.0
    quality: Quality = Quality.GOOD
    flags: set[str] = field(default_factory=set)
    covered: bool = True

    def add(self, other: Amount, scale: float = 1.0) -> None:
        self.value += other.value * scale
        if _RANK[other.quality] > _RANK[self.quality]:
            self.quality = other.quality
        self.flags |= other.flags
        self.covered = self.covered and other.covered


class Curve:
    """Cumulative accounted quantity over time, piecewise linear between readings.

    An interval whose amount is unknown adds nothing to the cumulative value but makes any window
    touching it BAD with its flags: the gap is visible, never a silent zero.
    """

    __slots__ = ("_flagged", "_flagged_ends", "cum", "ends", "interpolation_gap_ns", "intervals", "starts")

    def __init__(self, intervals: Sequence[Interval], interpolation_gap_ns: int | None = None) -> None:
        self.intervals = list(intervals)
        self.interpolation_gap_ns = interpolation_gap_ns
        self.starts = [iv.start_ns for iv in self.intervals]
        self.ends = [iv.end_ns for iv in self.intervals]
        cum = [0.0]
        total = 0.0
        for iv in self.intervals:
            total += iv.amount or 0.0
            cum.append(total)
        self.cum = cum  # cum[i] = quantity up to the start of interval i
        # quality and flags are rare: index only the intervals that have them
        self._flagged = [i for i, iv in enumerate(self.intervals) if iv.flags or iv.quality is not Quality.GOOD]
        self._flagged_ends = [self.intervals[i].end_ns for i in self._flagged]

    @property
    def first_ns(self) -> int | None:
        return self.starts[0] if self.intervals else None

    @property
    def last_ns(self) -> int | None:
        return self.ends[-1] if self.intervals else None

    def at(self, t_ns: int) -> float:
        """Cumulative quantity at `t_ns`, clamped to the covered span (see `between` for coverage)."""
        if not self.intervals:
            return 0.0
        i = bisect_right(self.ends, t_ns - 1)  # first interval ending at or after t
        if i >= len(self.intervals):
            return self.cum[-1]
        iv = self.intervals[i]
        if t_ns <= iv.start_ns:
            return self.cum[i]
        amount = iv.amount or 0.0
        return self.cum[i] + amount * (t_ns - iv.start_ns) / (iv.end_ns - iv.start_ns)

    def between(self, t0_ns: int, t1_ns: int) -> Amount:
        if not self.intervals:
            return Amount(0.0, Quality.BAD, {"no_data"}, False)
        out = Amount(self.at(t1_ns) - self.at(t0_ns))
        if t0_ns < self.starts[0] or t1_ns > self.ends[-1]:
            out.covered = False
        if self.interpolation_gap_ns is not None and (self._inside_gap(t0_ns) or self._inside_gap(t1_ns)):
            out.quality = Quality.UNCERTAIN
            out.flags.add(Flag.interpolated_gap)
        lo = bisect_right(self._flagged_ends, t0_ns)
        for k in range(lo, len(self._flagged)):
            iv = self.intervals[self._flagged[k]]
            if iv.start_ns >= t1_ns:
                break
            if _RANK[iv.quality] > _RANK[out.quality]:
                out.quality = iv.quality
            out.flags.update(iv.flags)
        return out

    def longest_interval(self, t0_ns: int, t1_ns: int) -> int:
        """The longest interval overlapping [t0_ns, t1_ns] (0 when none does)."""
        i = bisect_right(self.ends, t0_ns)
        longest = 0
        while i < len(self.intervals) and self.starts[i] < t1_ns:
            longest = max(longest, self.ends[i] - self.starts[i])
            i += 1
        return longest

    def _inside_gap(self, t_ns: int) -> bool:
        """Whether `t_ns` lies strictly inside an interval longer than the interpolation gap."""
        i = bisect_right(self.ends, t_ns - 1)
        if i >= len(self.intervals):
            return False
        iv = self.intervals[i]
        return iv.start_ns < t_ns < iv.end_ns and iv.end_ns - iv.start_ns > self.interpolation_gap_ns  # type: ignore[operator]


def bridge(counter: Sequence[Interval], power: Curve | None, max_power_gap_ns: int | None = None) -> list[Interval]:
    """Fill intervals a counter could not account (a reset or replacement, an implausible jump)
    with integrated power over the same span, marked Uncertain and flagged. A reset's own estimate
    (the new meter's reading) misses what was used before it restarted, so power is preferred, but
    only where power was read at least every `max_power_gap_ns`: a trapezoid across an outage (a
    meter replaced while the device was unreachable) can hold energy that was never used."""
    if power is None:
        return list(counter)
    out = []
    for iv in counter:
        if iv.amount is None or Flag.counter_reset in iv.flags:
            estimate = power.between(iv.start_ns, iv.end_ns)
            dense = max_power_gap_ns is None or power.longest_interval(iv.start_ns, iv.end_ns) <= max_power_gap_ns
            if estimate.covered and estimate.quality is not Quality.BAD and dense:
                iv = Interval(
                    iv.start_ns,
                    iv.end_ns,
                    estimate.value,
                    Quality.UNCERTAIN,
                    (*iv.flags, Flag.bridged_by_power),
                    iv.raw_delta,
                )
        out.append(iv)
    return out


def scaled(amount: Amount, factor: float) -> Amount:
    return Amount(amount.value * factor, amount.quality, set(amount.flags), amount.covered)

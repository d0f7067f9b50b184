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

from array import array
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field

from ferrogate.gateway.energy.counters import Columns, Flag, Interval, Mark
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

    Kept as columns (`Columns`): a day of 1-second readings is ~86,400 intervals per meter, and an
    object for each was most of a recompute's time and memory.
    """

    __slots__ = (
        "_longest",
        "_run_ends",
        "_run_firsts",
        "_run_lasts",
        "_run_marks",
        "amounts",
        "cum",
        "ends",
        "interpolation_gap_ns",
        "special",
        "starts",
    )

    def __init__(self, intervals: Sequence[Interval] | Columns, interpolation_gap_ns: int | None = None) -> None:
        cols = intervals if isinstance(intervals, Columns) else Columns.of(intervals)
        self.starts, self.ends, self.amounts, self.special = cols
        self.interpolation_gap_ns = interpolation_gap_ns
        cum = array("d", [0.0])  # 8 bytes a value, not a float object each
        total = 0.0
        for amount in self.amounts:
            total += amount or 0.0
            cum.append(total)
        self.cum = cum  # cum[i] = quantity up to the start of interval i
        self._index_marks()
        self._longest: int | None = None  # the longest interval, once asked for

    def _index_marks(self) -> None:
        """Runs of consecutive intervals with the same quality and flags (rare, or a few long runs:
        a remainder negative all day), so a window walks runs, not every interval in them."""
        firsts: list[int] = []
        lasts: list[int] = []
        marks: list[Mark] = []
        for i in sorted(self.special):
            mark = self.special[i]
            if not mark.flags and mark.quality is Quality.GOOD:
                continue
            if lasts and lasts[-1] == i - 1 and marks[-1][:2] == mark[:2]:
                lasts[-1] = i
            else:
                firsts.append(i)
                lasts.append(i)
                marks.append(mark)
        self._run_firsts, self._run_lasts, self._run_marks = firsts, lasts, marks
        self._run_ends = [self.ends[i] for i in lasts]

    @property
    def intervals(self) -> list[Interval]:
        """Every interval as an object (tests, audits; made on demand)."""
        return Columns(self.starts, self.ends, self.amounts, self.special).intervals()

    @property
    def first_ns(self) -> int | None:
        return self.starts[0] if self.starts else None

    @property
    def last_ns(self) -> int | None:
        return self.ends[-1] if self.ends else None

    def at(self, t_ns: int) -> float:
        """Cumulative quantity at `t_ns`, clamped to the covered span (see `between` for coverage)."""
        if not self.starts:
            return 0.0
        return self._at(bisect_right(self.ends, t_ns - 1), t_ns)  # first interval ending at or after t

    def _at(self, i: int, t_ns: int) -> float:
        """`at` with the first interval ending at or after `t_ns` already found."""
        if i >= len(self.starts):
            return self.cum[-1]
        start = self.starts[i]
        if t_ns <= start:
            return self.cum[i]
        amount = self.amounts[i] or 0.0
        return self.cum[i] + amount * (t_ns - start) / (self.ends[i] - start)

    def between(self, t0_ns: int, t1_ns: int) -> Amount:
        if not self.starts:
            return Amount(0.0, Quality.BAD, {"no_data"}, False)
        out = Amount(self.at(t1_ns) - self.at(t0_ns))
        if t0_ns < self.starts[0] or t1_ns > self.ends[-1]:
            out.covered = False
        self._mark(out, t0_ns, t1_ns)
        return out

    def _mark(self, out: Amount, t0_ns: int, t1_ns: int) -> None:
        """The quality and flags of the window [t0_ns, t1_ns] onto `out`."""
        if self.interpolation_gap_ns is not None and (self._inside_gap(t0_ns) or self._inside_gap(t1_ns)):
            out.quality = Quality.UNCERTAIN
            out.flags.add(Flag.interpolated_gap)
        # every interval ending after t0 and starting before t1 (one search per run that reaches t0)
        ends, starts = self.ends, self.starts
        for k in range(bisect_right(self._run_ends, t0_ns), len(self._run_marks)):
            first = bisect_right(ends, t0_ns, self._run_firsts[k], self._run_lasts[k] + 1)
            if starts[first] >= t1_ns:
                break
            mark = self._run_marks[k]
            if _RANK[mark.quality] > _RANK[out.quality]:
                out.quality = mark.quality
            out.flags.update(mark.flags)

    def windows(self, t0s: Sequence[int], t1s: Sequence[int]) -> tuple[list[float], list[Quality]]:
        """`between(t0, t1)`'s value and quality for many windows at once, in time order (both
        sequences non-decreasing): one walk instead of a search and an `Amount` per window."""
        if not self.starts:
            return [0.0] * len(t0s), [Quality.BAD] * len(t0s)
        values = [b - a for a, b in zip(self._at_each(t0s), self._at_each(t1s), strict=True)]
        gap = self.interpolation_gap_ns
        if not self._run_marks and (gap is None or self.longest() <= gap):
            return values, [Quality.GOOD] * len(values)  # nothing in the curve can mark a window
        qualities = []
        for t0, t1 in zip(t0s, t1s, strict=True):
            out = Amount()
            self._mark(out, t0, t1)
            qualities.append(out.quality)
        return values, qualities

    def _at_each(self, times: Sequence[int]) -> list[float]:
        """`at` of each time (non-decreasing), its interval found by walking; `_at`'s formula inlined,
        for this loop runs once per interval of another curve."""
        starts, ends, amounts, cum = self.starts, self.ends, self.amounts, self.cum
        n, total = len(ends), cum[-1]
        out = []
        i = 0
        for t in times:
            while i < n and ends[i] < t:  # bisect_right(ends, t - 1), walked
                i += 1
            if i >= n:
                out.append(total)
                continue
            start = starts[i]
            if t <= start:
                out.append(cum[i])
            else:
                out.append(cum[i] + (amounts[i] or 0.0) * (t - start) / (ends[i] - start))
        return out

    def longest(self) -> int:
        if self._longest is None:
            self._longest = max((e - s for s, e in zip(self.starts, self.ends, strict=True)), default=0)
        return self._longest

    def longest_interval(self, t0_ns: int, t1_ns: int) -> int:
        """The longest interval overlapping [t0_ns, t1_ns] (0 when none does)."""
        i = bisect_right(self.ends, t0_ns)
        longest = 0
        while i < len(self.starts) and self.starts[i] < t1_ns:
            longest = max(longest, self.ends[i] - self.starts[i])
            i += 1
        return longest

    def _inside_gap(self, t_ns: int) -> bool:
        """Whether `t_ns` lies strictly inside an interval longer than the interpolation gap."""
        i = bisect_right(self.ends, t_ns - 1)
        if i >= len(self.starts):
            return False
        start, end = self.starts[i], self.ends[i]
        return start < t_ns < end and end - start > self.interpolation_gap_ns  # type: ignore[operator]


def bridge(counter: Sequence[Interval], power: Curve | None, max_power_gap_ns: int | None = None) -> list[Interval]:
    """`bridged` on a list of intervals."""
    return bridged(Columns.of(counter), power, max_power_gap_ns).intervals()


def bridged(counter: Columns, power: Curve | None, max_power_gap_ns: int | None = None) -> Columns:
    """Fill intervals a counter could not account (a reset or replacement, an implausible jump)
    with integrated power over the same span, marked Uncertain and flagged. A reset's own estimate
    (the new meter's reading) misses what was used before it restarted, so power is preferred, but
    only where power was read at least every `max_power_gap_ns`: a trapezoid across an outage (a
    meter replaced while the device was unreachable) can hold energy that was never used."""
    if power is None:
        return counter
    amounts, special = list(counter.amounts), dict(counter.special)
    starts, ends = counter.starts, counter.ends
    for i, mark in counter.special.items():  # an unknown amount or a reset is never a plain interval
        if counter.amounts[i] is None or Flag.counter_reset in mark.flags:
            estimate = power.between(starts[i], ends[i])
            dense = max_power_gap_ns is None or power.longest_interval(starts[i], ends[i]) <= max_power_gap_ns
            if estimate.covered and estimate.quality is not Quality.BAD and dense:
                special[i] = Mark(Quality.UNCERTAIN, (*mark.flags, Flag.bridged_by_power), mark.raw_delta)
                amounts[i] = estimate.value
    return Columns(counter.starts, counter.ends, amounts, special)


def scaled(amount: Amount, factor: float) -> Amount:
    return Amount(amount.value * factor, amount.quality, set(amount.flags), amount.covered)

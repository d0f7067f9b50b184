"""Interval quantities from cumulative counters, and from power integration where no counter exists.

Rules (docs/accounting.md §2): the delta between consecutive usable readings is the interval's
quantity; a negative delta is a rollover when adding the register's modulus gives a plausible
value, otherwise a meter reset/replacement (flagged; bridged by the new reading when the meter
restarted from zero); a delta above rated power x elapsed time is an implausible jump (flagged,
not counted). Bad readings carry no value: the next good reading's delta spans the gap, so a
communication outage loses no energy. Power is integrated (trapezoid) only where no counter
exists, and an interval longer than the allowed gap is Uncertain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from ferrogate.gateway.reading import Quality

NS_PER_HOUR = 3_600_000_000_000


class Flag(StrEnum):
    rollover = "rollover"
    counter_reset = "counter_reset"
    implausible_jump = "implausible_jump"
    uncertain_reading = "uncertain_reading"
    gap = "gap"
    bridged_by_power = "bridged_by_power"
    negative_remainder = "negative_remainder"
    idle_equal_split = "idle_equal_split"
    interpolated_gap = "interpolated_gap"
    power_mismatch = "power_mismatch"


@dataclass(frozen=True, slots=True)
class CounterSpec:
    """What is known about one counter register, in engineering units after scaling."""

    modulus: float | None = None  # the value at which the register wraps to 0 (2^bits x scale)
    max_rate_per_h: float | None = None  # rated power (kWh per hour) or maximum flow; None: no jump check
    tolerance: float = 0.10  # a delta may exceed rate x elapsed by this fraction
    resolution: float = 0.0  # one counter step (integer registers truncate)


@dataclass(frozen=True, slots=True)
class Interval:
    """Accounted quantity between two readings. `amount` None: unknown (never a silent zero)."""

    start_ns: int
    end_ns: int
    amount: float | None
    quality: Quality
    flags: tuple[Flag, ...] = ()
    raw_delta: float | None = None  # what the counter itself said, kept for audit


def worst(a: Quality, b: Quality) -> Quality:
    if a is Quality.BAD or b is Quality.BAD:
        return Quality.BAD
    if a is Quality.UNCERTAIN or b is Quality.UNCERTAIN:
        return Quality.UNCERTAIN
    return Quality.GOOD


class Mark(NamedTuple):
    """What an interval carries besides its span and amount, where it is not plain Good."""

    quality: Quality
    flags: tuple[str, ...] = ()
    raw_delta: float | None = None


class Columns(NamedTuple):
    """Intervals as columns: a day of 1-second readings is about 86,400 intervals per meter, nearly all
    plain (Good, no flags, amount known), so only the others have a `Mark`, by index (one mark may
    serve many intervals)."""

    starts: list[int]
    ends: list[int]
    amounts: list[float | None]
    special: dict[int, Mark]

    @classmethod
    def of(cls, intervals: Sequence[Interval]) -> Columns:
        intervals = list(intervals)
        good = Quality.GOOD
        special = {
            i: Mark(iv.quality, iv.flags, iv.raw_delta)
            for i, iv in enumerate(intervals)
            if iv.amount is None or iv.flags or iv.quality is not good or iv.raw_delta is not None
        }
        return cls(
            [iv.start_ns for iv in intervals], [iv.end_ns for iv in intervals], [iv.amount for iv in intervals], special
        )

    def intervals(self) -> list[Interval]:
        special, good = self.special, Quality.GOOD
        return [
            Interval(s, e, a, *special[i]) if i in special else Interval(s, e, a, good)  # type: ignore[arg-type]
            for i, (s, e, a) in enumerate(zip(self.starts, self.ends, self.amounts, strict=True))
        ]


def counter_intervals(
    times: list[int], values: list[float], qualities: list[Quality], spec: CounterSpec
) -> list[Interval]:
    """One interval per pair of consecutive usable readings (inputs: `series.usable`)."""
    return counter_columns(times, values, qualities, spec).intervals()


def counter_columns(times: list[int], values: list[float], qualities: list[Quality], spec: CounterSpec) -> Columns:
    """`counter_intervals` as columns, with no object per plain interval."""
    amounts: list[float | None] = []
    special: dict[int, Mark] = {}
    modulus, rate = spec.modulus, spec.max_rate_per_h
    slack = 1.0 + spec.tolerance
    good = Quality.GOOD
    for i in range(1, len(times)):
        t0, t1 = times[i - 1], times[i]
        v0, v1 = values[i - 1], values[i]
        delta = v1 - v0
        limit = rate * (t1 - t0) / NS_PER_HOUR * slack + spec.resolution if rate is not None else None
        quality = good if qualities[i - 1] is good and qualities[i] is good else Quality.UNCERTAIN
        if delta >= 0 and (limit is None or delta <= limit):
            amounts.append(delta)
            if quality is not good:
                special[i - 1] = Mark(quality, (Flag.uncertain_reading,), delta)
            continue
        amount: float | None
        if delta >= 0:  # above what the meter can physically count in the time
            amount, mark = None, Mark(Quality.BAD, (Flag.implausible_jump,), delta)
        elif modulus is not None and _is_rollover(v0, v1, delta + modulus, modulus, limit):
            amount, mark = delta + modulus, Mark(quality, (Flag.rollover,), delta)
        elif v1 >= 0 and (limit is None or v1 <= limit):
            # reset or replacement: a meter that restarted from zero has counted v1 since
            amount, mark = v1, Mark(Quality.UNCERTAIN, (Flag.counter_reset,), delta)
        else:
            amount, mark = None, Mark(Quality.BAD, (Flag.counter_reset,), delta)
        amounts.append(amount)
        special[i - 1] = mark
    return Columns(times[:-1], times[1:], amounts, special)


def _is_rollover(v0: float, v1: float, wrapped: float, modulus: float, limit: float | None) -> bool:
    if limit is not None:
        return 0 <= wrapped <= limit
    # no rated power known: a wrap goes from the top half of the range to the bottom half
    return v0 > modulus / 2 > v1 >= 0


def power_intervals(
    times: list[int], values: list[float], qualities: list[Quality], max_gap_s: float
) -> list[Interval]:
    """Trapezoid integration of power (kW) into energy (kWh) between consecutive usable readings."""
    out: list[Interval] = []
    max_gap_ns = max_gap_s * 1e9
    good = Quality.GOOD
    for i in range(1, len(times)):
        t0, t1 = times[i - 1], times[i]
        kwh = (values[i - 1] + values[i]) / 2 * (t1 - t0) / NS_PER_HOUR
        flags: tuple[Flag, ...] = ()
        quality = good if qualities[i - 1] is good and qualities[i] is good else Quality.UNCERTAIN
        if quality is not good:
            flags = (Flag.uncertain_reading,)
        if t1 - t0 > max_gap_ns:
            quality, flags = Quality.UNCERTAIN, (*flags, Flag.gap)
        out.append(Interval(t0, t1, kwh, quality, flags))
    return out

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

from dataclasses import dataclass
from enum import StrEnum

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


def counter_intervals(
    times: list[int], values: list[float], qualities: list[Quality], spec: CounterSpec
) -> list[Interval]:
    """One interval per pair of consecutive usable readings (inputs: `series.usable`)."""
    out: list[Interval] = []
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
            if quality is good:
                out.append(Interval(t0, t1, delta, good))
            else:
                out.append(Interval(t0, t1, delta, quality, (Flag.uncertain_reading,), delta))
            continue
        if delta >= 0:  # above what the meter can physically count in the time
            out.append(Interval(t0, t1, None, Quality.BAD, (Flag.implausible_jump,), delta))
            continue
        if modulus is not None and _is_rollover(v0, v1, delta + modulus, modulus, limit):
            out.append(Interval(t0, t1, delta + modulus, quality, (Flag.rollover,), delta))
            continue
        # reset or replacement: a meter that restarted from zero has counted v1 since
        if v1 >= 0 and (limit is None or v1 <= limit):
            out.append(Interval(t0, t1, v1, Quality.UNCERTAIN, (Flag.counter_reset,), delta))
        else:
            out.append(Interval(t0, t1, None, Quality.BAD, (Flag.counter_reset,), delta))
    return out


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

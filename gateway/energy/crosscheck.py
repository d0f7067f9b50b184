"""A counter's intervals checked against the same asset's integrated active power (docs/accounting.md §2).

A counter that stops while the load goes on (a meter or gateway holding a stale value: the device
says `good`) and then catches up is not caught by the jump check when the catch-up stays under rated
power x elapsed: the energy lands silently in the next interval, and across a tap in the next heat.
Where the asset also has an active power meter, each counter interval is compared with the trapezoid
of the power readings over the same span; a disagreement beyond what sampling can explain marks the
interval Uncertain with `power_mismatch`. The counter's amount is kept (it is still the better
figure over a heat: a catch-up only moves energy, it invents none); the flag says the books cannot
vouch for where it fell.

What sampling can explain: a load that switches once between two power readings (an EAF's arc on or
off) makes the trapezoid miss by up to half the step times the span, |p1 - p0| / 2 x dt, summed over
the power readings inside the counter's interval; on top, `tolerance` x rated power x elapsed for
the load's fluctuation around what the two readings show, and one counter step. A counter flat
while power reads a steady load above that tolerance, or a catch-up above the power integral by more,
is a mismatch. The check needs power read at least every `max_gap_ns` over the interval (a trapezoid
across an outage can neither vouch nor accuse) and a rated power to scale the tolerance.

Pure: readings in, intervals out.
"""

from __future__ import annotations

from collections.abc import Sequence

from ferrogate.gateway.energy.counters import NS_PER_HOUR, Columns, CounterSpec, Flag, Interval, Mark
from ferrogate.gateway.reading import Quality

Readings = tuple[list[int], list[float], list[Quality]]  # usable power readings (kW), as `series.usable` gives


def cross_check(
    intervals: Sequence[Interval], power: Readings, spec: CounterSpec, tolerance: float, max_gap_ns: int
) -> list[Interval]:
    """`checked` on a list of intervals."""
    return checked(Columns.of(intervals), power, spec, tolerance, max_gap_ns).intervals()


def checked(counter: Columns, power: Readings, spec: CounterSpec, tolerance: float, max_gap_ns: int) -> Columns:
    """A counter's intervals (in time order, energy in kWh) with those that disagree with the power
    integral marked Uncertain and `power_mismatch`. Without a rated power nothing is checked."""
    rated = spec.max_rate_per_h
    times, values, _ = power
    if rated is None or len(times) < 2:
        return counter
    starts, ends, amounts, marks = counter
    special: dict[int, Mark] | None = None  # copied on the first mismatch
    per_ns, resolution = tolerance * rated / NS_PER_HOUR, spec.resolution
    j = 1  # times[j - 1] <= start < times[j]: the power reading pair bracketing an interval's start
    n = len(times)
    for i, t0 in enumerate(starts):
        while j < n and times[j] <= t0:
            j += 1
        amount = amounts[i]
        if j >= n:
            break  # power ends here: nothing further to check against
        if amount is None or times[j - 1] > t0:
            continue  # not counted (bridged later), or power does not bracket the start
        mark = marks.get(i)
        if mark is not None and Flag.counter_reset in mark.flags:
            continue  # the new meter's reading is a lower bound; bridged later
        t1 = ends[i]
        if times[j - 1] == t0 and times[j] == t1 and t1 - t0 <= max_gap_ns:
            # the usual case, power read in the counter's scan: one trapezoid, inlined (once per reading)
            p0, p1 = values[j - 1], values[j]
            dt_h = (t1 - t0) / NS_PER_HOUR
            expected, step = (p0 + p1) / 2 * dt_h, abs(p1 - p0) / 2 * dt_h
        else:
            expected, step = _integral(times, values, j, t0, t1, max_gap_ns)
        if expected is None or abs(amount - expected) <= step + per_ns * (t1 - t0) + resolution:
            continue
        if special is None:
            special = dict(marks)
        flags = (*mark.flags, Flag.power_mismatch) if mark is not None else (Flag.power_mismatch,)
        special[i] = Mark(Quality.UNCERTAIN, flags, mark.raw_delta if mark is not None else None)
    return counter if special is None else Columns(starts, ends, amounts, special)


def _integral(
    times: list[int], values: list[float], j: int, t0: int, t1: int, max_gap_ns: int
) -> tuple[float | None, float]:
    """Trapezoid of power (kW) over [t0, t1] in kWh, and the most a single switch of the load
    between each pair of power readings can make it miss: |p1 - p0| / 2 x dt for a pair the span
    covers whole, |p1 - p0| x dt for the part of one it cuts (power read at other times than the
    counter). None when power has a gap longer than `max_gap_ns` over the span or ends before it.
    `times[j - 1] <= t0 < times[j]`."""
    n = len(times)
    kwh = step = 0.0
    t, p = t0, _at(times, values, j, t0)
    while True:
        if j >= n or times[j] - times[j - 1] > max_gap_ns:
            return None, 0.0
        t_next = min(times[j], t1)
        p_next = values[j] if t_next == times[j] else _at(times, values, j, t_next)
        dt_h = (t_next - t) / NS_PER_HOUR
        kwh += (p + p_next) / 2 * dt_h
        whole = t == times[j - 1] and t_next == times[j]
        step += abs(values[j] - values[j - 1]) * dt_h * (0.5 if whole else 1.0)
        if t_next >= t1:
            return kwh, step
        t, p = t_next, p_next
        j += 1


def _at(times: list[int], values: list[float], j: int, t: int) -> float:
    """Power at `t`, linear between readings j - 1 and j."""
    t0, t1 = times[j - 1], times[j]
    return values[j - 1] + (values[j] - values[j - 1]) * (t - t0) / (t1 - t0)

"""Interval energy from counters and power: rollover, resets, jumps, gaps (properties and cases)."""

from __future__ import annotations

import itertools
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from ferrogate.gateway.energy.counters import NS_PER_HOUR, CounterSpec, Flag, counter_intervals, power_intervals
from ferrogate.gateway.energy.events import Curve, bridge
from ferrogate.gateway.reading import Quality

G, U = Quality.GOOD, Quality.UNCERTAIN
S = 1_000_000_000
MOD32 = float(2**32)
RATED = 30_000.0  # kW


def readings(values: list[float], step_s: int = 60) -> tuple[list[int], list[float], list[Quality]]:
    return [i * step_s * S for i in range(len(values))], values, [G] * len(values)


# kWh per 60 s scan at up to the rated power
increments = st.lists(st.integers(min_value=0, max_value=int(RATED / 60)), min_size=1, max_size=200)


@settings(max_examples=60, deadline=None)
@given(start=st.integers(min_value=0, max_value=2**32 - 1), steps=increments)
def test_rolling_counter_loses_and_invents_nothing(start: int, steps: list[int]) -> None:
    true_values = [start]
    for d in steps:
        true_values.append(true_values[-1] + d)
    served = [float(v % 2**32) for v in true_values]  # what a uint32 register shows
    ivs = counter_intervals(*readings(served), CounterSpec(MOD32, RATED, 0.1, 1.0))
    assert [iv.amount for iv in ivs] == [float(d) for d in steps]
    assert all(iv.quality is G for iv in ivs)
    wraps = sum(1 for a, b in itertools.pairwise(true_values) if a // 2**32 != b // 2**32)
    assert sum(Flag.rollover in iv.flags for iv in ivs) == wraps


@settings(max_examples=60, deadline=None)
@given(steps=increments, bad=st.sets(st.integers(min_value=1, max_value=198)))
def test_bad_readings_are_spanned_by_the_next_good_one(steps: list[int], bad: set[int]) -> None:
    values = [1000.0]
    for d in steps:
        values.append(values[-1] + d)
    times, _, _ = readings(values)
    usable = [i for i in range(len(values)) if i not in bad or i == len(values) - 1]
    ivs = counter_intervals([times[i] for i in usable], [values[i] for i in usable], [G] * len(usable), CounterSpec())
    assert sum(iv.amount or 0.0 for iv in ivs) == values[-1] - values[0]
    assert ivs == [] or (ivs[0].start_ns == 0 and ivs[-1].end_ns == times[-1])


def test_reset_to_zero_is_flagged_and_bridged_by_the_new_reading() -> None:
    ivs = counter_intervals(*readings([5000.0, 5400.0, 120.0, 520.0]), CounterSpec(MOD32, RATED, 0.1, 1.0))
    assert [iv.amount for iv in ivs] == [400.0, 120.0, 400.0]
    assert ivs[1].flags == (Flag.counter_reset,) and ivs[1].quality is U and ivs[1].raw_delta == -5280.0
    assert all(iv.amount is None or iv.amount >= 0 for iv in ivs)


def test_replacement_meter_with_unknown_start_is_bad_unless_power_bridges_it() -> None:
    times, values, q = readings([50_000.0, 50_400.0, 3000.0, 3400.0])  # new meter started at 2600
    ivs = counter_intervals(times, values, q, CounterSpec(MOD32, RATED, 0.1, 1.0))
    assert ivs[1].amount is None and ivs[1].quality is Quality.BAD and Flag.counter_reset in ivs[1].flags
    power = Curve(power_intervals(times, [24_000.0] * 4, q, 120))
    bridged = bridge(ivs, power)
    assert bridged[1].amount == 400.0 and bridged[1].quality is U
    assert bridged[1].flags == (Flag.counter_reset, Flag.bridged_by_power)


def test_implausible_jump_is_flagged_not_counted() -> None:
    # 30 MW for 60 s is at most 500 kWh (+10 % + one step); 5000 kWh is a glitch
    ivs = counter_intervals(*readings([0.0, 400.0, 5400.0, 5800.0]), CounterSpec(MOD32, RATED, 0.1, 1.0))
    assert [iv.amount for iv in ivs] == [400.0, None, 400.0]
    assert ivs[1].flags == (Flag.implausible_jump,) and ivs[1].raw_delta == 5000.0
    curve = Curve(ivs)
    whole = curve.between(0, 180 * S)
    assert whole.value == 800.0 and whole.quality is Quality.BAD and Flag.implausible_jump in whole.flags


def test_jump_limit_allows_rated_power_plus_tolerance() -> None:
    limit = RATED * 60 / 3600 * 1.1 + 1.0  # 551 kWh
    ok = counter_intervals(*readings([0.0, math.floor(limit)]), CounterSpec(None, RATED, 0.1, 1.0))
    assert ok[0].amount == math.floor(limit) and ok[0].quality is G
    jump = counter_intervals(*readings([0.0, math.floor(limit) + 1]), CounterSpec(None, RATED, 0.1, 1.0))
    assert jump[0].amount is None


def test_wrap_without_rated_power_needs_top_to_bottom_half() -> None:
    ivs = counter_intervals(*readings([MOD32 - 10, 5.0, 2.0]), CounterSpec(MOD32, None))
    assert ivs[0].amount == 15.0 and ivs[0].flags == (Flag.rollover,)
    assert ivs[1].flags == (Flag.counter_reset,)


def test_uncertain_reading_makes_its_interval_uncertain() -> None:
    ivs = counter_intervals([0, 60 * S, 120 * S], [0.0, 10.0, 20.0], [G, U, G], CounterSpec())
    assert [iv.quality for iv in ivs] == [U, U] and ivs[0].amount == 10.0


@settings(max_examples=40, deadline=None)
@given(powers=st.lists(st.floats(min_value=0, max_value=RATED), min_size=2, max_size=50))
def test_power_integration_is_the_trapezoid(powers: list[float]) -> None:
    times = [i * 10 * S for i in range(len(powers))]
    ivs = power_intervals(times, powers, [G] * len(powers), max_gap_s=120)
    expected = sum((a + b) / 2 * 10 / 3600 for a, b in itertools.pairwise(powers))
    assert math.isclose(sum(iv.amount or 0 for iv in ivs), expected, rel_tol=1e-9, abs_tol=1e-9)
    assert all(iv.quality is G for iv in ivs)


def test_power_gap_beyond_the_limit_is_uncertain() -> None:
    times = [0, 10 * S, 310 * S]
    ivs = power_intervals(times, [3600.0, 3600.0, 3600.0], [G, G, G], max_gap_s=120)
    assert [iv.quality for iv in ivs] == [G, U]
    assert ivs[1].flags == (Flag.gap,) and ivs[1].amount == 300.0  # kWh still estimated
    assert NS_PER_HOUR == 3600 * S


def test_an_edge_inside_a_long_gap_is_an_uncertain_estimate_and_the_sum_stays_exact() -> None:
    """A meter silent for 20 minutes (refused connections): a tap inside the gap splits the counted
    energy by interpolation, which is only an estimate of where the energy went; across the gap the
    counter is exact. Short intervals interpolate as good as ever."""
    times = [0, 60 * S, 1260 * S, 1320 * S]  # readings a minute apart, then 20 minutes without one
    ivs = counter_intervals(times, [0.0, 400.0, 8400.0, 8800.0], [G] * 4, CounterSpec(MOD32, RATED, 0.1, 1.0))
    curve = Curve(ivs, interpolation_gap_ns=300 * S)
    inside = curve.between(0, 660 * S)
    assert inside.value == 4400.0 and inside.quality is U and inside.flags == {Flag.interpolated_gap}
    after = curve.between(660 * S, 1320 * S)
    assert after.value == 4400.0 and after.quality is U
    whole = curve.between(0, 1320 * S)
    assert whole.value == 8800.0 and whole.quality is G and not whole.flags
    short = curve.between(30 * S, 1290 * S)
    assert short.quality is G and short.value == 8400.0


def test_power_bridges_a_reset_only_where_it_was_read_without_an_outage() -> None:
    """A meter replaced while its device did not answer for 20 minutes: the power readings on both
    sides of the outage say 30 MW, but the furnace was off in between; a trapezoid across the outage
    would invent 10 MWh. The new meter's reading (what it counted since it started) stays instead."""
    times = [0, 60 * S, 1260 * S, 1320 * S]
    ivs = counter_intervals(times, [50_000.0, 50_500.0, 200.0, 700.0], [G] * 4, CounterSpec(MOD32, RATED, 0.1, 1.0))
    assert ivs[1].amount == 200.0 and Flag.counter_reset in ivs[1].flags
    power = Curve(power_intervals(times, [30_000.0] * 4, [G] * 4, 120))
    across = bridge(ivs, power, max_power_gap_ns=300 * S)
    assert across[1].amount == 200.0 and Flag.bridged_by_power not in across[1].flags
    dense_times = [i * 60 * S for i in range(23)]
    dense = Curve(power_intervals(dense_times, [600.0] * 23, [G] * 23, 120))
    assert bridge(ivs, dense, max_power_gap_ns=300 * S)[1].amount == 600.0 * 1200 / 3600  # read every minute

"""Pure accounting logic: energy at event times, taps and records, allocation and balance, periods
and sums (properties where they fit, cases where a rule is specific)."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, date, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from ferrogate.gateway.energy.aggregate import PeriodKind, ShiftCalendar, Totals, totals_by_period
from ferrogate.gateway.energy.allocation import BalanceStatus, balance, fixed_shares, pro_rata_remainder
from ferrogate.gateway.energy.counters import CounterSpec, Flag, Interval, counter_intervals
from ferrogate.gateway.energy.events import Amount, Curve
from ferrogate.gateway.energy.production import (
    MISSED_TAPS,
    NO_PREVIOUS_TAP,
    NO_TAP_WEIGHT,
    TAP_TIME_FROM_SCAN,
    ProductionRecord,
    UnitSources,
    detect_taps,
    tap_records,
)
from ferrogate.gateway.energy.series import Series
from ferrogate.gateway.reading import Quality
from ferrogate.gateway.timeutil import datetime_to_ns

G = Quality.GOOD
S = 1_000_000_000

# An EAF-like power profile (kW) over one 3-hour stretch: zero power for 10 minutes around each tap
PROFILE = [(0, 0.0), (300, 60_000.0), (2400, 30_000.0), (2700, 0.0), (3300, 70_000.0), (6000, 0.0), (7200, 50_000.0)]
TAPS_AT = [2900, 6500]  # tap instants, inside zero-power windows
END = 10_800


def energy_at(t: float) -> float:
    """Exact cumulative kWh of PROFILE at t seconds."""
    total = 0.0
    for (t0, p), (t1, _) in zip(PROFILE, [*PROFILE[1:], (END, 0.0)], strict=True):
        if t <= t0:
            break
        total += p * (min(t, t1) - t0) / 3600
    return total


def scanned_curve(step_s: int, offset_s: int) -> Curve:
    times = list(range(offset_s, END, step_s))
    values = [math.floor(energy_at(t)) for t in times]  # an integer kWh register truncates
    return Curve(counter_intervals([t * S for t in times], values, [G] * len(times), CounterSpec(resolution=1.0)))


@settings(max_examples=40, deadline=None)
@given(step=st.sampled_from([1, 5, 10, 30, 60, 120]), offset=st.integers(min_value=0, max_value=59))
def test_heat_energy_does_not_depend_on_the_scan_interval(step: int, offset: int) -> None:
    curve = scanned_curve(step, offset)
    heat = curve.between(TAPS_AT[0] * S, TAPS_AT[1] * S)
    truth = energy_at(TAPS_AT[1]) - energy_at(TAPS_AT[0])
    assert abs(heat.value - truth) <= 1.0  # at most one counter step of truncation
    assert heat.quality is G and heat.covered


def test_energy_at_a_time_is_interpolated_inside_the_bracketing_interval() -> None:
    curve = Curve([Interval(0, 60 * S, 100.0, G), Interval(60 * S, 120 * S, 50.0, G)])
    assert curve.at(30 * S) == 50.0 and curve.at(90 * S) == 125.0
    assert curve.between(30 * S, 90 * S).value == 75.0
    outside = curve.between(-10 * S, 90 * S)
    assert not outside.covered and outside.value == 125.0


def series(points: list[tuple[int, float | None]], quality: Quality = G) -> Series:
    s = Series()
    for t, v in points:
        s.add(t * S, v, Quality.BAD if v is None else quality)
    return s


def test_series_keeps_late_readings_in_order_and_overwrites_repeats() -> None:
    s = series([(10, 1.0), (30, 3.0)])
    s.add(20 * S, 2.0, G)
    s.add(30 * S, 3.5, G)
    assert s.times == [10 * S, 20 * S, 30 * S] and s.values == [1.0, 2.0, 3.5]
    assert s.since(30 * S).values == [2.0, 3.5] and s.since(25 * S).values == [2.0, 3.5]  # with the one before
    assert s.latest_at(25 * S) == (20 * S, 2.0, G)


def test_taps_use_the_device_tap_time_and_weight() -> None:
    counter = series([(0, 4.0), (60, 4.0), (120, 5.0), (180, 5.0), (240, 6.0)])
    weight = series([(0, 98.0), (60, 98.0), (120, 101.5), (180, 101.5), (240, 99.0)])
    tap_time = series([(0, 0.0), (60, 0.0), (120, 95.0), (180, 95.0), (240, 200.0)])
    taps = detect_taps(counter, weight, tap_time)
    assert [(t.t_ns, t.number, t.tonnes, t.quality) for t in taps] == [(95 * S, 5, 101.5, G), (200 * S, 6, 99.0, G)]


def test_tap_problems_are_flagged() -> None:
    counter = series([(0, 1.0), (60, 3.0), (120, None), (180, 4.0), (240, 0.0), (300, 1.0)])
    weight = series([(0, 50.0)])
    taps = detect_taps(counter, weight, None, tonnes_per_unit=0.001)  # weight register in kg
    assert [t.number for t in taps] == [3, 4, 1]  # 4 -> 0 is a PLC restart: a new baseline, no tap
    assert f"{MISSED_TAPS}:1" in taps[0].flags and taps[0].quality is Quality.BAD
    assert TAP_TIME_FROM_SCAN in taps[1].flags and taps[1].t_ns == 180 * S and taps[1].tonnes == 0.05
    no_weight = detect_taps(series([(0, 1.0), (60, 2.0)]), Series(), None)
    assert NO_TAP_WEIGHT in no_weight[0].flags and no_weight[0].tonnes is None


def test_heat_records_span_previous_tap_to_this_tap() -> None:
    curve = scanned_curve(60, 0)
    counter = series([(0, 0.0), (2940, 1.0), (6540, 2.0)])
    weight = series([(0, 0.0), (2940, 100.0), (6540, 90.0)])
    tap_time = series([(0, 0.0), (2940, 2900.0), (6540, 6500.0)])
    taps = detect_taps(counter, weight, tap_time)
    sources = UnitSources([curve.between], [], {}, {"coke": 0.5})
    recs = tap_records("eaf1", "crude_steel_eaf", "eaf_heat", taps, sources, data_start_ns=0)
    assert [(r.start_ns, r.end_ns) for r in recs] == [(0, 2900 * S), (2900 * S, 6500 * S)]
    assert NO_PREVIOUS_TAP in recs[0].flags and recs[0].quality is Quality.UNCERTAIN
    second = recs[1]
    truth = energy_at(6500) - energy_at(2900)
    assert abs(second.electricity_kwh - truth) <= 1.0 and second.tonnes == 90.0 and second.quality is G
    assert second.consumables == {"coke": 45.0}
    assert second.kwh_per_t == second.electricity_kwh / 90.0


# --- allocation and balance ---------------------------------------------------------------------


def curve_of(amounts: list[float], step_s: int = 60) -> Curve:
    return Curve([Interval(i * step_s * S, (i + 1) * step_s * S, a, G) for i, a in enumerate(amounts)])


def test_fixed_shares_split_the_whole_meter() -> None:
    shared = curve_of([100.0, 300.0])
    parts = fixed_shares(shared, {"eaf1": 0.25, "saf1": 0.75})
    assert parts["eaf1"].between(0, 120 * S).value == 100.0
    assert parts["saf1"].between(0, 120 * S).value == 300.0


amount_lists = st.lists(st.one_of(st.just(0.0), st.floats(min_value=0.01, max_value=1000)), min_size=1, max_size=20)


@settings(max_examples=50, deadline=None)
@given(a=amount_lists, b=amount_lists, losses=amount_lists)
def test_pro_rata_remainder_conserves_the_shared_meter(a: list[float], b: list[float], losses: list[float]) -> None:
    n = min(len(a), len(b), len(losses))
    a, b = a[:n], b[:n]
    shared = curve_of([x + y + z for x, y, z in zip(a, b, losses[:n], strict=True)])
    parts = pro_rata_remainder(shared, {"saf1": curve_of(a), "saf2": curve_of(b)})
    for i in range(n):
        t0, t1 = i * 60 * S, (i + 1) * 60 * S
        own = a[i] + b[i]
        allocated = parts["saf1"].between(t0, t1).value + parts["saf2"].between(t0, t1).value
        assert math.isclose(own + allocated, shared.between(t0, t1).value, rel_tol=1e-9, abs_tol=1e-6)
        if own > 0:
            assert math.isclose(parts["saf1"].between(t0, t1).value, losses[i] * a[i] / own, abs_tol=1e-6)


def test_pro_rata_idle_and_negative_remainders_are_flagged() -> None:
    parts = pro_rata_remainder(curve_of([10.0, 90.0]), {"a": curve_of([0.0, 50.0]), "b": curve_of([0.0, 50.0])})
    idle = parts["a"].between(0, 60 * S)
    assert idle.value == 5.0 and Flag.idle_equal_split in idle.flags and idle.quality is G
    negative = parts["a"].between(60 * S, 120 * S)
    assert negative.value == -5.0 and Flag.negative_remainder in negative.flags
    assert negative.quality is Quality.UNCERTAIN


def test_balance_status_and_loss_percent() -> None:
    ok = balance("plant", Amount(1000.0), {"a": Amount(600.0), "b": Amount(370.0)}, 5.0)
    assert (ok.loss_kwh, ok.loss_percent, ok.status) == (30.0, 3.0, BalanceStatus.ok)
    high = balance("plant", Amount(1000.0), {"a": Amount(900.0)}, 5.0)
    assert high.status is BalanceStatus.loss_above_limit and high.loss_percent == 10.0
    over = balance("plant", Amount(1000.0), {"a": Amount(1010.0)}, 5.0)
    assert over.status is BalanceStatus.submeters_exceed_main
    gap = balance("plant", Amount(1000.0, Quality.BAD, {"implausible_jump"}), {"a": Amount(990.0)}, 5.0)
    assert gap.quality is Quality.BAD and "implausible_jump" in gap.flags


# --- periods and sums -----------------------------------------------------------------------------

CAL = ShiftCalendar("Asia/Shanghai", [("day", "08:00"), ("night", "20:00")])


def local_ns(*args: int) -> int:
    from zoneinfo import ZoneInfo

    return datetime_to_ns(datetime(*args, tzinfo=ZoneInfo("Asia/Shanghai")))


def test_production_day_starts_with_the_first_shift() -> None:
    t = local_ns(2026, 11, 24, 3, 0)  # 03:00 local belongs to the night shift of the 23rd
    shift = CAL.period_of(PeriodKind.shift, t)
    assert shift.label == "2026-11-23/night"
    assert (shift.start_ns, shift.end_ns) == (local_ns(2026, 11, 23, 20, 0), local_ns(2026, 11, 24, 8, 0))
    day = CAL.period_of(PeriodKind.day, t)
    assert (day.label, day.start_ns) == ("2026-11-23", local_ns(2026, 11, 23, 8, 0))
    month = CAL.period_of(PeriodKind.month, local_ns(2026, 12, 1, 7, 59))
    assert (month.label, month.start_ns, month.end_ns) == (
        "2026-11",
        local_ns(2026, 11, 1, 8, 0),
        local_ns(2026, 12, 1, 8, 0),
    )
    assert month.local_date == date(2026, 11, 1)
    # UTC midnight is 08:00 in Shanghai
    assert CAL.day(date(2026, 11, 23)).start_ns == datetime_to_ns(datetime(2026, 11, 23, tzinfo=UTC))


def test_periods_tile_time_without_gaps() -> None:
    start, end = local_ns(2026, 1, 30, 0, 0), local_ns(2026, 3, 2, 0, 0)
    for kind in PeriodKind:
        periods = CAL.periods(kind, start, end)
        assert periods[0].start_ns <= start and periods[-1].end_ns >= end
        assert all(a.end_ns == b.start_ns for a, b in itertools.pairwise(periods))
    assert len(CAL.periods(PeriodKind.month, start, end)) == 3


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 3 * 86_400), st.floats(1, 200), st.floats(0, 90_000)), max_size=40))
def test_period_sums_add_up_and_are_sums_over_sums(heats: list[tuple[int, float, float]]) -> None:
    base = CAL.day(date(2026, 11, 23)).start_ns
    records = [
        ProductionRecord("eaf1", "crude_steel_eaf", "eaf_heat", f"eaf1/{i}", 0, base + t * S, tonnes, kwh)
        for i, (t, tonnes, kwh) in enumerate(heats)
    ]
    days = CAL.periods(PeriodKind.day, base, base + 3 * 86_400 * S)
    whole = Totals()
    for day in days:
        day_totals = totals_by_period(records, day)
        shifts = Totals()
        for shift in CAL.shifts_of(day.local_date):
            shifts.merge(totals_by_period(records, shift))
        assert shifts.records == day_totals.records
        assert math.isclose(shifts.electricity_kwh, day_totals.electricity_kwh, abs_tol=1e-6)
        whole.merge(day_totals)
    assert whole.records == len(records)
    if records:
        expected = sum(r.electricity_kwh for r in records) / sum(r.tonnes for r in records)
        assert whole.kwh_per_t is not None and math.isclose(whole.kwh_per_t, expected, rel_tol=1e-9)


def test_partial_first_heat_is_excluded_from_period_sums() -> None:
    day = CAL.day(date(2026, 11, 23))
    partial = ProductionRecord("eaf1", "p", "eaf_heat", "eaf1/1", 0, day.start_ns + S, 100.0, 10_000.0)
    partial.flags.add(NO_PREVIOUS_TAP)
    full = ProductionRecord("eaf1", "p", "eaf_heat", "eaf1/2", 0, day.start_ns + 2 * S, 100.0, 40_000.0)
    totals = totals_by_period([partial, full], day)
    assert (totals.records, totals.excluded, totals.kwh_per_t) == (1, 1, 400.0)

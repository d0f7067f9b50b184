"""Pure cost logic beyond the golden cases: day types and tariff editions, time before any tariff,
splits that add up across midnight and an edition change, demand windows on the plant clock, the
capacity basis, and a limit-grade position supplied from outside (the compliance layer's input)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from ferrogate.gateway.cost.config import DemandCharge, PositionScale, Surcharge, Tariff, TouPeriod
from ferrogate.gateway.cost.demand import demand_charge, window_demands, window_start
from ferrogate.gateway.cost.positions import compliance_grades, positions
from ferrogate.gateway.cost.surcharge import Origin, Position, assess
from ferrogate.gateway.cost.tariff import TouSchedule
from ferrogate.gateway.cost.tou import NO_TARIFF, split_window
from ferrogate.gateway.energy.aggregate import ShiftCalendar
from ferrogate.gateway.energy.books import IntervalRow
from ferrogate.gateway.energy.counters import Interval
from ferrogate.gateway.energy.events import Curve
from ferrogate.gateway.reading import Quality
from ferrogate.gateway.timeutil import datetime_to_ns

TZ = "Asia/Shanghai"
SOURCE = {"document": "unit test", "year": 2026, "verified": False}
ALL_MONTHS = list(range(1, 13))


def at(text: str, tz: str = TZ) -> int:
    return datetime_to_ns(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)))


def tariff(tid: str, start: str, prices: dict[str, float], schedules: list[dict]) -> Tariff:
    return Tariff.model_validate(
        {
            "id": tid,
            "name": tid,
            "effective_from": start,
            "source": SOURCE,
            "prices": [{"period": p, "yuan_per_kwh": v} for p, v in prices.items()],
            "schedules": schedules,
        }
    )


def whole_day(period: str, day_types: list[str] | None = None) -> dict:
    out: dict = {"months": ALL_MONTHS, "bands": [{"start": "00:00", "end": "24:00", "period": period}]}
    if day_types is not None:
        out["day_types"] = day_types
    return out


WORKDAY = {
    "months": ALL_MONTHS,
    "day_types": ["workday"],
    "bands": [
        {"start": "00:00", "end": "08:00", "period": "valley"},
        {"start": "08:00", "end": "24:00", "period": "peak"},
    ],
}
FIRST = tariff(
    "first",
    "2026-01-01",
    {"peak": 1.0, "valley": 0.25, "deep_valley": 0.1},
    [WORKDAY, whole_day("valley", ["weekend"]), whole_day("deep_valley", ["holiday"])],
)
SECOND = tariff("second", "2026-07-01", {"flat": 0.5}, [whole_day("flat")])


def schedule() -> TouSchedule:
    return TouSchedule([SECOND, FIRST], TZ, [6, 7], [date(2026, 5, 1)])


def test_day_types_and_editions_pick_the_bands() -> None:
    s = schedule()
    assert [(b.period, b.yuan_per_kwh) for b in s.bands(at("2026-04-30T07:00"), at("2026-04-30T09:00"))] == [
        (TouPeriod.valley, 0.25),
        (TouPeriod.peak, 1.0),
    ]  # Thursday, a workday
    assert s.band_at(at("2026-05-01T12:00")).period is TouPeriod.deep_valley  # Friday, but a holiday
    assert s.band_at(at("2026-05-02T12:00")).period is TouPeriod.valley  # Saturday
    june_30, july_1 = s.band_at(at("2026-06-30T23:00")), s.band_at(at("2026-07-01T00:00"))
    assert (june_30.tariff, june_30.period) == ("first", TouPeriod.peak)  # a Tuesday
    assert (july_1.tariff, july_1.period, july_1.yuan_per_kwh) == ("second", TouPeriod.flat, 0.5)
    before = s.band_at(at("2025-12-31T12:00"))
    assert (before.period, before.yuan_per_kwh, before.tariff) == (None, None, None)


def line(t0: int, t1: int, kw: float) -> Curve:
    """A constant load as a counter curve with one reading per hour."""
    step = 3_600_000_000_000
    return Curve([Interval(t, t + step, kw, Quality.GOOD) for t in range(t0, t1, step)])


def test_a_split_across_midnight_and_an_edition_change_adds_up() -> None:
    curve = line(at("2026-06-30T20:00"), at("2026-07-01T04:00"), 1000.0)
    split = split_window(curve, schedule(), at("2026-06-30T21:30"), at("2026-07-01T02:30"))
    assert split.kwh == {TouPeriod.peak: pytest.approx(2500.0), TouPeriod.flat: pytest.approx(2500.0)}
    assert split.cost_yuan == pytest.approx(2500.0 * 1.0 + 2500.0 * 0.5)
    assert split.total_kwh == pytest.approx(curve.between(at("2026-06-30T21:30"), at("2026-07-01T02:30")).value)
    assert split.tariffs == {"first", "second"} and split.valley_share_percent == 0.0


def test_energy_before_the_first_tariff_is_flagged_not_priced_at_zero() -> None:
    curve = line(at("2025-12-31T20:00"), at("2026-01-01T04:00"), 1000.0)
    split = split_window(curve, schedule(), at("2025-12-31T22:00"), at("2026-01-01T02:00"))
    assert split.untariffed_kwh == pytest.approx(2000.0) and split.flags == {NO_TARIFF}
    assert split.kwh == {TouPeriod.valley: pytest.approx(2000.0)}  # 1 January 2026: a Thursday, a workday here
    assert split.yuan_per_kwh == pytest.approx(0.25)  # the average over the priced kWh only


@pytest.mark.parametrize(
    ("zone", "window_s", "local", "expected"),
    [
        ("Asia/Kathmandu", 900, "2026-03-02T10:07", "2026-03-02T10:00"),  # UTC+5:45
        ("Asia/Kolkata", 3600, "2026-03-02T10:07", "2026-03-02T10:00"),  # UTC+5:30: the local hour
        ("Asia/Shanghai", 900, "2026-03-02T10:15", "2026-03-02T10:15"),
    ],
)
def test_demand_windows_follow_the_plant_clock(zone: str, window_s: int, local: str, expected: str) -> None:
    assert window_start(at(local, zone), window_s * 1_000_000_000, ZoneInfo(zone)) == at(expected, zone)


def test_demand_windows_group_buckets_on_the_plant_clock() -> None:
    """An hour window in a UTC+5:30 plant: the buckets of local 10:00-11:00 make one window."""
    zone = "Asia/Kolkata"
    step = 900 * 1_000_000_000
    rows = [
        IntervalRow("incomer", "electricity_import", "counter", "kWh", t, t + step, kwh, Quality.GOOD, ())
        for t, kwh in zip(
            range(at("2026-03-02T09:30", zone), at("2026-03-02T11:30", zone), step), range(1, 9), strict=True
        )
    ]
    windows = window_demands(rows, 3600 * 1_000_000_000, ZoneInfo(zone))
    assert [(w.start_ns, w.kwh, w.complete) for w in windows] == [
        (at("2026-03-02T09:00", zone), 1 + 2, False),
        (at("2026-03-02T10:00", zone), 3 + 4 + 5 + 6, True),
        (at("2026-03-02T11:00", zone), 7 + 8, False),
    ]
    assert windows[1].kw == 18.0


def test_capacity_basis_and_minimum_demand() -> None:
    capacity = DemandCharge(basis="capacity", yuan_per_kva_month=24.0, capacity_kva=126_000)
    charged = demand_charge(capacity, 80_000.0)
    assert (charged.billed_kw, charged.charge_yuan) == (None, 24.0 * 126_000)
    floor = DemandCharge(basis="max_demand", yuan_per_kw_month=30.0, minimum_kw=50_000, contracted_kw=100_000)
    low = demand_charge(floor, 20_000.0)
    assert (low.billed_kw, low.excess_kw, low.charge_yuan) == (50_000.0, 0.0, 1_500_000.0)


def grade_rule(**extra: Any) -> Surcharge:
    return Surcharge.model_validate(
        {
            "id": "grades",
            "name": "by limit grade",
            "products": ["SiMn"],
            "position_from": "limit_grade",
            "rates": [
                {"position": "grade_1", "yuan_per_kwh": 0.0},
                {"position": "grade_2", "yuan_per_kwh": 0.01},
                {"position": "grade_3", "yuan_per_kwh": 0.04},
                {"position": "not_compliant", "yuan_per_kwh": 0.3},
            ],
            "source": SOURCE,
            **extra,
        }
    )


def test_a_limit_grade_input_decides_the_position() -> None:
    """The compliance layer supplies limit grades as a PositionInput; the surcharge takes its name."""
    rule = grade_rule()
    month = ShiftCalendar(TZ, [("A", "00:00")]).month(date(2026, 3, 1))
    graded = Position("grade_3", PositionScale.limit_grade, "GB 21341-2022, 2026-03: 4,100 kWh/t", Origin.compliance)
    given = positions({}, limit_grades=lambda r, product, m: graded if product == "SiMn" else None)
    result = assess(rule, "SiMn", 200_000.0, given(rule, "SiMn", month))
    assert (result.yuan_per_kwh, result.surcharge_yuan) == (0.04, pytest.approx(8_000.0))
    assert (result.better_position, result.saving_one_grade_yuan) == ("grade_2", pytest.approx(6_000.0))
    assert result.position is graded and not result.flags
    unknown = assess(rule, "SiMn", 200_000.0, positions({})(rule, "SiMn", month))
    assert unknown.surcharge_yuan is None and unknown.flags == {"no_position"}
    best = assess(rule, "SiMn", 200_000.0, Position("grade_1", PositionScale.limit_grade, "test", Origin.compliance))
    assert (best.surcharge_yuan, best.better_position, best.saving_one_grade_yuan) == (0.0, None, None)


def assessed(status: str, *indicators: tuple[str, str, int | None], label: str = "2026-03") -> dict[str, Any]:
    """A product's assessment as gateway/compliance/limits.assess gives it (the fields read here)."""
    month = {
        "label": label,
        "status": status,
        "indicators": [
            {
                "indicator": name,
                "value": 100.0,
                "unit": "kWh/t",
                "status": s,
                "next_grade": n,
                "margin_to_next_grade": 5.0,
            }
            for name, s, n in indicators
        ],
    }
    return {"product": "SiMn", "status": status, "standard": "GB 21341", "edition": "2022", "month": month}


def test_compliance_grades_give_the_grade_and_the_real_next_grade() -> None:
    """The worse indicator decides; the next better grade is the one every indicator at that grade can
    reach, as the standard's levels allow (a standard without a grade-1 level stops at grade 2)."""
    rule = grade_rule()
    month = ShiftCalendar(TZ, [("A", "00:00")]).month(date(2026, 3, 1))
    both = compliance_grades([assessed("grade_3", ("electricity", "grade_3", 2), ("comprehensive", "grade_2", 1))])
    found = assess(rule, "SiMn", 100_000.0, positions({}, both)(rule, "SiMn", month))
    assert found.position is not None and found.position.origin is Origin.compliance
    assert "compliance 2026-03: SiMn grade_3 under GB 21341" in found.position.source
    assert (found.yuan_per_kwh, found.better_position) == (0.04, "grade_2")
    assert found.saving_one_grade_yuan == pytest.approx(100_000.0 * (0.04 - 0.01))
    no_grade_1 = compliance_grades([assessed("grade_2", ("electricity", "grade_2", None))])
    top = assess(rule, "SiMn", 100_000.0, positions({}, no_grade_1)(rule, "SiMn", month))
    assert (top.yuan_per_kwh, top.better_position, top.saving_one_grade_yuan) == (0.01, None, None)
    over = compliance_grades([assessed("not_compliant", ("electricity", "not_compliant", 3))])
    worst = assess(rule, "SiMn", 100_000.0, positions({}, over)(rule, "SiMn", month))
    assert (worst.better_position, worst.saving_one_grade_yuan) == ("grade_3", pytest.approx(100_000.0 * 0.26))
    # another month's assessment is not this month's grade
    other = compliance_grades([assessed("grade_1", ("electricity", "grade_1", None), label="2026-02")])
    assert positions({}, other)(rule, "SiMn", month) is None


def test_without_a_grade_the_fallback_applies_and_says_why() -> None:
    rule = grade_rule(fallback={"position": "grade_3", "source": "supervision result 2025"})
    month = ShiftCalendar(TZ, [("A", "00:00")]).month(date(2026, 3, 1))
    missing = compliance_grades([assessed("missing_input", ("electricity", "missing_input", None))])
    found = assess(rule, "SiMn", 100_000.0, positions({}, missing)(rule, "SiMn", month))
    assert found.position is not None and found.position.origin is Origin.plant_file
    assert found.position.source.startswith("plant file fallback (compliance: missing_input for SiMn 2026-03)")
    assert (found.yuan_per_kwh, found.better_position) == (0.04, "grade_2")
    nothing = positions({}, compliance_grades([]))(rule, "SiMn", month)
    assert nothing is not None and "no compliance assessment" in nothing.source
    # without a fallback the compliance status stays, and prices nothing
    bare = assess(grade_rule(), "SiMn", 100_000.0, positions({}, missing)(grade_rule(), "SiMn", month))
    assert bare.surcharge_yuan is None and bare.flags == {"no_position", "position:missing_input"}
    with pytest.raises(ValidationError, match="fallback position 'grade_9'"):
        grade_rule(fallback={"position": "grade_9", "source": "a typo"})

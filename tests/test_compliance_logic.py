"""Pure rules of the compliance layer beyond the golden cases: grading at the edges, and the heats of
a month adding up to the month's footprint."""

from __future__ import annotations

import math

import pytest

from ferrogate.gateway.compliance import footprint
from ferrogate.gateway.compliance.figures import Figures
from ferrogate.gateway.compliance.limits import NO_PRODUCTION, NOT_COMPLIANT, grade_of
from ferrogate.gateway.compliance_service import assess_all
from tests.compliance_cases import CASES_DIR, books_for, load_case


@pytest.mark.parametrize(
    ("value", "levels", "grade", "status", "next_grade", "margin", "headroom"),
    [
        (-31.0, (-30.0, -28.0, -12.0), 1, "grade_1", None, None, 1.0),  # BOF: negative levels, lower is better
        (-29.0, (-30.0, -28.0, -12.0), 2, "grade_2", 1, 1.0, 1.0),
        (-12.0, (-30.0, -28.0, -12.0), 3, "grade_3", 2, 16.0, 0.0),  # on the limit is compliant
        (65.0, (61.0, None, 72.0), 3, "grade_3", 1, 4.0, 7.0),  # no grade 2: the next grade is 1
        (72.5, (61.0, None, 72.0), None, NOT_COMPLIANT, 3, 0.5, None),
        (None, (61.0, None, 72.0), None, NO_PRODUCTION, None, None, None),
    ],
)
def test_grade_edges(value, levels, grade, status, next_grade, margin, headroom) -> None:  # type: ignore[no-untyped-def]
    g = grade_of(value, levels)
    assert (g.grade, g.status, g.next_grade) == (grade, status, next_grade)
    for got, want in ((g.margin_to_next_grade, margin), (g.headroom, headroom)):
        assert (got is None and want is None) or math.isclose(got, want, abs_tol=1e-12)  # type: ignore[arg-type]


def test_the_heats_of_a_month_add_up_to_the_month() -> None:
    """Three heats that make up eaf1's month: their footprints (kgCO2e) sum to the unit's month."""
    case = load_case(CASES_DIR / "heat_footprint")
    books = books_for(case, ["2026-11"])["2026-11"]
    month = books.unit("eaf1")
    inputs = case.month_inputs("2026-11")
    parts = [(0.5, 0.45), (0.3, 0.35), (0.2, 0.20)]  # (share of tonnes and kWh, share of gas)
    heats = [
        Figures(
            "eaf1",
            month.tonnes * t,
            month.electricity_kwh * t,
            0.0,
            {"natural_gas": month.consumables["natural_gas"] * g},
        )
        for t, g in parts
    ]
    whole = footprint.footprint(case.model, books, inputs, ("eaf1",), "eaf1")
    summed = sum(
        footprint.record(case.model, h, f"eaf1/{n}", month, inputs, "2026-11")["total_kgco2e"]
        for n, h in enumerate(heats)
    )
    assert summed == pytest.approx(whole["total_kgco2e"], rel=1e-12)
    assert whole["complete"] and whole["tonnes_t"] == 30000.0


def test_a_month_without_production_shows_its_levels_ungraded() -> None:
    """The month after the case's data: nothing made, the levels of the month's inputs still shown."""
    case = load_case(CASES_DIR / "gb21256_eaf")
    labels = [f"2026-{m:02d}" for m in range(1, 13)] + ["2027-01"]
    assessed = assess_all(case.model, labels, books_for(case, labels), {x: case.month_inputs(x) for x in labels})
    eaf = next(p for p in assessed if p["product"] == "crude_steel_eaf")
    [month] = eaf["month"]["indicators"]
    assert (month["status"], month["value"], month["grade"]) == (NO_PRODUCTION, None, None)
    assert month["levels"] == pytest.approx({"grade_1": 67.1, "grade_2": None, "grade_3": 79.2})
    [rolling] = eaf["rolling_12_months"]["indicators"]
    assert rolling["status"] == "grade_1"  # 2026-10 and 2026-11 are in the window

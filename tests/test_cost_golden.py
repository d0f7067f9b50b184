"""Golden cost cases: tests/testcases/cost/<case>/ holds a plant file with its tariff, the readings a
gateway would have stored (readings.csv) and the hand-calculated heat costs, period costs, month
demand and surcharges (expected.json; HAND_CALCULATION.md beside it shows the arithmetic).

A `limit_grade` surcharge takes the grade the compliance layer computes from the same books
(`assess_all`, what GET /api/v1/compliance/limits answers), through `compliance_grades` as the API does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ferrogate.gateway.compliance.figures import Figures, MonthBooks
from ferrogate.gateway.compliance.inputs import MonthInputs
from ferrogate.gateway.compliance.model import build
from ferrogate.gateway.compliance_service import assess_all
from ferrogate.gateway.config_loader import load_plant
from ferrogate.gateway.cost.books import CostBooks, CostResult
from ferrogate.gateway.cost.config import PositionScale
from ferrogate.gateway.cost.model import CostModel, resolve_cost
from ferrogate.gateway.cost.positions import compliance_grades
from ferrogate.gateway.cost.surcharge import PositionInput
from ferrogate.gateway.energy.aggregate import PeriodKind
from ferrogate.gateway.energy.books import Books, BooksResult
from ferrogate.gateway.plant_file import PlantFile
from ferrogate.gateway.timeutil import iso_utc
from tests.test_energy_golden import load_readings, ns, same

CASES = sorted(p for p in (Path(__file__).parent / "testcases" / "cost").iterdir() if p.is_dir())


def run_case(case: Path) -> tuple[CostResult, dict[str, Any]]:
    expected = json.loads((case / "expected.json").read_text())
    plant = load_plant(case / "plant.yaml")
    assert plant.cost is not None
    model, problems = resolve_cost(plant, plant.cost, plant.accounting)
    assert model is not None, problems
    window = expected["window"]
    readings = load_readings(case / "readings.csv")
    books = Books(model.accounting).compute(readings, ns(window["start"]), ns(window["end"]))
    graded = any(r.position_from is PositionScale.limit_grade for r in model.config.surcharges)
    return CostBooks(model).compute(books, month_grades(plant, model, books) if graded else None), expected


def month_grades(plant: PlantFile, model: CostModel, books: BooksResult) -> PositionInput:
    """The compliance layer's grades of the books' (one) month, as the API hands them to the cost books."""
    compliance, problems = build(plant, plant.compliance, model.accounting)
    assert compliance is not None, problems
    kpis = [k for k in books.kpis if k.period.kind is PeriodKind.month and k.scope in ("unit", "product")]
    (label,) = {k.period.label for k in kpis}
    month = MonthBooks(label)
    for k in kpis:
        (month.units if k.scope == "unit" else month.products)[k.subject] = Figures.from_row(
            k.subject, k.fields, compliance.materials
        )
    return compliance_grades(assess_all(compliance, [label], {label: month}, {label: MonthInputs(label)}))


def same_fields(actual: dict[str, Any], wanted: dict[str, Any], what: str) -> None:
    for name, value in wanted.items():
        if value is None:
            assert actual.get(name) is None, f"{what}.{name}: {actual.get(name)!r} is not None"
        else:
            same(actual.get(name), value, f"{what}.{name}")
    # a time-of-use period the hand calculation does not list had no kWh
    periods = {k for k in actual if k.startswith("kwh_") and actual[k] is not None}
    assert periods == {k for k in wanted if k.startswith("kwh_")}, f"{what}: periods {sorted(periods)}"


def z(t_ns: int) -> str:
    return iso_utc(t_ns).replace(".000Z", "Z")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_cost_case(case: Path) -> None:
    result, expected = run_case(case)
    wanted_records = expected["records"] if expected["records"] is not None else []
    if expected["records"] is not None:  # null: the case is about periods, its records are not listed
        assert [r.id for r in result.records] == [e["id"] for e in wanted_records]
    for rec, want in zip(result.records, wanted_records, strict=False):
        assert (z(rec.start_ns), z(rec.end_ns)) == (want["start"], want["end"]), rec.id
        fields = {k: v for k, v in want.items() if k not in ("id", "start", "end", "quality", "flags")}
        same_fields(rec.fields(), fields, rec.id)
        assert (rec.quality.value, sorted(rec.flags)) == (want["quality"], want["flags"]), rec.id
    periods = {(p.scope, p.subject, p.period.kind.value, p.period.label): p for p in result.periods}
    for want in expected["periods"]:
        key = (want["scope"], want["subject"], want["period"], want["label"])
        row = periods[key]
        assert (row.complete, row.quality.value) == (want["complete"], want["quality"]), key
        same_fields(row.fields(), want["fields"], "/".join(key))
    demands = {d.period.label: d for d in result.demands}
    for want in expected["demands"]:
        demand = demands[want["label"]]
        fields = demand.fields()
        fields["max_window_start"] = z(fields.pop("max_window_start_ns"))
        assert (demand.complete, demand.quality.value, sorted(demand.flags)) == (
            want["complete"],
            want["quality"],
            want["flags"],
        )
        for name, value in want["fields"].items():
            same(fields[name], value, f"demand {want['label']}.{name}")
    surcharges = {(s.period.label, s.result.surcharge, s.result.product): s.result for s in result.surcharges}
    assert set(surcharges) == {(w["label"], w["surcharge"], w["product"]) for w in expected["surcharges"]}
    for want in expected["surcharges"]:
        got = surcharges[(want["label"], want["surcharge"], want["product"])]
        assert (got.position.name if got.position else None) == want["position"], want
        assert sorted(got.flags) == want["flags"], want
        if "position_origin" in want:  # where the position came from, and what its source names
            assert got.position is not None and got.position.origin.value == want["position_origin"], want
            for text in want["position_source_contains"]:
                assert text in got.position.source, (text, got.position.source)
        for name in ("kwh", "yuan_per_kwh", "surcharge_yuan", "better_position", "saving_one_grade_yuan"):
            if want[name] is None:
                assert getattr(got, name) is None, (want, name)
            else:
                same(getattr(got, name), want[name], f"{want['surcharge']}.{name}")

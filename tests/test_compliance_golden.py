"""Golden compliance cases (tests/testcases/compliance/<case>/): limit grades with their corrections,
a carbon-market month with lab inputs, a CBAM good with a precursor, a heat's footprint. Each case
holds the books' month figures, the manual inputs, the expected answer and, beside it,
HAND_CALCULATION.md with the arithmetic."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

import pytest

from ferrogate.gateway.compliance import footprint
from ferrogate.gateway.compliance import limits as limit_rules
from ferrogate.gateway.compliance.cbam import cbam_period
from ferrogate.gateway.compliance.ets import ets_month, evidence_csv
from ferrogate.gateway.compliance.figures import Figures
from ferrogate.gateway.compliance_service import assess_all
from tests.compliance_cases import books_for, cases, load_case, same

CASES = cases()


def previous_labels(month: str, count: int) -> list[str]:
    year, mon = int(month[:4]), int(month[5:])
    out = []
    for _ in range(count):
        out.insert(0, f"{year:04d}-{mon:02d}")
        year, mon = (year, mon - 1) if mon > 1 else (year - 1, 12)
    return out


@pytest.mark.parametrize("path", CASES, ids=[c.name for c in CASES])
def test_golden_compliance_case(path: Path) -> None:
    case = load_case(path)
    assert (path / "HAND_CALCULATION.md").is_file(), "every case shows its arithmetic"
    kind = case.expected["kind"]
    month = case.expected["month"]
    if kind == "limits":
        labels = previous_labels(month, 13)
        inputs = {label: case.month_inputs(label) for label in labels}
        products = assess_all(case.model, labels, books_for(case, labels), inputs)
        by_product = {p["product"]: p for p in products}
        same(by_product, case.expected["products"], "products")
        raised, _ = limit_rules.alarms(products)
        assert sorted([a.kind, a.source, a.severity] for a in raised) == sorted(case.expected["alarms"])
    elif kind == "ets":
        pack = ets_month(case.model, books_for(case, [month])[month], case.month_inputs(month))
        same(pack, case.expected["ets"], "ets")
        rows = list(csv.DictReader(io.StringIO(evidence_csv(pack))))
        assert Counter(r["row"] for r in rows) == case.expected["csv_rows"]
        covered = next(r for r in rows if r["row"] == "covered_total")
        assert float(covered["tco2"]) == pytest.approx(pack["enterprise"]["tco2_direct_covered"], rel=1e-12)
    elif kind == "cbam":
        month_books = books_for(case, [month])[month]
        result = cbam_period(case.model, [(month_books, case.month_inputs(month))], month, case.expected["year"])
        same(result, case.expected["cbam"], "cbam")
    elif kind == "footprint_record":
        doc = json.loads((path / "books.json").read_text())["records"][case.expected["record"]]
        rec = Figures.from_row(doc["unit"], doc["row"], case.model.materials)
        month_books = books_for(case, [month])[month]
        result = footprint.record(
            case.model, rec, case.expected["record"], month_books.unit(doc["unit"]), case.month_inputs(month), month
        )
        same(result, case.expected["footprint"], "footprint")
    else:
        raise AssertionError(f"unknown case kind {kind!r}")

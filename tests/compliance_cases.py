"""Loading of the compliance golden cases (tests/testcases/compliance/<case>/): the plant file, the
books' month figures (books.json, shaped like the derived series' rows), the month's manual inputs
(inputs.json, checked as the API checks them) and the hand-calculated expectation."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ferrogate.gateway.compliance.figures import Figures, MonthBooks
from ferrogate.gateway.compliance.inputs import InputValue, MonthInputs
from ferrogate.gateway.compliance.model import ComplianceModel, build
from ferrogate.gateway.config_loader import load_plant
from ferrogate.gateway.energy.model import resolve
from ferrogate.gateway.timeutil import datetime_to_ns

CASES_DIR = Path(__file__).parent / "testcases" / "compliance"
ENTERED_AT = "2026-12-01T09:00:00+08:00"


@dataclass
class Case:
    path: Path
    model: ComplianceModel
    books: dict[str, MonthBooks]
    inputs: list[InputValue]
    expected: dict[str, Any]

    def month_inputs(self, label: str) -> MonthInputs:
        return MonthInputs.of(label, self.inputs)


def cases() -> list[Path]:
    return sorted(p for p in CASES_DIR.iterdir() if p.is_dir())


def load_case(path: Path) -> Case:
    plant = load_plant(path / "plant.yaml")
    accounting, problems = resolve(plant, plant.accounting)
    assert accounting is not None, problems
    model, problems = build(plant, plant.compliance, accounting)
    assert model is not None, problems
    books: dict[str, MonthBooks] = {}
    doc = json.loads((path / "books.json").read_text())
    for label, month in doc["months"].items():
        books[label] = MonthBooks(
            label,
            {k: Figures.from_row(k, row, model.materials) for k, row in month.get("units", {}).items()},
            {k: Figures.from_row(k, row, model.materials) for k, row in month.get("products", {}).items()},
        )
    inputs = []
    input_file = path / "inputs.json"
    for item in json.loads(input_file.read_text()) if input_file.exists() else []:
        value, unit = model.check_input(item["subject"], item["name"], item["value"])
        at = datetime_to_ns(datetime.fromisoformat(item.get("entered_at", ENTERED_AT)))
        inputs.append(
            InputValue(
                item["month"],
                item["subject"],
                item["name"],
                value,
                unit,
                item["source"],
                item.get("note", ""),
                item.get("entered_by", "lab"),
                at,
            )
        )
    return Case(path, model, books, inputs, json.loads((path / "expected.json").read_text()))


def books_for(case: Case, labels: list[str]) -> dict[str, MonthBooks]:
    return {label: case.books.get(label) or MonthBooks(label) for label in labels}


def same(actual: Any, wanted: Any, where: str = "") -> None:
    """`actual` holds everything `wanted` says (dicts: the keys given; lists: element by element)."""
    if isinstance(wanted, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not an object"
        for key, value in wanted.items():
            assert key in actual, f"{where}.{key} missing (have {sorted(actual)})"
            same(actual[key], value, f"{where}.{key}")
    elif isinstance(wanted, list):
        assert isinstance(actual, list | tuple) and len(actual) == len(wanted), f"{where}: {actual!r} != {wanted!r}"
        for i, (a, w) in enumerate(zip(actual, wanted, strict=True)):
            same(a, w, f"{where}[{i}]")
    elif isinstance(wanted, float) and not isinstance(wanted, bool):
        assert isinstance(actual, int | float) and math.isclose(actual, wanted, rel_tol=1e-9, abs_tol=1e-9), (
            f"{where}: {actual!r} != {wanted!r}"
        )
    else:
        assert actual == wanted, f"{where}: {actual!r} != {wanted!r}"

"""The energy_platform golden cases (tests/testcases/energy_platform/<case>/): the books as the
energy role stores them, written compactly as runs, and the plant and mapping they are sent with.

intervals.csv: asset, role, source, unit, start, end, value, quality: every 15-minute bucket in
[start, end) holds `value`. records.csv: unit, product, kind, start, end, step_s, tonnes,
electricity_kwh, consumables ("coke=0.33;..."): one production record per step in [start, end).
"""

from __future__ import annotations

import csv
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ferrogate.gateway.config_loader import parse_plant
from ferrogate.gateway.energy.books import IntervalRow
from ferrogate.gateway.energy.model import AccountingModel, resolve
from ferrogate.gateway.energy.production import ProductionRecord
from ferrogate.gateway.reading import Quality
from ferrogate.gateway.timeutil import datetime_to_ns
from ferrogate.gateway.uplink.energy_platform.builder import limit_standards
from ferrogate.gateway.uplink.energy_platform.mapping import PlatformMapping, load_mapping

CASES = Path(__file__).parent / "testcases" / "energy_platform"
NS = 1_000_000_000


def ns(text: str) -> int:
    return datetime_to_ns(datetime.fromisoformat(text))


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def load_intervals(path: Path, step_s: int = 900) -> list[IntervalRow]:
    out = []
    for row in _rows(path):
        t, end = ns(row["start"]), ns(row["end"])
        while t < end:
            q = Quality(row["quality"])
            out.append(
                IntervalRow(
                    row["asset"],
                    row["role"],
                    row["source"],
                    row["unit"],
                    t,
                    t + step_s * NS,
                    float(row["value"]),
                    q,
                    (),
                )
            )
            t += step_s * NS
    return out


def load_records(path: Path) -> list[ProductionRecord]:
    out = []
    for row in _rows(path):
        t, end, step = ns(row["start"]), ns(row["end"]), int(row["step_s"]) * NS
        consumables = {k: float(v) for k, _, v in (p.partition("=") for p in row["consumables"].split(";") if p)}
        while t < end:
            rec = ProductionRecord(row["unit"], row["product"], row["kind"], f"{row['unit']}-{t}", t, t + step, None)
            rec.tonnes = float(row["tonnes"])
            rec.electricity_kwh = float(row["electricity_kwh"])
            rec.consumables = dict(consumables)
            out.append(rec)
            t += step
    return out


def merge(base: list[IntervalRow], late: list[IntervalRow]) -> list[IntervalRow]:
    """The books after re-deriving: a late bucket replaces the one of the same asset, role and start."""
    by_key = {r.key: r for r in base}
    by_key.update({r.key: r for r in late})
    return sorted(by_key.values(), key=lambda r: (r.start_ns, r.asset, r.role))


def plant_model() -> tuple[AccountingModel, str]:
    path = CASES / "plant.yaml"
    plant = parse_plant(path.read_text(encoding="utf-8"), path)
    model = resolve(plant, plant.accounting)[0]
    assert model is not None
    return model, plant.site.timezone


def plant_standards() -> dict[str, str | None]:
    """The cases' products and the limit standards the compliance books grade them by."""
    path = CASES / "plant.yaml"
    plant = parse_plant(path.read_text(encoding="utf-8"), path)
    return limit_standards(plant, plant_model()[0])


def case_mapping(case: Path, model: AccountingModel) -> PlatformMapping:
    path = case / "mapping.yaml" if (case / "mapping.yaml").exists() else CASES / "mapping.yaml"
    mapping, problems = load_mapping(path, model)
    assert mapping is not None, problems
    return mapping


def case_doc(case: Path) -> dict[str, Any]:
    doc = json.loads((case / "case.json").read_text(encoding="utf-8"))
    doc["send_from"] = date.fromisoformat(doc["send_from"])
    return doc

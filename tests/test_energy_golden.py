"""Golden accounting scenarios: tests/testcases/accounting/<case>/ holds a plant file, the readings a
gateway would have stored (readings.csv) and the hand-calculated records, buckets and KPIs
(expected.json; each case's README.md shows the arithmetic)."""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ferrogate.gateway.config_loader import load_plant
from ferrogate.gateway.energy.books import Books, BooksResult
from ferrogate.gateway.energy.model import resolve
from ferrogate.gateway.energy.series import Series
from ferrogate.gateway.reading import Quality, Reading, ScanBatch
from ferrogate.gateway.timeutil import datetime_to_ns, iso_utc

CASES = sorted(p for p in (Path(__file__).parent / "testcases" / "accounting").iterdir() if p.is_dir())


def ns(text: str) -> int:
    return datetime_to_ns(datetime.fromisoformat(text))


def load_readings(path: Path) -> dict[tuple[str, str], Series]:
    store: dict[tuple[str, str], Series] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            value = float(row["value"]) if row["value"] else None
            series = store.setdefault((row["device"], row["point"]), Series())
            series.add(ns(row["time"]), value, Quality(row["quality"]))
    return store


def scan_batches(
    path: Path, site: str, held_back: Callable[[dict[str, str]], bool], late: bool, units: Mapping[str, str]
) -> list[ScanBatch]:
    """A readings.csv as one batch per device scan, as a gateway publishes them; `late` selects the
    readings `held_back` picks (replayed later), else the others. `units`: point -> unit."""
    scans: dict[tuple[str, int], list[Reading]] = defaultdict(list)
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            if held_back(row) != late:
                continue
            t = ns(row["time"])
            value = float(row["value"]) if row["value"] else None
            reading = Reading(row["point"], value, units.get(row["point"], ""), t, Quality(row["quality"]))
            scans[(row["device"], t)].append(reading)
    return [ScanBatch(site, dev, i, t, rs) for i, ((dev, t), rs) in enumerate(sorted(scans.items()))]


def run_case(case: Path) -> tuple[BooksResult, dict[str, Any]]:
    expected = json.loads((case / "expected.json").read_text())
    plant = load_plant(case / "plant.yaml")
    model, problems = resolve(plant, plant.accounting)
    assert model is not None, problems
    window = expected["window"]
    return Books(model).compute(load_readings(case / "readings.csv"), ns(window["start"]), ns(window["end"])), expected


def same(actual: Any, wanted: Any, what: str) -> None:
    if isinstance(wanted, float) or (isinstance(wanted, int) and isinstance(actual, float)):
        assert actual is not None and math.isclose(actual, wanted, rel_tol=1e-9, abs_tol=1e-6), (
            f"{what}: {actual} != {wanted}"
        )
    else:
        assert actual == wanted, f"{what}: {actual!r} != {wanted!r}"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_accounting_case(case: Path) -> None:
    result, expected = run_case(case)
    if expected["records"] is not None:
        assert [r.id for r in result.records] == [e["id"] for e in expected["records"]]
        for rec, want in zip(result.records, expected["records"], strict=True):
            assert (iso_utc(rec.start_ns), iso_utc(rec.end_ns)) == (
                want["start"].replace("Z", ".000Z"),
                want["end"].replace("Z", ".000Z"),
            )
            for name in ("tonnes", "electricity_kwh", "waste_heat_kwh"):
                same(getattr(rec, name), want[name], f"{rec.id}.{name}")
            assert set(rec.consumables) == set(want["consumables"])
            for material, qty in want["consumables"].items():
                same(rec.consumables[material], qty, f"{rec.id}.{material}")
            assert (rec.quality.value, sorted(map(str, rec.flags))) == (want["quality"], want["flags"]), rec.id
    kpis = {(k.scope, k.subject, k.period.kind.value, k.period.label): k for k in result.kpis}
    for want in expected["kpis"]:
        kpi = kpis[(want["scope"], want["subject"], want["period"], want["label"])]
        assert (kpi.complete, kpi.quality.value) == (want["complete"], want["quality"])
        for name, value in want["fields"].items():
            same(kpi.fields.get(name), value, f"{want['subject']}/{want['label']}.{name}")
    rows = {(r.asset, r.role, iso_utc(r.start_ns)): r for r in result.intervals}
    for want in expected["intervals"]:
        row = rows[(want["asset"], want["role"], want["start"].replace("Z", ".000Z"))]
        same(row.value, want["value"], f"bucket {want}")
        assert (row.quality.value, [str(f) for f in row.flags]) == (want["quality"], want["flags"]), want
    balances = {(b.balance.group, b.period.kind.value, b.period.label): b.balance for b in result.balances}
    for want in expected["balances"]:
        b = balances[(want["group"], want["period"], want["label"])]
        for name in ("main_kwh", "members_kwh", "loss_kwh", "loss_percent"):
            same(getattr(b, name), want[name], f"balance.{name}")
        assert b.status.value == want["status"]


def test_golden_records_do_not_depend_on_the_order_readings_arrive() -> None:
    """Late and repeated readings (replay after an outage) give the same books."""
    case = Path(__file__).parent / "testcases" / "accounting" / "saf_rollover_reset"
    in_order, expected = run_case(case)
    plant = load_plant(case / "plant.yaml")
    model, _ = resolve(plant, plant.accounting)
    assert model is not None
    rows = list(csv.DictReader((case / "readings.csv").open(newline="")))
    shuffled: dict[tuple[str, str], Series] = {}
    for row in [*rows[1::2][::-1], *rows[::2], *rows[:50]]:  # odd rows backwards, even rows, a redelivered head
        value = float(row["value"]) if row["value"] else None
        shuffled.setdefault((row["device"], row["point"]), Series()).add(
            ns(row["time"]), value, Quality(row["quality"])
        )
    window = expected["window"]
    replayed = Books(model).compute(shuffled, ns(window["start"]), ns(window["end"]))
    assert replayed.records == in_order.records
    assert replayed.intervals == in_order.intervals


def test_a_bad_reading_on_another_clock_neither_moves_the_horizon_nor_changes_the_books() -> None:
    """The gateway stamps the bad readings it makes up for a silent device with its own clock; a device
    whose clock is 20 h behind then has a bad reading 20 h past its usable ones. The horizon (how far
    every meter has reported) and the books stay what the usable readings say."""
    case = Path(__file__).parent / "testcases" / "accounting" / "saf_rollover_reset"
    in_order, expected = run_case(case)
    plant = load_plant(case / "plant.yaml")
    model, _ = resolve(plant, plant.accounting)
    assert model is not None
    store = load_readings(case / "readings.csv")
    books = Books(model)
    open_end = 2**62
    horizon = books.horizon(store, open_end)
    series = next(s for key, s in store.items() if key in {m.key for m in model.meters()})
    series.add(series.times[-1] + 20 * 3600 * 10**9, None, Quality.BAD)
    assert books.horizon(store, open_end) == horizon
    window = expected["window"]
    again = books.compute(store, ns(window["start"]), ns(window["end"]))
    assert again.records == in_order.records and again.intervals == in_order.intervals

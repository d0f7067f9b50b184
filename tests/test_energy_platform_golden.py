"""Golden cases of the energy-platform uplink: books + mapping -> the messages, built in sending
order exactly as the uplink builds them (state.build_in_order), compared with hand-calculated
figures (each case's README.md) in expected.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ferrogate.gateway.uplink.energy_platform.builder import Built, MessageBuilder
from ferrogate.gateway.uplink.energy_platform.periods import closable
from ferrogate.gateway.uplink.energy_platform.state import BuildState, build_in_order
from tests.energy_platform_cases import (
    CASES,
    case_doc,
    case_mapping,
    load_intervals,
    load_records,
    merge,
    ns,
    plant_model,
    plant_standards,
)

CASE_DIRS = sorted(p for p in CASES.iterdir() if p.is_dir())


def run_case(case: Path) -> list[Built]:
    model, zone_name = plant_model()
    zone = ZoneInfo(zone_name)
    mapping = case_mapping(case, model)
    doc = case_doc(case)
    builder = MessageBuilder(model, mapping, zone, plant_standards())
    kinds = tuple(k for k in ("quarter", "day", "month") if mapping.items_for(k))
    due = closable(kinds, {}, doc["send_from"], zone, ns(doc["horizon"]), 100_000)
    records = load_records(case / "records.csv")
    intervals = load_intervals(case / "intervals.csv")
    late = doc.get("late")
    later = merge(intervals, load_intervals(case / late["intervals"])) if late else intervals
    state = BuildState()
    out: list[Built] = []
    for p in due:
        rows = later if late and p.kind in late["kinds"] else intervals
        out += build_in_order(builder, state, [p], records, rows)
    return out


def summary(built: list[Built]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for b in built:
        kind = b.message["period"]["type"]
        counts[kind] = counts.get(kind, 0) + 1
    return {
        "counts": counts,
        "order": [b.message["message_id"] for b in built],
        "failed": {b.message["message_id"]: sorted({f.rule for f in b.failures}) for b in built if b.failures},
    }


@pytest.mark.parametrize("case", CASE_DIRS, ids=[p.name for p in CASE_DIRS])
def test_golden_energy_platform_case(case: Path) -> None:
    built = run_case(case)
    expected = json.loads((case / "expected.json").read_text(encoding="utf-8"))
    got = summary(built)
    assert got["counts"] == expected["counts"]
    assert got["failed"] == expected["failed"]
    by_id = {b.message["message_id"]: b.message for b in built}
    for message_id, message in expected["messages"].items():
        assert by_id[message_id] == message, message_id
    # sending order: by period end, a day right after its last quarter-hour, a month after its last day
    ends = [(b.message["period"]["end"], ("quarter", "day", "month").index(b.message["period"]["type"])) for b in built]
    assert ends == sorted(ends)

"""Golden cases for the pollutant statistics (HJ 212-2017 Appendix D): tests/testcases/pollution/<case>/
holds `case.yaml` (start, reference O2, which hours and days to report), `readings.csv` (real-time
readings as spans: point, from_s, to_s, every_s, value, quality, reason) and `expected.json` (the
hours and days), with the hand calculation in README.md beside them."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from ferrogate.gateway.pollution.emissions import hour_emission
from ferrogate.gateway.pollution.kpi import period_emission
from ferrogate.gateway.pollution.statistics import HOUR_NS, Rules, Sample, minutes
from ferrogate.gateway.timeutil import datetime_to_ns

CASES = sorted(p for p in (Path(__file__).parent / "testcases" / "pollution").iterdir() if p.is_dir())


def samples(case: Path, start_ns: int) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {}
    with (case / "readings.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(line for line in f if not line.startswith("#")):
            good = row["quality"] == "good"
            value = float(row["value"]) if row["value"] else None
            t, to, every = float(row["from_s"]), float(row["to_s"]), float(row["every_s"])
            while t < to:
                out.setdefault(row["point"], []).append(
                    Sample(start_ns + round(t * 1e9), value, good, row["reason"] or None)
                )
                t += every
    return out


def rounded(x: float | None) -> float | None:
    return None if x is None else round(x, 6)


def run_case(case: Path) -> dict[str, Any]:
    doc = yaml.safe_load((case / "case.yaml").read_text(encoding="utf-8"))
    start = datetime_to_ns(datetime.fromisoformat(doc["start"]))
    rules = Rules(**doc.get("rules", {}))
    data = samples(case, start)
    by_point = {point: minutes(s, rules) for point, s in data.items()}
    hours = []
    for h in range(doc["hours"]):
        h0 = start + h * HOUR_NS
        inside = {p: [m for m in ms if h0 <= m.start_ns < h0 + HOUR_NS] for p, ms in by_point.items()}
        hours.append(
            hour_emission(inside["so2"], inside["flow"], h0, rules, inside.get("o2", ()), doc.get("reference_o2_pct"))
        )
    out: dict[str, Any] = {
        "hours": [
            {
                "hour": i,
                "concentration_mg_m3": rounded(h.concentration),
                "corrected_mg_m3": rounded(h.corrected),
                "flow_m3_s": rounded(h.flow_m3_s),
                "rate_kg_h": rounded(h.rate_kg_h),
                "mass_kg": rounded(h.mass_kg),
                "flag": h.flag,
            }
            for i, h in enumerate(hours)
        ]
    }
    if doc.get("day"):
        day = period_emission(hours, start, start + 24 * HOUR_NS, rules.day_min_hours)
        out["day"] = {"mass_kg": rounded(day.kg), "valid_hours": day.valid_hours, "flag": day.flag}
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_case(case: Path) -> None:
    assert run_case(case) == json.loads((case / "expected.json").read_text(encoding="utf-8"))

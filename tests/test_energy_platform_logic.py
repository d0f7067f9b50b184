"""Pure parts of the energy-platform uplink: periods on the 00:00-local grid, the quality rules,
the mapping file and plant-file checks, what an HTTP status means for a message, the build state."""

from __future__ import annotations

from datetime import date
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from ferrogate.gateway.config_loader import ConfigError, load_plant, parse_plant
from ferrogate.gateway.energy.books import IntervalRow
from ferrogate.gateway.energy.model import resolve
from ferrogate.gateway.reading import Quality
from ferrogate.gateway.uplink.energy_platform import quality
from ferrogate.gateway.uplink.energy_platform.builder import MessageBuilder
from ferrogate.gateway.uplink.energy_platform.client import Outcome, outcome_of
from ferrogate.gateway.uplink.energy_platform.mapping import load_mapping
from ferrogate.gateway.uplink.energy_platform.periods import (
    PlatformPeriod,
    closable,
    first_period,
    misaligned,
    parts,
    period_at,
)
from ferrogate.gateway.uplink.energy_platform.state import BuildState
from tests.conftest import ROOT
from tests.energy_platform_cases import CASES, ns, plant_model

CN = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
MIN = 60 * 1_000_000_000


# --- periods ---------------------------------------------------------------------------------------


def test_periods_start_at_local_midnight_and_on_the_quarter_hour() -> None:
    t = ns("2026-11-03T08:07:30+08:00")
    q = period_at("quarter", t, CN)
    assert (q.start_ns, q.end_ns, q.label) == (
        ns("2026-11-03T08:00+08:00"),
        ns("2026-11-03T08:15+08:00"),
        "2026-11-03T08:00",
    )
    d = period_at("day", ns("2026-11-03T23:59+08:00"), CN)
    assert (d.start_ns, d.end_ns, d.label) == (ns("2026-11-02T16:00Z"), ns("2026-11-03T16:00Z"), "2026-11-03")
    m = period_at("month", t, CN)
    assert (m.start_ns, m.end_ns, m.label) == (ns("2026-11-01T00:00+08:00"), ns("2026-12-01T00:00+08:00"), "2026-11")


def test_parts_of_a_day_and_a_month_also_across_a_dst_change() -> None:
    assert len(parts(period_at("day", ns("2026-11-03T12:00+08:00"), CN), CN)) == 96
    assert len(parts(period_at("month", ns("2026-11-03T12:00+08:00"), CN), CN)) == 30
    assert len(parts(period_at("month", ns("2028-02-03T12:00+08:00"), CN), CN)) == 29
    spring = period_at("day", ns("2026-03-29T12:00+02:00"), BERLIN)  # 23 hours
    assert len(parts(spring, BERLIN)) == 92
    assert parts(spring, BERLIN)[8].label == "2026-03-29T03:00"  # 02:00-03:00 local does not exist
    autumn = parts(period_at("day", ns("2026-10-25T12:00+01:00"), BERLIN), BERLIN)  # 25 hours
    labels = [q.label for q in autumn]
    assert len(autumn) == 100 and len(set(labels)) == 100  # the repeated hour gets ids of its own
    assert labels[8:17] == [
        "2026-10-25T02:00",
        "2026-10-25T02:15",
        "2026-10-25T02:30",
        "2026-10-25T02:45",
        "2026-10-25T02:00+01:00",
        "2026-10-25T02:15+01:00",
        "2026-10-25T02:30+01:00",
        "2026-10-25T02:45+01:00",
        "2026-10-25T03:00",
    ]
    assert all(b.start_ns == a.end_ns for a, b in pairwise(autumn))


def test_the_first_month_is_the_first_whole_one() -> None:
    assert first_period("month", date(2026, 11, 29), CN).label == "2026-12"
    assert first_period("month", date(2026, 11, 1), CN).label == "2026-11"
    assert first_period("quarter", date(2026, 11, 29), CN).label == "2026-11-29T00:00"


def test_closable_periods_in_sending_order_and_resumed_after_the_last_made() -> None:
    horizon = ns("2026-11-02T00:30+08:00")
    due = closable(("quarter", "day", "month"), {}, date(2026, 11, 1), CN, horizon, 1000)
    labels = [p.label for p in due]
    assert len(due) == 96 + 1 + 2 and labels[95:98] == ["2026-11-01T23:45", "2026-11-01", "2026-11-02T00:00"]
    made = {"quarter": due[50].start_ns}
    rest = closable(("quarter", "day"), made, date(2026, 11, 1), CN, horizon, 1000)
    assert rest[0].label == due[51].label
    # a limit keeps a prefix of the same order
    assert [p.label for p in closable(("quarter", "day"), {}, date(2026, 11, 1), CN, horizon, 97)] == labels[:97]


def test_a_period_off_the_grid_is_named() -> None:
    good = period_at("quarter", ns("2026-11-03T08:00+08:00"), CN)
    assert misaligned(good, CN) is None
    off = PlatformPeriod("quarter", good.start_ns + 5 * MIN, good.end_ns + 5 * MIN, "2026-11-03T08:05")
    assert "off the 00:00-local grid" in (misaligned(off, CN) or "")


# --- quality rules ---------------------------------------------------------------------------------


def test_completeness_rule_at_90_percent() -> None:
    assert quality.completeness(90.0) == []
    (failure,) = quality.completeness(89.9)
    assert failure.rule == "completeness" and "89.9 %" in failure.detail


def test_parts_rule_5_percent_and_missing_parts() -> None:
    assert quality.parts({"E": 100.0}, {"E": (95.0, 30)}, 30, "days") == []
    (off,) = quality.parts({"E": 100.0}, {"E": (94.9, 30)}, 30, "days")
    assert (off.rule, off.code) == ("parts_sum", "E") and "5.1 % off" in off.detail
    (missing,) = quality.parts({"E": 100.0}, {"E": (100.0, 29)}, 30, "days")
    assert missing.rule == "parts_missing" and "29 of 30 days" in missing.detail
    assert quality.parts({"E": None}, {}, 30, "days") == []  # no figure: the item says why already
    assert quality.parts({"E": 0.0}, {"E": (0.0, 30)}, 30, "days") == []


def test_a_bucket_across_the_period_boundary_fails_alignment() -> None:
    model, zone = plant_model()
    mapping, _ = load_mapping(CASES / "mapping.yaml", model)
    assert mapping is not None
    builder = MessageBuilder(model, mapping, ZoneInfo(zone))
    q = period_at("quarter", ns("2026-11-03T08:00+08:00"), CN)
    hour = IntervalRow(
        "incomer", "electricity_import", "counter", "kWh", q.start_ns, q.start_ns + 60 * MIN, 1e4, Quality.GOOD, ()
    )
    built = builder.build(q, [], [hour], {})
    rules = [f.rule for f in built.failures]
    assert "alignment" in rules and "completeness" in rules and not built.message["quality"]["passed"]
    assert all("alignment" in item["flags"] for item in built.message["items"])


# --- HTTP answers, build state ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.delivered),
        (202, Outcome.delivered),
        (409, Outcome.duplicate),
        (503, Outcome.retry),
        (500, Outcome.retry),
        (429, Outcome.retry),
        (408, Outcome.retry),
        (400, Outcome.rejected),
        (422, Outcome.rejected),
        (401, Outcome.retry),
        (403, Outcome.retry),
    ],
)
def test_what_a_status_means_for_the_message(status: int, outcome: Outcome) -> None:
    assert outcome_of(status) is outcome


def test_build_state_passes_sums_to_the_parent_and_survives_a_restart(tmp_path: Path) -> None:
    state = BuildState()
    day = period_at("day", ns("2026-11-03T00:00+08:00"), CN)
    for q in parts(day, CN)[:3]:
        state.record(q, {"E": 1.5}, CN)
    assert state.parts_of(day) == {"E": (4.5, 3)}
    state.save(tmp_path / "state.json")
    again = BuildState.load(tmp_path / "state.json")
    assert again.parts_of(day) == {"E": (4.5, 3)} and again.made_through == state.made_through
    again.record(day, {"E": 4.5}, CN)
    assert again.parts_of(day) == {} and again.parts_of(period_at("month", day.start_ns, CN)) == {"E": (4.5, 1)}


# --- mapping file and plant file -------------------------------------------------------------------


def _mapping(tmp_path: Path, items: list[dict]) -> Path:
    doc = yaml.safe_load((CASES / "mapping.yaml").read_text(encoding="utf-8"))
    doc["items"] = items
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("item", "why"),
    [
        ({"code": "X", "indicator": "output", "product": "FeSi", "unit": "t", "periods": ["day"]}, "no product 'FeSi'"),
        ({"code": "X", "indicator": "electricity", "unit": "tce", "periods": ["day"]}, "cannot be sent in 'tce'"),
        ({"code": "X", "indicator": "material", "material": "coal", "unit": "t", "periods": ["day"]}, "no material"),
        ({"code": "X", "indicator": "material", "unit": "t", "periods": ["day"]}, "needs 'material'"),
        ({"code": "X", "indicator": "output", "product": "SiMn", "unit": "t", "periods": ["week"]}, "periods"),
        ({"code": "X", "indicator": "comprehensive", "unit": "kcal", "periods": ["day"]}, "unknown unit"),
    ],
)
def test_mapping_problems_name_the_field_and_why(tmp_path: Path, item: dict, why: str) -> None:
    model, _ = plant_model()
    mapping, problems = load_mapping(_mapping(tmp_path, [item]), model)
    assert mapping is None and any(why in p for p in problems), problems


def test_the_plant_file_names_the_mapping_file_and_what_is_wrong(tmp_path: Path) -> None:
    doc = yaml.safe_load((CASES / "plant.yaml").read_text(encoding="utf-8"))
    doc["influxdb"] = {"url": "http://127.0.0.1:8086"}
    bad = _mapping(tmp_path, [{"code": "X", "indicator": "output", "product": "FeSi", "unit": "t", "periods": ["day"]}])
    platform = {
        "id": "p",
        "url": "https://platform.example/api",
        "mapping_file": str(bad),
        "token_env": "T",
        "send_from": "2026-11-01",
    }
    doc["uplink"] = {"energy_platforms": [platform]}
    with pytest.raises(ConfigError) as err:
        parse_plant(yaml.safe_dump(doc), tmp_path / "plant.yaml")
    text = str(err.value)
    assert "uplink.energy_platforms[0].mapping_file" in text and str(bad) in text and "no product 'FeSi'" in text
    for change, why in [
        ({"url": "http://platform.example/api"}, "https://"),
        ({"token_env": None}, "no authentication"),
        ({"token_env": None, "client_cert_file": "/x.crt"}, "both 'client_cert_file' and 'client_key_file'"),
        ({"token": "secret"}, "token_env"),
    ]:
        doc["uplink"] = {"energy_platforms": [{k: v for k, v in {**platform, **change}.items() if v is not None}]}
        with pytest.raises(ConfigError, match=why):
            parse_plant(yaml.safe_dump(doc), tmp_path / "plant.yaml")


def test_the_deployed_example_mapping_resolves_against_the_guizhou_plant() -> None:
    """deploy/energy-platform/example-mapping.yaml stays loadable (and says it is an example)."""
    plant = load_plant(ROOT / "deploy" / "plants" / "guizhou-ferroalloy.yaml")
    model = resolve(plant, plant.accounting)[0]
    assert model is not None
    mapping, problems = load_mapping(ROOT / "deploy" / "energy-platform" / "example-mapping.yaml", model)
    assert problems == [] and mapping is not None and mapping.example
    assert {i.indicator for i in mapping.items} == {
        "comprehensive",
        "electricity",
        "material",
        "output",
        "unit_consumption",
        "completeness",
    }

"""Grafana dashboards without Grafana: the JSON is what the builders in deploy/grafana/dashboard_builder
(grafana-foundation-sdk) make and reads back through the SDK's typed model unchanged, its structure is
sound (unique uids, our datasource, a unit on every panel, bilingual titles), and every panel query,
with Grafana's macros and template variables expanded, runs against the real InfluxDB filled by a
short accelerated run of the demo plant and returns data."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType

import pytest

from ferrogate.gateway.demo import Demo
from tests.grafana_queries import DASHBOARDS, GRAFANA, load, panel_series, panels

HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def builder(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """deploy/grafana/dashboard_builder: a package beside the JSON, not part of the installed ferrogate."""
    monkeypatch.syspath_prepend(str(GRAFANA))
    import dashboard_builder

    return dashboard_builder


def test_dashboards_are_built_from_their_description(builder: ModuleType) -> None:
    rendered = builder.render()
    assert sorted(rendered) == [p.name for p in DASHBOARDS], "run deploy/grafana/build_dashboards.py"
    for path in DASHBOARDS:
        assert path.read_text(encoding="utf-8") == rendered[path.name], (
            f"{path.name} differs from what its builder makes: change deploy/grafana/dashboard_builder, "
            "then run deploy/grafana/build_dashboards.py (never edit the JSON by hand)"
        )


def test_dashboards_read_back_through_grafanas_typed_model(builder: ModuleType) -> None:
    """Every key of the JSON is one the SDK's Grafana schema knows (a key it does not know would be
    lost on the way back), and every target is a typed raw InfluxQL query."""
    from dashboard_builder.influxql import InfluxQLQuery
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import Dashboard

    for path in DASHBOARDS:
        data = load(path)
        typed = Dashboard.from_json(data)
        assert json.loads(json.dumps(typed, cls=JSONEncoder)) == data, path.name
        targets = [t for p in typed.panels or [] for t in getattr(p, "targets", None) or []]
        assert targets and all(isinstance(t, InfluxQLQuery) for t in targets), path.name


def test_dashboard_structure() -> None:
    assert len(DASHBOARDS) == 7
    uids = [load(p)["uid"] for p in DASHBOARDS]
    assert len(set(uids)) == len(uids)
    for path in DASHBOARDS:
        board = load(path)
        assert board["schemaVersion"] >= 36 and HAN.search(board["title"]) and re.search(r"[A-Za-z]", board["title"])
        ids = [p["id"] for p in panels(board)]
        assert len(set(ids)) == len(ids), path.name
        for p in panels(board):
            where = f"{path.name}: {p['title']}"
            assert HAN.search(p["title"]) and re.search(r"[A-Za-z]{3}", p["title"]), f"{where}: bilingual title"
            assert p["datasource"] == {"type": "influxdb", "uid": "ferrogate-influx"}, where
            assert p["fieldConfig"]["defaults"].get("unit"), f"{where}: no unit"
            for t in p["targets"]:
                assert t["rawQuery"] is True and t["query"].strip(), f"{where}: builder-mode or empty query"
                assert t["datasource"]["uid"] == "ferrogate-influx", where
        for v in board["templating"]["list"]:
            assert v["datasource"]["uid"] == "ferrogate-influx"
    provisioned = (GRAFANA / "provisioning" / "datasources" / "ferrogate.yaml").read_text()
    assert "uid: ferrogate-influx" in provisioned


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.name for p in DASHBOARDS])
async def test_every_panel_query_returns_data(path: Path, accounted_demo: Demo) -> None:
    gateway = accounted_demo.gateway
    assert gateway is not None and gateway.ingest is not None
    found = await panel_series(load(path), gateway.ingest.influx_client.query)  # raises on a query error
    empty = [title for title, n in found.items() if n == 0]
    assert not empty, f"{path.name}: panels returned no series: {empty}"

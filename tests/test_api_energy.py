"""The energy API over real HTTP against a running stack (simulators, broker, database, engine):
a heat, a day and a month read through the API equal what the accounting engine computed and
what it stored in InfluxDB; error paths of the energy routes."""

from __future__ import annotations

import csv
import io
import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from ferrogate.gateway.demo import Demo
from ferrogate.gateway.timeutil import datetime_to_ns, iso_utc, ns_to_datetime


def client(demo: Demo, timeout_s: float = 30) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{demo.options.api_port}", headers={"X-API-Key": demo.api_key}, timeout=timeout_s
    )


def window(demo: Demo) -> dict[str, str]:
    """A range covering the run (history starts a few hours back; periods may start earlier)."""
    now = ns_to_datetime(demo.simulation.clock.now_ns()) if demo.simulation else None
    assert now is not None
    return {"from": (now - timedelta(days=40)).isoformat(), "to": (now + timedelta(days=1)).isoformat()}


async def influx_rows(demo: Demo, query: str) -> list[dict[str, Any]]:
    assert demo.gateway is not None and demo.gateway.ingest is not None
    return [{**s.tags, **r} for s in await demo.gateway.ingest.influx_client.query(query) for r in s.rows()]


async def test_a_heat_reads_the_same_through_api_engine_and_database(accounted_demo: Demo) -> None:
    energy = accounted_demo.gateway.energy  # type: ignore[union-attr]
    heats = [r for r in energy.records.values() if r.kind == "eaf_heat" and r.tonnes]
    assert heats, "the run produced no EAF heat"
    heat = max(heats, key=lambda r: r.end_ns)
    async with client(accounted_demo) as http:
        page = (
            await http.get("/api/v1/heats", params={**window(accounted_demo), "asset": heat.unit, "limit": 1000})
        ).json()
    item = next(i for i in page["items"] if i["id"] == heat.id)
    stored = await influx_rows(accounted_demo, f"""SELECT * FROM "long".production_record WHERE id='{heat.id}'""")
    assert len(stored) == 1
    assert item["electricity_kwh"] == heat.electricity_kwh == stored[0]["electricity_kwh"]
    assert item["tonnes_t"] == heat.tonnes == stored[0]["tonnes_t"]
    assert item["kwh_per_t"] == pytest.approx(heat.kwh_per_t, rel=1e-12)
    assert item["end"] == iso_utc(heat.end_ns) and item["start"] == iso_utc(heat.start_ns)
    assert page["total"] >= len(page["items"]) >= 1


def instant_ns(text: str) -> int:
    return datetime_to_ns(datetime.fromisoformat(text.replace("Z", "+00:00")))


@pytest.mark.parametrize("path", ["/api/v1/heats", "/api/v1/cost/heats"])
async def test_heats_without_a_range_answer_the_last_24_hours(accounted_demo: Demo, path: str) -> None:
    """A newcomer's first try, GET /api/v1/heats (or their costs), answers the heats and taps of the
    last day: all of this run's (its plant history is a few hours old), exactly those the engine
    closed in the range the answer names, and the same as asking for that range explicitly."""
    energy = accounted_demo.gateway.energy  # type: ignore[union-attr]
    async with client(accounted_demo) as http:
        before_ns = time.time_ns()
        answer = await http.get(path, params={"limit": 1000})
        after_ns = time.time_ns()
        body = answer.json()
        explicit = (await http.get(path, params={"from": body["from"], "to": body["to"], "limit": 1000})).json()
    assert answer.status_code == 200, answer.text
    start_ns, end_ns = instant_ns(body["from"]), instant_ns(body["to"])
    assert before_ns - 1_000_000 < end_ns <= after_ns  # now (the answer is to the millisecond)
    assert end_ns - start_ns == 24 * 3600 * 1_000_000_000
    closed = {r.id for r in energy.records.values() if start_ns <= r.end_ns < end_ns}
    assert closed == {r.id for r in energy.records.values()} and closed, "the run's records lie in the last day"
    assert {i["id"] for i in body["items"]} == closed == {i["id"] for i in explicit["items"]}
    assert body["total"] == explicit["total"] == len(closed)


async def test_kpis_without_a_scope_answer_for_the_plant(accounted_demo: Demo) -> None:
    site = accounted_demo.plant.site.id
    latest = accounted_demo.gateway.energy.latest[("plant", site, "day")]  # type: ignore[union-attr]
    async with client(accounted_demo) as http:
        answers = {
            path: [
                (await http.get(f"/api/v1/kpi/{path}", params={**window(accounted_demo), "group": "day", **scope}))
                for scope in ({}, {"plant": "true"})
            ]
            for path in ("energy-intensity", "carbon-intensity")
        }
    for path, (unscoped, plant) in answers.items():
        assert unscoped.status_code == 200, f"{path}: {unscoped.text}"
        assert unscoped.json() == plant.json(), path
        assert (unscoped.json()["scope"], unscoped.json()["subject"]) == ("plant", site), path
    energy = next(p for p in answers["energy-intensity"][0].json()["periods"] if p["label"] == latest.period.label)
    carbon = next(p for p in answers["carbon-intensity"][0].json()["periods"] if p["label"] == latest.period.label)
    for name in ("consumption_kwh", "purchased_kwh", "comprehensive_kgce"):
        assert energy[name] == latest.fields[name] and energy[name] > 0, name
    assert carbon["tco2_total"] == latest.fields["tco2_total"] > 0


async def test_the_defaults_are_documented_in_the_openapi_schema(accounted_demo: Demo) -> None:
    async with client(accounted_demo) as http:
        paths = (await http.get("/openapi.json")).json()["paths"]

    def parameters(path: str) -> dict[str, dict]:
        return {p["name"]: p for p in paths[path]["get"]["parameters"]}

    for path in ("/api/v1/heats", "/api/v1/cost/heats"):
        heats = parameters(path)
        assert not heats["from"]["required"] and not heats["to"]["required"]
        assert "24 hours" in heats["from"]["description"] and "now" in heats["to"]["description"]
        assert "last 24 hours" in paths[path]["get"]["description"]
    for path in ("/api/v1/kpi/energy-intensity", "/api/v1/kpi/carbon-intensity"):
        scope = parameters(path)
        assert not any(scope[n]["required"] for n in ("asset", "product", "plant")), path
        assert "whole plant" in scope["asset"]["description"] and "whole plant" in scope["plant"]["description"]
        assert "no scope given" in paths[path]["get"]["description"], path


@pytest.mark.parametrize("group", ["day", "month"])
async def test_a_period_reads_the_same_through_api_engine_and_database(accounted_demo: Demo, group: str) -> None:
    energy = accounted_demo.gateway.energy  # type: ignore[union-attr]
    kpi = energy.latest[("unit", "saf1", group)]
    async with client(accounted_demo) as http:
        body = (
            await http.get(
                "/api/v1/kpi/energy-intensity", params={**window(accounted_demo), "asset": "saf1", "group": group}
            )
        ).json()
        carbon = (
            await http.get(
                "/api/v1/kpi/carbon-intensity", params={**window(accounted_demo), "asset": "saf1", "group": group}
            )
        ).json()
    period = next(p for p in body["periods"] if p["label"] == kpi.period.label)
    stored = await influx_rows(
        accounted_demo,
        f"""SELECT * FROM "long".energy_kpi WHERE scope='unit' AND subject='saf1' AND """
        f"""period='{group}' AND label='{kpi.period.label}'""",
    )
    assert len(stored) == 1
    for name in ("electricity_kwh", "tonnes_t", "kwh_per_t", "comprehensive_kgce", "kgce_per_t"):
        assert period[name] == kpi.fields.get(name) == stored[0].get(name), name
    assert body["units"]["kgce_per_t"] == "kgce/t" and body["timezone"] == accounted_demo.plant.site.timezone
    assert period["completeness_percent"] is not None and 0 <= period["completeness_percent"] <= 100
    carbon_period = next(p for p in carbon["periods"] if p["label"] == kpi.period.label)
    for name in ("tco2_direct", "tco2_indirect", "tco2_total", "tco2_per_t"):
        assert carbon_period[name] == kpi.fields.get(name) == stored[0].get(name), name
    grid = [f for f in carbon_period["factors"].values() if f.get("unit") == "tCO2/MWh"]
    assert grid and all(f["source"] for f in grid)


async def test_benchmarks_balance_and_monthly_report(accounted_demo: Demo) -> None:
    async with client(accounted_demo) as http:
        marks = (await http.get("/api/v1/benchmarks")).json()
        balance = (await http.get("/api/v1/balance", params=window(accounted_demo))).json()
        plant_time = ns_to_datetime(accounted_demo.simulation.clock.now_ns())  # type: ignore[union-attr]
        month = plant_time.astimezone(ZoneInfo(accounted_demo.plant.site.timezone)).strftime("%Y-%m")
        report = (await http.get("/api/v1/reports/monthly", params={"month": month})).json()
        report_csv = await http.get("/api/v1/reports/monthly", params={"month": month, "format": "csv"})
    simn = next(p for p in marks["products"] if p["product"] == "SiMn")
    assert simn["month"]["benchmark_kgce_per_t"] == 860 and simn["month"]["baseline_kgce_per_t"] == 950
    assert simn["month"]["status"] in ("at_or_better_than_benchmark", "between", "worse_than_baseline")
    emm = next(p for p in marks["products"] if p["product"] == "EMM")
    assert emm["month"]["status"] == "no_benchmark"
    assert balance["items"] and all(i["group"] == "plant" for i in balance["items"])
    products = {r["subject"] for r in report["rows"] if r["scope"] == "product"}
    assert {"SiMn", "crude_steel_eaf"} <= products
    rows = list(csv.DictReader(io.StringIO(report_csv.text)))
    assert report_csv.headers["content-type"].startswith("text/csv")
    assert {r["subject"] for r in rows} == {r["subject"] for r in report["rows"]}


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        (
            "/api/v1/kpi/energy-intensity",
            {"from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z", "plant": "true"},
            400,
            "bad_range",
        ),
        (
            "/api/v1/kpi/energy-intensity",
            {"from": "2020-01-01T00:00:00Z", "to": "2026-11-01T00:00:00Z", "plant": "true"},
            400,
            "range_too_large",
        ),
        (
            "/api/v1/kpi/energy-intensity",
            {"from": "2026-11-01T00:00:00", "to": "2026-11-02T00:00:00Z", "plant": "true"},
            400,
            "time_without_zone",
        ),
        (
            "/api/v1/kpi/energy-intensity",
            {"from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z", "asset": "saf1", "plant": "true"},
            400,
            "bad_scope",
        ),
        (
            "/api/v1/kpi/carbon-intensity",
            {"from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z", "asset": "nope"},
            404,
            "unknown_asset",
        ),
        (
            "/api/v1/kpi/carbon-intensity",
            {"from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z", "product": "FeNi"},
            404,
            "unknown_product",
        ),
        ("/api/v1/reports/monthly", {"month": "2026-13"}, 400, "bad_month"),
        ("/api/v1/reports/monthly", {"month": "Nov 2026"}, 400, "bad_month"),
        # electricity cost (tests/test_cost_end_to_end.py)
        ("/api/v1/cost/demand", {"month": "2026-13"}, 400, "bad_month"),
        ("/api/v1/cost/surcharges", {"month": "soon"}, 400, "bad_month"),
        ("/api/v1/cost/heats", {"from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, 400, "bad_range"),
        (
            "/api/v1/cost/heats",
            {"from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z", "asset": "x"},
            404,
            "unknown_asset",
        ),
        (
            "/api/v1/cost/periods",
            {"from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z", "product": "FeNi"},
            404,
            "unknown_product",
        ),
    ],
)
async def test_energy_errors_are_4xx_with_a_reason(
    accounted_demo: Demo, path: str, params: dict[str, str], status: int, code: str
) -> None:
    async with client(accounted_demo) as http:
        response = await http.get(path, params=params)
    assert response.status_code == status, response.text
    assert response.json()["detail"]["error"] == code


async def test_recompute_needs_admin(accounted_demo: Demo) -> None:
    from ferrogate.api.keys import Role, new_key

    viewer, stored = new_key("viewer", Role.viewer)
    accounted_demo.gateway.api_keys.append(stored)  # type: ignore[union-attr]
    async with client(accounted_demo) as http:
        assert (await http.post("/api/v1/admin/reload")).status_code == 409  # the demo has no plant file path
        denied = await http.post(
            "/api/v1/admin/recompute",
            params={"from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z"},
            headers={"X-API-Key": viewer},
        )
    assert denied.status_code in (401, 403)


async def test_running_stack_readiness_metrics_and_plant_model(accounted_demo: Demo) -> None:
    async with client(accounted_demo) as http:
        ready = await http.get("/readyz")
        metrics = (await http.get("/metrics")).text
        eaf1 = (await http.get("/api/v1/assets/eaf1")).json()
        unauthenticated = await http.get("/api/v1/assets", headers={"X-API-Key": ""})
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"mqtt": "ok", "influxdb": "ok"}
    assert 'ferrogate_device_scans_total{device="eaf1_meter"}' in metrics
    roles = {m["role"]: m["unit"] for m in eaf1["meters"]}
    assert roles["electricity_import"] == "kWh" and roles["tap_weight"] == "t"
    assert [d["device"] for d in eaf1["devices"]] == ["eaf1_meter"]
    assert unauthenticated.status_code == 401

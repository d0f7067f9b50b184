"""Electricity cost end to end on the accelerated demo plant (simulators, real broker and database,
energy role with the EXAMPLE Fujian tariff): the API's per-heat costs add up to its period costs, and
agree with a recompute from the raw readings in InfluxDB; the month's maximum demand equals the
incomer's highest 15-minute bucket; surcharges follow the positions; the monthly report carries the
cost section; a plant without tariffs answers 404 (the other 4xx: tests/test_api_energy.py)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ferrogate.gateway.cost.books import CostBooks
from ferrogate.gateway.demo import Demo
from ferrogate.gateway.energy.production import NO_PREVIOUS_TAP
from ferrogate.gateway.timeutil import iso_utc
from tests.test_api_energy import client, influx_rows, window
from tests.waiting import eventually

REL = 1e-9
HOUR_NS = 3_600_000_000_000


def cost_of(demo: Demo) -> Any:
    gateway = demo.gateway
    assert gateway is not None and gateway.energy is not None and gateway.energy.extensions
    return gateway.energy.extensions[0]


FURNACES = ("eaf1", "eaf2", "saf1", "saf2")


@pytest.mark.parametrize("group", ["day", "month"])
async def test_heat_costs_add_up_to_the_period_and_match_a_recompute(accounted_demo: Demo, group: str) -> None:
    energy = accounted_demo.gateway.energy  # type: ignore[union-attr]
    stored = {r["id"]: r for r in await influx_rows(accounted_demo, 'SELECT * FROM "long".production_record')}
    counted: list[dict[str, Any]] = []
    async with client(accounted_demo) as http:
        for asset in FURNACES:
            span = energy.latest[("unit", asset, group)].period
            params = {**window(accounted_demo), "asset": asset}
            heats = (await http.get("/api/v1/cost/heats", params=params)).json()
            found = (await http.get("/api/v1/cost/periods", params={**params, "group": group})).json()
            period = next(p for p in found["periods"] if p["label"] == span.label)
            inside = [
                h
                for h in heats["items"]
                if iso_utc(span.start_ns) < h["end"] <= iso_utc(span.end_ns) and NO_PREVIOUS_TAP not in h["flags"]
            ]
            assert len(inside) == period["records"], (asset, len(inside), period)
            assert sum(h["cost_yuan"] for h in inside) == pytest.approx(period["cost_yuan"], rel=REL, abs=1e-9)
            assert sum(h["tonnes_t"] for h in inside) == pytest.approx(period["tonnes_t"], rel=REL, abs=1e-9)
            for name in ("valley", "flat", "peak", "sharp"):
                by_heats = sum(h["kwh_by_period"].get(name, 0.0) for h in inside)
                assert by_heats == pytest.approx(period["kwh_by_period"].get(name, 0.0), rel=REL, abs=1e-6), name
            missing = [h["id"] for h in inside if h["id"] not in stored]
            if missing:  # say what the books and InfluxDB hold for the asset (seen once under load, not understood)
                held = sorted((r.id, r.end_ns, sorted(r.flags)) for r in energy.records.values() if r.unit == asset)
                rows = await influx_rows(
                    accounted_demo, f"""SELECT id, flags FROM "long".production_record WHERE asset='{asset}'"""
                )
                pytest.fail(
                    f"cost heats {missing} have no production_record row in InfluxDB; books hold {held}; "
                    f"InfluxDB holds {[(r['id'], r['time'], r['flags']) for r in rows]}; energy rejected "
                    f"{energy.rejected_lines} lines, {len(energy.pending_lines)} pending, "
                    f"{energy.cycle_errors} cycle errors"
                )
            for h in inside:  # each heat's periods add up to the energy books' record of it
                assert sum(h["kwh_by_period"].values()) == pytest.approx(stored[h["id"]]["electricity_kwh"], rel=REL)
            counted += inside
    assert len(counted) >= 3, "every furnace product has a whole heat or tap in the run"

    # a recompute from the raw readings in InfluxDB, with the pure books, gives the same costs
    model = cost_of(accounted_demo).model
    start_ns = min(r.start_ns for r in energy.records.values() if r.id in {h["id"] for h in counted})

    async def raw_stored() -> bool:
        for asset in FURNACES:
            device, point = model.accounting.consumers[asset].counter.key
            q = f"SELECT last(quality) FROM reading WHERE device='{device}' AND point='{point}'"
            rows = await influx_rows(accounted_demo, q)
            if not rows or rows[0]["time"] < energy.store[(device, point)].times[-1]:
                return False
        return True

    await eventually(raw_stored, "ingest to store the furnace readings the books used")
    # each heat's start is a tap: a counter step between two readings. On a loaded box a scan can
    # come 15 s late (an hour of plant time at 240x), so read from well before: the whole run. The
    # readings are read on past the books' horizon (derive_stored): it may be a furnace's last tap,
    # and cut there, an energy counter that read on past it would pull it back before that heat
    since = start_ns - 24 * HOUR_NS
    derived = await energy.derive_stored(start_ns - 1, energy.horizon_ns + 1, since)
    again = {c.id: c for c in CostBooks(model).record_costs(derived.records, derived.electricity)}
    for h in counted:
        assert again[h["id"]].split.cost_yuan == pytest.approx(h["cost_yuan"], rel=REL), h["id"]
        assert {p.value: v for p, v in again[h["id"]].split.kwh.items()} == pytest.approx(h["kwh_by_period"], rel=REL)


async def test_month_demand_surcharges_and_report(accounted_demo: Demo) -> None:
    energy = accounted_demo.gateway.energy  # type: ignore[union-attr]
    month = energy.latest[("plant", "demo", "month")].period
    async with client(accounted_demo) as http:
        demand = (await http.get("/api/v1/cost/demand", params={"month": month.label})).json()
        surcharges = (await http.get("/api/v1/cost/surcharges", params={"month": month.label})).json()
        report = (await http.get("/api/v1/reports/monthly", params={"month": month.label})).json()
        tariffs = (await http.get("/api/v1/cost/tariffs")).json()
        limits = (await http.get("/api/v1/compliance/limits", params={"month": month.label})).json()
    buckets = [
        r
        for r in await influx_rows(
            accounted_demo,
            f"""SELECT value FROM "long".energy_interval WHERE asset='incomer' AND role='electricity_import' """
            f"AND time >= {month.start_ns} AND time < {month.end_ns}",
        )
    ]
    top = max(buckets, key=lambda r: r["value"])
    assert demand["max_kw"] == pytest.approx(top["value"] * 4, rel=1e-12)  # 15-minute kWh -> kW
    assert demand["max_window_start"] == iso_utc(top["time"]) and demand["windows"] == len(buckets)
    contracted = demand["demand_charge"]["contracted_kw"]
    excess = max(0.0, demand["max_kw"] - contracted * 1.05)
    assert demand["charge_yuan"] == pytest.approx(36.0 * demand["max_kw"] + 36.0 * excess, rel=1e-12)
    assert demand["source"]["verified"] is False and "EXAMPLE" in tariffs["tariffs"][0]["name"]

    kpis = {
        r["subject"]: r
        for r in await influx_rows(
            accounted_demo,
            f"""SELECT * FROM "long".energy_kpi WHERE scope='product' AND period='month' AND time = {month.start_ns}""",
        )
    }
    items = {(i["surcharge"], i["product"]): i for i in surcharges["items"]}
    steel = items[("example_steel_tiered", "crude_steel_eaf")]
    assert (steel["position"], steel["yuan_per_kwh"]) == ("exceeds_lt_10pct", 0.05)
    assert steel["surcharge_yuan"] == pytest.approx(steel["kwh"] * 0.05, rel=1e-12)
    assert steel["saving_one_grade_yuan"] == pytest.approx(steel["kwh"] * 0.05, rel=1e-12)
    for product in ("SiMn", "FeSi75"):
        item = items[("example_ferroalloy_differential", product)]
        assert item["position"] == kpis[product]["benchmark_status"], product
        assert item["position_source"].startswith("energy books") and item["position_origin"] == "energy_books"
    # HC_FeCr: the month's limit grade as the compliance API gives it, or the rule's fallback
    fecr = items[("example_ferroalloy_limit_grade", "HC_FeCr")]
    graded = next(p for p in limits["products"] if p["product"] == "HC_FeCr")["month"]
    rates = {"grade_1": 0.0, "grade_2": 0.01, "grade_3": 0.03, "not_compliant": 0.30}
    if graded["status"] in rates:
        assert (fecr["position"], fecr["position_origin"]) == (graded["status"], "compliance")
        assert fecr["position_source"].startswith(f"compliance {month.label}: HC_FeCr {graded['status']}")
    else:
        assert (fecr["position"], fecr["position_origin"]) == ("grade_3", "plant_file")
        assert f"compliance: {graded['status']} for HC_FeCr" in fecr["position_source"]
    assert fecr["kwh"] > 0 and fecr["surcharge_yuan"] == pytest.approx(fecr["kwh"] * rates[fecr["position"]], rel=1e-12)
    if fecr["better_position"] is not None:
        step = rates[fecr["position"]] - rates[fecr["better_position"]]
        assert list(rates).index(fecr["better_position"]) < list(rates).index(fecr["position"])
        assert fecr["saving_one_grade_yuan"] == pytest.approx(fecr["kwh"] * step, rel=1e-12)

    section = report["cost"]
    assert section["month"] == month.label and section["verified"] is False
    plant = section["plant"]
    assert plant["total_yuan"] == pytest.approx(
        plant["energy_cost_yuan"]
        + demand["charge_yuan"]
        + sum(i["surcharge_yuan"] or 0.0 for i in surcharges["items"]),
        rel=1e-12,
    )
    assert {p["product"] for p in section["products"]} == {"crude_steel_eaf", "SiMn", "FeSi75", "HC_FeCr", "EMM"}


async def test_a_plant_without_tariffs_answers_404_no_cost(accounted_demo: Demo) -> None:
    from ferrogate.api.app import create_app

    context = accounted_demo.gateway.api_context  # type: ignore[union-attr]
    assert context is not None
    bare = create_app(type(context)(**{**context.__dict__, "cost": None}))
    transport = httpx.ASGITransport(app=bare)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.get("/api/v1/cost/tariffs", headers={"X-API-Key": accounted_demo.api_key})
    assert response.status_code == 404 and response.json()["detail"]["error"] == "no_cost"

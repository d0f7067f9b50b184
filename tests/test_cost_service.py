"""The cost books on the energy role's live path against a real InfluxDB: heats are priced as the
books take them over and written next to them; a late reading that moves energy across a tariff
boundary inside a heat (its total unchanged) re-prices the heat and its periods, overwriting the
rows; a restarted service reads the cost records back, so its period sums stay whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ferrogate.gateway.accounting_service import AccountingService
from ferrogate.gateway.config import InfluxConfig, MqttConfig
from ferrogate.gateway.config_loader import load_plant
from ferrogate.gateway.cost.model import resolve_cost
from ferrogate.gateway.cost_service import CostExtension
from ferrogate.gateway.services import InfluxDB
from tests.test_energy_golden import ns, scan_batches

CASE = Path(__file__).parent / "testcases" / "cost" / "heat_across_tou_boundary"
LATE = "2026-03-01T23:57:30Z"  # the energy reading just before the 08:00 boundary arrives late


def batches(late: bool) -> list:
    return scan_batches(
        CASE / "readings.csv", "golden", lambda row: row["point"] == "energy" and row["time"] == LATE, late, {}
    )


def service(influxdb: InfluxDB, database: str) -> tuple[AccountingService, CostExtension]:
    plant = load_plant(CASE / "plant.yaml")
    assert plant.cost is not None
    model, problems = resolve_cost(plant, plant.cost, plant.accounting)
    assert model is not None, problems
    books = AccountingService(model.accounting, MqttConfig(), InfluxConfig(url=influxdb.url, database=database))
    cost = CostExtension(model, "test/ferrogate/v1")
    books.extensions.append(cost)
    return books, cost


async def stored(books: AccountingService, query: str) -> list[dict]:
    return [{**s.tags, **row} for s in await books.influx.query(query) for row in s.rows()]


async def test_heats_are_priced_live_corrected_by_late_readings_and_reloaded(
    influxdb: InfluxDB, fresh_database: str
) -> None:
    books, cost = service(influxdb, fresh_database)
    try:
        await books.influx.ensure_database()
        for batch in batches(late=False):
            books.handle(batch)
        await books.cycle()
        # without the 23:57:30 reading the boundary falls in a 10-minute interval of 5,000 kWh:
        # 7.5 of its 10 minutes are before 08:00, so the valley gets 120,000 + 3,750 - 103,000
        heat = cost.costs["saf1/2"]
        assert heat.split.kwh["valley"] == pytest.approx(20_750.0) and heat.split.kwh["peak"] == pytest.approx(23_750.0)
        assert books.records["saf1/2"].electricity_kwh == pytest.approx(44_500.0)

        for batch in batches(late=True):
            books.handle(batch)
        await books.cycle()
        assert books.records["saf1/2"].electricity_kwh == pytest.approx(44_500.0)  # the books' record is unchanged
        heat = cost.costs["saf1/2"]
        assert heat.split.kwh["valley"] == pytest.approx(20_500.0) and heat.split.cost_yuan == pytest.approx(29_125.0)
        rows = await stored(books, """SELECT * FROM "long".cost_record WHERE id='saf1/2'""")
        assert len(rows) == 1  # overwritten, not duplicated
        assert (rows[0]["kwh_valley"], rows[0]["kwh_peak"], rows[0]["cost_yuan"]) == (20_500.0, 24_000.0, 29_125.0)
        assert rows[0]["yuan_per_t"] == pytest.approx(29_125.0 / 18) and rows[0]["tariffs"] == "test_tou"
        day = await stored(
            books, """SELECT * FROM "long".cost_period WHERE scope='unit' AND subject='saf1' AND period='day'"""
        )
        assert [(r["label"], r["cost_yuan"], r["records"]) for r in day] == [("2026-03-02", 59_125.0, 2)]
        messages = books._outbox.waiting()
        heat_messages = [
            json.loads(m.payload) for m in messages if m.topic == "test/ferrogate/v1/golden/cost/record/saf1"
        ]
        assert heat_messages and heat_messages[-1]["schema"] == "ferrogate-cost/1"
        assert {d["id"]: d for d in heat_messages}["saf1/2"]["kwh_valley"] == 20_500.0  # the re-priced heat, last
        retained = {m.topic for m in messages if m.retain}
        assert "test/ferrogate/v1/golden/cost/period/month/product/SiMn" in retained
        assert "test/ferrogate/v1/golden/cost/demand/saf1" in retained
        demand = await stored(books, """SELECT * FROM "long".cost_demand""")
        assert [(r["label"], r["max_kw"], r["max_window_start"]) for r in demand] == [
            ("2026-03", 36_000.0, "2026-03-02T00:00:00.000Z")
        ]
    finally:
        await books.aclose()

    # a restart: the cost records come back from InfluxDB, and a re-sum from them is whole
    again, reloaded = service(influxdb, fresh_database)
    try:
        await again.load_derived(ns("2026-03-01T00:00:00Z"), ns("2026-03-03T00:00:00Z"))
        assert reloaded.costs.keys() == cost.costs.keys()
        assert reloaded.costs["saf1/2"] == cost.costs["saf1/2"]
        day = again.model.calendar.day(again.model.calendar.production_date(ns("2026-03-02T00:40:00Z")))
        unit = next(
            p
            for p in reloaded.books.periods(day, False, reloaded.costs.values(), [])
            if (p.scope, p.subject) == ("unit", "saf1")
        )
        assert (unit.records, unit.split.cost_yuan) == (2, pytest.approx(59_125.0))
    finally:
        await again.aclose()

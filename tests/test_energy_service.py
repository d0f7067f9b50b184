"""The energy role's live path against a real InfluxDB: readings arrive as scan batches, the books
are written as derived series, and a late (replayed) reading corrects the record, the buckets and
the KPIs it touches, overwriting them in InfluxDB rather than adding rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferrogate.gateway.accounting_service import AccountingService
from ferrogate.gateway.config import InfluxConfig, MqttConfig
from ferrogate.gateway.config_loader import load_plant
from ferrogate.gateway.energy.model import resolve
from ferrogate.gateway.reading import ScanBatch
from ferrogate.gateway.services import InfluxDB
from tests.test_energy_golden import ns, scan_batches

CASE = Path(__file__).parent / "testcases" / "accounting" / "saf_rollover_reset"
LATE_FROM = ns("2026-03-02T03:30:00Z")  # the power meter's readings from here arrive late


def batches(late: bool) -> list[ScanBatch]:
    """The golden case's readings as one batch per device scan; `late` selects the held-back part."""
    return scan_batches(
        CASE / "readings.csv",
        "golden",
        lambda row: row["point"] == "power" and ns(row["time"]) >= LATE_FROM,
        late,
        {"power": "kW"},
    )


async def stored_record(service: AccountingService, rid: str) -> list[dict]:
    series = await service.influx.query(
        f"SELECT electricity_kwh, quality, flags FROM \"long\".production_record WHERE id='{rid}'"
    )
    return [row for s in series for row in s.rows()]


async def test_a_late_reading_corrects_the_books(influxdb: InfluxDB, fresh_database: str) -> None:
    plant = load_plant(CASE / "plant.yaml")
    model, problems = resolve(plant, plant.accounting)
    assert model is not None, problems
    service = AccountingService(model, MqttConfig(), InfluxConfig(url=influxdb.url, database=fresh_database))
    try:
        await service.influx.ensure_database()
        for batch in batches(late=False):
            service.handle(batch)
        await service.cycle()
        # the meter replaced mid-heat could not be bridged: the power readings are not there yet
        heat = service.records["saf1/3"]
        assert heat.electricity_kwh == pytest.approx(71_000.0) and "counter_reset" in heat.flags
        assert "bridged_by_power" not in heat.flags
        assert [r["electricity_kwh"] for r in await stored_record(service, "saf1/3")] == [pytest.approx(71_000.0)]
        day = service.latest[("unit", "saf1", "day")]
        assert day.fields["electricity_kwh"] == pytest.approx(60_000.0 + 71_000.0)

        for batch in batches(late=True):  # store-and-forward replays the power meter's readings
            service.handle(batch)
        await service.cycle()
        heat = service.records["saf1/3"]
        assert heat.electricity_kwh == pytest.approx(72_000.0) and {"counter_reset", "bridged_by_power"} <= heat.flags
        rows = await stored_record(service, "saf1/3")
        assert [r["electricity_kwh"] for r in rows] == [pytest.approx(72_000.0)]  # overwritten, not duplicated
        assert rows[0]["flags"] == "bridged_by_power,counter_reset"
        assert service.latest[("unit", "saf1", "day")].fields["electricity_kwh"] == pytest.approx(132_000.0)
        kpis = await service.influx.query(
            "SELECT electricity_kwh FROM \"long\".energy_kpi WHERE scope='unit' AND subject='saf1' AND period='day'"
        )
        assert [row["electricity_kwh"] for s in kpis for row in s.rows()] == [pytest.approx(132_000.0)]
        # the untouched heat was not rewritten differently
        assert service.records["saf1/2"].electricity_kwh == pytest.approx(60_000.0)
        assert service._outbox.waiting()  # records and KPIs queued for MQTT as well
    finally:
        await service.aclose()

"""The energy role's live path against a real InfluxDB: readings arrive as scan batches, the books
are written as derived series, and a late (replayed) reading corrects the record, the buckets and
the KPIs it touches, overwriting them in InfluxDB rather than adding rows."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from ferrogate.gateway.accounting_service import AccountingService
from ferrogate.gateway.config import InfluxConfig, MqttConfig
from ferrogate.gateway.config_loader import load_plant
from ferrogate.gateway.energy.model import resolve
from ferrogate.gateway.lineprotocol import batch_lines
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


async def test_a_new_session_reads_back_what_was_published_before_it(influxdb: InfluxDB, fresh_database: str) -> None:
    """The broker kept no session for the books (their first, or a broker restarted without its
    persistence file): the scans published before they subscribed again reach them only through
    InfluxDB. They are read back once InfluxDB holds the new session's first batch of each device
    (ingest stores them in order), not before, and the books then equal books that saw every scan."""
    plant = load_plant(CASE / "plant.yaml")
    model, problems = resolve(plant, plant.accounting)
    assert model is not None, problems
    in_order = sorted(recent(batches(late=False) + batches(late=True)), key=lambda b: (b.gateway_time_ns, b.device))
    devices = {b.device for b in in_order}
    # the books are away for the middle third; the new session's first batch of each device follows it
    away_from, back_at = len(in_order) // 3, 2 * len(in_order) // 3
    missed, after = in_order[away_from:back_at], in_order[back_at:]
    influx = InfluxConfig(url=influxdb.url, database=fresh_database)
    service = AccountingService(model, MqttConfig(), influx)
    reference = AccountingService(model, MqttConfig(), InfluxConfig(url=influxdb.url, database=f"{fresh_database}_all"))
    try:
        for s in (service, reference):
            await s.influx.ensure_database()
        for batch in in_order:  # books that saw every scan
            reference.handle(batch)
        await reference.cycle()
        await service.influx.write([line for b in in_order[:back_at] for line in batch_lines(b)])  # ingest
        for batch in in_order[:away_from]:
            service.handle(batch)
        await service.cycle()
        service.on_session(False)
        for batch in after:
            service.handle(batch)
        await service.cycle()
        # InfluxDB does not hold the new session's first batches yet: what it holds of the span may
        # not be all of it, so nothing is read back
        assert service.read_back == 0 and set(service.gaps.ready) == devices
        assert _kwh(service) != _kwh(reference)
        await service.influx.write([line for b in after for line in batch_lines(b)])
        await service.cycle()
        assert not service.gaps.ready and service.gaps.filled == len(devices)
        # the span's readings, and the ones after it that also came live (overwritten with themselves)
        assert service.read_back >= sum(len(b.readings) for b in missed)
        assert _kwh(service) == _kwh(reference) and service.records
    finally:
        await service.aclose()
        await reference.aclose()


def recent(scans: list[ScanBatch]) -> list[ScanBatch]:
    """The scans as ingest stores them: moved by whole weeks (days, shifts and weekdays alike) to end
    within the last week (raw readings older than the raw retention, 90 days, are refused)."""
    week = 7 * 24 * 3_600_000_000_000
    newest = max(r.source_time_ns for b in scans for r in b.readings)
    shift = (time.time_ns() - newest) // week * week
    return [
        ScanBatch(
            b.site,
            b.device,
            b.seq,
            b.gateway_time_ns + shift,
            # a unit on each (the case leaves the counters' empty; line protocol has no empty tag)
            [dataclasses.replace(r, source_time_ns=r.source_time_ns + shift, unit=r.unit or "1") for r in b.readings],
            b.assets,
        )
        for b in scans
    ]


def _kwh(service: AccountingService) -> dict[str, tuple[float, list[str]]]:
    return {rid: (round(r.electricity_kwh, 6), sorted(r.flags)) for rid, r in service.records.items()}

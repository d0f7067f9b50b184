"""A recompute over several days against a real InfluxDB: the energy role reads each reading once
and keeps a day and its lookback in memory; its books must equal deriving every day from a fresh
read of that day's readings, an hour per unchunked query (the read-back before it kept them and
streamed a day per query), record by record and bucket by bucket, flags and quality included. The
readings carry what the rules act on: uncertain readings, bad ones across a midnight, a silent
meter, a counter reset."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from bench.accounting_e2e import cell_lines_plant
from ferrogate.gateway.accounting_service import AccountingService
from ferrogate.gateway.config import InfluxConfig, MqttConfig
from ferrogate.gateway.config_loader import parse_plant
from ferrogate.gateway.energy.books import IntervalRow
from ferrogate.gateway.energy.model import resolve
from ferrogate.gateway.energy.production import ProductionRecord
from ferrogate.gateway.energy.series import Series
from ferrogate.gateway.reading import Quality
from ferrogate.gateway.services import InfluxDB

pytestmark = pytest.mark.timeout(600)

S = 1_000_000_000
H = 3600 * S
DAY_S = 86_400
STEP_S = 60  # a reading a minute: days of readings stay small
LINES = ("cells1", "cells2")


def plant_doc(influx_url: str, database: str) -> dict[str, object]:
    return cell_lines_plant("rc", list(LINES), influx_url, database)


def readings(start_s: int, end_s: int) -> list[str]:
    """Line protocol, second precision: counters rising steadily, with the irregularities."""
    midnight = start_s + (-start_s) % DAY_S + DAY_S  # the second midnight after the start
    lines = []
    for t in range(start_s, end_s, STEP_S):
        h = (t - start_s) / 3600
        rates = {"incomer": 6_500.0, "aux": 400.0, "e_cells1": 3_000.0, "e_cells2": 3_000.0}
        for point, kw in rates.items():
            value: float | None = round(kw * h, 3)
            quality = "good"
            if point == "incomer" and midnight - 30 * 3600 <= t < midnight - 29 * 3600:
                quality = "uncertain"
            if point == "e_cells1" and midnight - 1200 <= t < midnight + 1200:
                value, quality = None, "bad"  # an outage across midnight: the value comes back after it
            if point == "e_cells2" and midnight + 7200 <= t < midnight + 8400:
                continue  # silent for 20 minutes
            if point == "aux" and t >= midnight + 5 * 3600:
                value = round(kw * (t - midnight - 5 * 3600) / 3600, 3)  # replaced: a new meter from zero
            field = f"value={value!r}," if value is not None else ""
            lines.append(f'reading,site=rc,device=meters,point={point},unit=kWh {field}quality="{quality}" {t}')
        if (t - start_s) % 300 == 0:
            for line in LINES:
                tonnes = round(0.4 * h, 4)
                lines.append(f'reading,site=rc,device=meters,point=p_{line},unit=t value={tonnes!r},quality="good" {t}')
    return lines


async def read_by_hours(service: AccountingService, start_ns: int, end_ns: int) -> dict[tuple[str, str], Series]:
    """The raw readings as the energy role read them back before: an hour per (unchunked) query,
    one `Series.add` per reading."""
    store = {key: Series() for key in service.store}
    match = " OR ".join(f"(device='{d}' AND point='{p}')" for d, p in store)
    for t in range(start_ns, end_ns, H):
        q = (
            f"SELECT value, quality FROM reading WHERE site='rc' AND ({match}) "
            f"AND time >= {t} AND time < {min(end_ns, t + H)} GROUP BY device, point"
        )
        for s in await service.influx.query(q):
            for t_ns, value, quality in s.values:
                series = store[(s.tags["device"], s.tags["point"])]
                series.add(int(t_ns), None if value is None else float(value), Quality(quality or "bad"))
    return store


async def test_a_recompute_of_days_equals_each_day_derived_from_a_fresh_read(
    influxdb: InfluxDB, fresh_database: str, tmp_path: Path
) -> None:
    plant = parse_plant(yaml.safe_dump(plant_doc(influxdb.url, fresh_database)), tmp_path / "plant.yaml")
    model, problems = resolve(plant, plant.accounting)
    assert model is not None, problems
    service = AccountingService(model, MqttConfig(), InfluxConfig(url=influxdb.url, database=fresh_database))
    lookback = int(model.config.tap_lookback_h * H)
    beyond = int(model.config.max_wait_s * S)
    end_s = int(time.time()) // DAY_S * DAY_S - DAY_S  # no "now" inside the span
    start_s = end_s - 2 * DAY_S - 6 * 3600  # two whole days and a part of one
    try:
        await service.influx.ensure_database()
        lines = readings(start_s - 13 * 3600, end_s + 600)  # the lookback before the span, and past its end
        for k in range(0, len(lines), 20_000):
            await service.influx.write(lines[k : k + 20_000], precision="s")
        start, end = start_s * S, end_s * S

        await service.recompute(start, end)

        expected_records: dict[str, ProductionRecord] = {}
        expected_rows: dict[tuple[str, str, int], IntervalRow] = {}
        t = start
        while t < end:
            t1 = min(end, t + 24 * H)
            derived = service.books.derive(await read_by_hours(service, t - lookback, t1 + beyond), t, t1)
            expected_records.update((r.id, r) for r in derived.records)
            expected_rows.update((row.key, row) for row in derived.intervals)
            t = t1
    finally:
        await service.influx.aclose()
    assert len(expected_records) > 3 * 96 and len(expected_rows) > 3 * 96  # every day made its rows
    flagged = {f for row in expected_rows.values() for f in row.flags}
    assert {"counter_reset", "interpolated_gap", "uncertain_reading"} <= flagged  # the irregularities were seen
    assert service.records == expected_records
    assert service.intervals == expected_rows


def furnace_doc(influx_url: str, database: str) -> dict[str, object]:
    """An incomer read every 10 s and a furnace whose DCS reports by exception: its energy counter
    now and then, its tap counter, weight and time only when it taps (as OPC UA subscriptions do)."""
    dcs = [("energy", 0, "uint32", "kWh"), ("taps", 2, "uint16", "1"), ("weight", 3, "float32", "t")]
    dcs.append(("tap_time", 5, "uint32", "s"))
    return {
        "site": {"id": "fh", "name": "furnace horizon", "timezone": "UTC"},
        "mqtt": {"port": 1883, "topic_root": "fh/ferrogate/v1"},
        "influxdb": {"url": influx_url, "database": database},
        "devices": [
            {
                "id": "meters",
                "protocol": "modbus",
                "host": "127.0.0.1",
                "points": [{"id": "incomer", "address": 0, "type": "uint32", "unit": "kWh"}],
            },
            {
                "id": "dcs",
                "protocol": "modbus",
                "host": "127.0.0.1",
                "points": [{"id": p, "address": a, "type": t, "unit": u} for p, a, t, u in dcs],
            },
        ],
        "assets": [
            {
                "id": "incomer",
                "type": "main_incomer",
                "name": "incomer",
                "meters": {"electricity_import": "meters.incomer"},
            },
            {
                "id": "saf1",
                "type": "submerged_arc_furnace",
                "name": "saf1",
                "product": "SiMn",
                "meters": {
                    "electricity_import": "dcs.energy",
                    "tap_counter": "dcs.taps",
                    "tap_weight": "dcs.weight",
                    "tap_time": "dcs.tap_time",
                },
            },
        ],
        "accounting": {
            "interval_s": 900,
            "incomer": "incomer",
            "products": [{"id": "SiMn"}],
            "units": [{"asset": "saf1"}],
        },
    }


async def test_the_books_derived_afresh_to_the_live_horizon_hold_its_last_heat(
    influxdb: InfluxDB, fresh_database: str, tmp_path: Path
) -> None:
    """The books' horizon is where every reporting meter has readings. The live books end at the
    furnace's last tap (its tap counter, reported by exception, is their slowest meter), after its
    energy counter has read on past it; that heat ends between two of the counter's readings. Derived
    afresh from InfluxDB up to that horizon, the heat is there only if the readings are read on past
    it: cut at the horizon, the energy counter's last reading lies before the heat's end, within
    `max_wait_s` of the newest reading, and the horizon falls back before the heat (seen in
    tests/test_cost_end_to_end.py as `KeyError: 'saf1/6'`, its reference read cut there)."""
    plant = parse_plant(yaml.safe_dump(furnace_doc(influxdb.url, fresh_database)), tmp_path / "plant.yaml")
    model, problems = resolve(plant, plant.accounting)
    assert model is not None, problems
    service = AccountingService(model, MqttConfig(), InfluxConfig(url=influxdb.url, database=fresh_database))
    base = int(time.time()) // DAY_S * DAY_S - DAY_S  # a past hour: no "now" inside it
    tap = base + 160 * 12 + 84  # the last tap's scan: 84 s after an energy reading, 76 s before the next
    end = tap + 100  # the last incomer reading: the furnace's tap counter is within max_wait_s of it
    lines = [
        f'reading,site=fh,device=meters,point=incomer value={6.0 * (t - base)},quality="good" {t}'
        for t in range(base, end + 1, 10)
    ]
    lines += [
        f'reading,site=fh,device=dcs,point=energy value={5.0 * (t - base)},quality="good" {t}'
        for t in range(base, end, 160)
    ]
    for number, scan in enumerate((base, base + 1000, base + 1200 + 600, tap)):
        for point, value in (("taps", number), ("weight", 20.0 + number), ("tap_time", scan - 12)):
            lines.append(f'reading,site=fh,device=dcs,point={point} value={float(value)},quality="good" {scan}')
    try:
        await service.influx.ensure_database()
        await service.influx.write(lines, precision="s")
        start, since = base * S, base * S - 1
        live = service.books.derive(await service.read_raw(since, (end + 1) * S), start, (end + 1) * S, since)
        assert live.horizon_ns == tap * S  # the tap counter's reading: the slowest meter reporting
        last_heat = next(r for r in live.records if r.end_ns == (tap - 12) * S)
        again = await service.derive_stored(start, live.horizon_ns + 1, since)
    finally:
        await service.influx.aclose()
    assert {r.id: r for r in again.records} == {r.id: r for r in live.records}
    assert again.horizon_ns == live.horizon_ns
    assert last_heat.id == "saf1/3" and last_heat.electricity_kwh == pytest.approx(
        5.0 * (1992 - 1788)
    )  # kWh, tap to tap

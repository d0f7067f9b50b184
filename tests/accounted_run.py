"""A short accelerated run of the demo plant with the accounting engine, leaving InfluxDB filled
with raw readings and derived series (heats, taps, intervals, KPIs): what the dashboards and the
energy API are tested against."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import yaml

from ferrogate.gateway.demo import Demo, DemoOptions
from ferrogate.gateway.influx import InfluxV1Client
from ferrogate.gateway.influx_setup import DERIVED_POLICY
from ferrogate.gateway.services import InfluxDB, Mosquitto
from tests.conftest import DEMO_PLANT, plant_on_free_ports
from tests.waiting import eventually

SPEED = 240
HISTORY_S = 4 * 3600


def midday_zone(now_s: float | None = None) -> str:
    """A fixed-offset zone in which it is between 10:00 and 14:00 now: a run of a few hours of plant
    history then lies inside one plant day and one month, whatever the wall clock says, so "today"
    and "this month" always hold the run's heats and taps."""
    hour = time.gmtime(time.time() if now_s is None else now_s).tm_hour
    offset = 12 - hour  # hours east of UTC; -11..+12
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"  # POSIX sign: Etc/GMT-8 is UTC+8


def fast_plant(directory: Path, interpolation_gap_s: float = 1200) -> Path:
    """Scans every 0.5 s (2 min of plant time) and SAF taps every 25-30 min so a short run has several;
    the plant's time zone puts now at midday (`midday_zone`). The CEMS loggers send real-time data
    every 2 simulated minutes and no minute data: at 240x their default (30 s, every minute) would
    be some 25 uploads a wall second, work this run does not need on a busy box. The books' gap
    for an interpolated heat edge is 20 min of plant time (5 wall seconds at 240x; the default 300 s
    would be 1.25 s, a busy box's hiccup); the fault tests set the default back."""
    doc = yaml.safe_load(DEMO_PLANT.read_text())
    doc["site"]["timezone"] = midday_zone()
    doc["accounting"]["interpolation_gap_s"] = interpolation_gap_s
    for device in doc["devices"]:
        device["scan_interval_s"] = 0.5
    for eq in doc["simulation"]["equipment"]:
        if eq["kind"] == "submerged_arc_furnace":
            eq["tap_interval_h"] = [0.42, 0.5]
    for logger in doc["simulation"]["loggers"]:
        logger.update(realtime_interval_s=120, minute_data=False)
    path = directory / "plant.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path


async def count(influx: InfluxV1Client, measurement: str) -> int:
    series = await influx.query(f'SELECT count("quality") FROM "{DERIVED_POLICY}"."{measurement}"')
    return int(series[0].values[0][1]) if series else 0


async def start_accounted_run(mosquitto: Mosquitto, influxdb: InfluxDB, directory: Path, database: str) -> Demo:
    plant = plant_on_free_ports(fast_plant(directory), mosquitto, influxdb, database)
    demo = Demo(
        plant, DemoOptions(directory / "demo", api_port=0, speed=SPEED, history_s=HISTORY_S, move_taken_ports=True)
    )
    try:
        await _run_until_accounted(demo)
    except BaseException:
        await demo.stop()  # a run that never got there must not go on in the session's loop
        raise
    return demo


async def _run_until_accounted(demo: Demo) -> None:
    await demo.start()
    gateway, sim = demo.gateway, demo.simulation
    assert gateway is not None and sim is not None and gateway.energy is not None and gateway.ingest is not None
    influx = gateway.ingest.influx_client
    await asyncio.wait_for(gateway.ingest.database_ready.wait(), timeout=30)

    async def month_tonnes(product: str) -> float:
        series = await influx.query(
            f'SELECT last("tonnes_t") FROM "{DERIVED_POLICY}"."energy_kpi" WHERE "scope" = \'product\' '
            f"AND \"subject\" = '{product}' AND \"period\" = 'month'"
        )
        return float(series[0].values[0][1] or 0) if series else 0.0

    async def every_product_has_tonnes() -> bool:
        # a product's month needs a tap after the first one seen (that one has no known start)
        return all([await month_tonnes(p) > 0 for p in ("crude_steel_eaf", "SiMn", "FeSi75", "HC_FeCr")])

    await eventually(every_product_has_tonnes, "month tonnes of every furnace product in InfluxDB", within_s=400)

    async def two_hours_from_each_logger() -> bool:
        hourly = [r["device"] for r in sim.truth if r["kind"] == "hj212_upload" and r["cn"] == "2061"]
        return all(hourly.count(device) >= 2 for device in sim.loggers)

    await eventually(two_hours_from_each_logger, "two hourly uploads of each CEMS logger acknowledged", within_s=400)
    await freeze(demo)


async def freeze(demo: Demo) -> None:
    """Stop the CEMS loggers (after their uploads on the way are answered, so the ledger holds what
    the gateway acknowledged) and scanning, and let every published batch reach InfluxDB and the
    books, so the engine's state, InfluxDB and the API hold still while tests compare them."""
    gateway = demo.gateway
    assert gateway is not None and gateway.publisher is not None and gateway.energy is not None
    assert demo.simulation is not None
    for logger in demo.simulation.loggers.values():
        await asyncio.wait_for(logger.pause(), timeout=60)
    published = await gateway.stop_collecting()

    async def consumed() -> bool:
        assert gateway.ingest is not None and gateway.energy is not None
        return gateway.ingest.messages >= published and gateway.energy.batches >= published

    await eventually(consumed, "ingest and the energy engine to receive every batch")
    assert gateway.ingest is not None
    await gateway.ingest.writer.flush()
    for _ in range(2):  # a whole cycle that started after the last batch arrived
        await gateway.energy.wait_cycle()
    if gateway.compliance_watch is not None:  # grades, carbon and footprints of the final books in InfluxDB
        await gateway.compliance_watch.check()

"""The energy role at start: it subscribes before it loads its state from InfluxDB, so scans that
the collector publishes meanwhile (on a first start there is no persistent session to queue them)
are kept and taken into the books once the state is loaded, even when InfluxDB is not up yet."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ferrogate.gateway.accounting_service import AccountingService
from ferrogate.gateway.config import InfluxConfig, MqttConfig
from ferrogate.gateway.config_loader import load_plant
from ferrogate.gateway.energy.model import resolve
from ferrogate.gateway.mqtt import MqttPublisher
from ferrogate.gateway.services import Mosquitto, free_port, start_influxdb
from tests.test_energy_service import CASE, batches
from tests.waiting import eventually


async def test_scans_published_while_the_database_is_down_reach_the_books(
    mosquitto: Mosquitto, fresh_database: str, tmp_path: Path
) -> None:
    plant = load_plant(CASE / "plant.yaml")
    model, problems = resolve(plant, plant.accounting)
    assert model is not None, problems
    mqtt = MqttConfig(port=mosquitto.port, topic_root=f"{fresh_database}/ferrogate/v1", wait_for_ingest=False)
    influx_port = free_port()  # nothing listens here until the test starts InfluxDB
    influx = InfluxConfig(url=f"http://127.0.0.1:{influx_port}", database=fresh_database)
    service = AccountingService(model, mqtt, influx, gateway_id=fresh_database, cycle_s=0.2)
    publisher = MqttPublisher(mqtt, "golden", f"{fresh_database}-pub")
    scans = batches(late=False) + batches(late=True)
    running = [asyncio.create_task(service.run()), asyncio.create_task(publisher.run())]
    database = None
    try:
        await asyncio.wait_for(service.subscribed.wait(), timeout=10)
        for batch in scans:
            publisher.submit(batch)

        async def held() -> bool:
            # and where the first session began (None: the books read back what came before it)
            return service._early is not None and [b for b in service._early if b is not None] == scans

        await eventually(held, "every scan held while InfluxDB is down", within_s=30)
        assert service.batches == 0 and service.database_ready.is_set() is False

        database = await asyncio.to_thread(start_influxdb, tmp_path / "influx", influx_port)

        async def taken_in() -> bool:
            return service._early is None and service.batches == len(scans) and "saf1/3" in service.records

        await eventually(taken_in, "the held scans in the books once InfluxDB is up", within_s=90)
        assert service.early_dropped == 0
        # the same books as feeding every reading directly (tests/test_energy_service.py)
        heat = service.records["saf1/3"]
        assert heat.electricity_kwh == pytest.approx(72_000.0) and {"counter_reset", "bridged_by_power"} <= heat.flags
        assert service.records["saf1/2"].electricity_kwh == pytest.approx(60_000.0)
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await service.aclose()
        publisher.spool.close()
        if database is not None:
            database.process.stop()

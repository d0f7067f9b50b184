"""Store-and-forward under outages, with the real Mosquitto, InfluxDB and Modbus simulator servers:
(a) the broker stops for a while, (b) InfluxDB stops for a while, (c) the gateway process is killed
with SIGKILL and started again, (d) two ingest workers share the stream. In each case every reading
the meters served is in InfluxDB exactly once with the value served, and the test reports how much
was spooled and replayed.

Each test pauses the meters before its final check (every further read answers a device failure),
so the set of served readings is fixed; the gateway keeps running and stores those failures as bad
readings at gateway time, which the exact comparison of good readings leaves aside.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ferrogate.gateway.config import InfluxConfig
from ferrogate.gateway.influx import InfluxV1Client
from ferrogate.gateway.ingest import IngestWorker
from ferrogate.gateway.payload import decode_batch
from ferrogate.gateway.reading import Quality
from ferrogate.gateway.runtime import Gateway
from ferrogate.gateway.services import InfluxDB, Mosquitto, start_influxdb, start_mosquitto
from tests.conftest import ROOT
from tests.meters import differences, plant_config, plant_doc, served, start_meters, stop_meters, stored
from tests.waiting import eventually

# retry fast so outages are noticed (and the database's return found) within a second
FAST_RETRY = {"flush_interval_s": 0.2, "max_retries": 1, "retry_initial_s": 0.2, "retry_max_s": 1.0}


def report(case: str, **figures: int) -> None:
    print(f"[{case}] " + ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in figures.items()))


async def until_stored_equals_served(client: InfluxV1Client, site: str, meters: list, within_s: float = 60) -> None:
    expected = served(meters)

    async def complete() -> bool:
        good, _ = await stored(client, site)
        return len(good) >= len(expected)

    try:
        await eventually(complete, f"all {len(expected)} served readings in InfluxDB", within_s)
    finally:
        good, _ = await stored(client, site)
        assert differences(expected, good) == ""


async def test_broker_outage_loses_nothing(
    tmp_path: Path, influxdb: InfluxDB, fresh_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    broker = await asyncio.to_thread(start_mosquitto, tmp_path / "broker")
    meters = await start_meters(2)
    influx = {"url": influxdb.url, "database": fresh_database, **FAST_RETRY}
    doc = plant_doc(
        "sf_broker", meters, {"port": broker.port, "spool": {"path": str(tmp_path / "spool.sqlite")}}, influx
    )
    client = InfluxV1Client(InfluxConfig(url=influxdb.url, database=fresh_database))
    await client.ensure_database()
    gateway = Gateway(plant_config(doc, tmp_path / "plant.yaml"), roles=("collect", "ingest"), gateway_id="sf-a")
    await gateway.start()
    publisher, ingest = gateway.publisher, gateway.ingest
    assert publisher is not None and ingest is not None
    try:
        await eventually(lambda: _count_at_least(client, "sf_broker", 30), "readings flowing into InfluxDB")
        await asyncio.to_thread(broker.process.stop)

        async def spooling() -> bool:
            return publisher.backlog >= 20

        await eventually(spooling, "20 batches spooled while the broker is down")
        waited_through = publisher.spool.last_id  # the newest batch that waited through the outage
        await asyncio.to_thread(broker.process.start)

        async def replayed() -> bool:
            # every batch that waited has left the spool: replayed on the new connection, or pruned
            # unsent by ingest's durable mark (those it had stored before the broker went away)
            head = publisher.spool.head_id()
            return publisher.replayed > 0 and (head is None or head > waited_through)

        await eventually(replayed, "the spool replayed after the broker came back")
        for meter in meters:
            meter.pause()
        await until_stored_equals_served(client, "sf_broker", meters)
        assert publisher.dropped == 0
        report(
            "broker outage",
            readings_served=len(served(meters)),
            batches_published=publisher.published,
            batches_replayed_from_spool=publisher.replayed,
            messages_ingested_incl_redeliveries=ingest.messages,
        )
    finally:
        await gateway.stop()
        await client.aclose()
        await stop_meters(meters)
        await asyncio.to_thread(broker.process.stop)


async def _count_at_least(client: InfluxV1Client, site: str, n: int) -> bool:
    good, _ = await stored(client, site)
    return len(good) >= n


async def test_database_outage_loses_nothing(
    tmp_path: Path, mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    database = await asyncio.to_thread(start_influxdb, tmp_path / "influxdb")
    meters = await start_meters(2)
    influx = {"url": database.url, "database": "sf", **FAST_RETRY, "spool": {"path": str(tmp_path / "spool.sqlite")}}
    doc = plant_doc("sf_database", meters, {"port": mosquitto.port}, influx)
    client = InfluxV1Client(InfluxConfig(url=database.url, database="sf"))
    await client.ensure_database()
    gateway = Gateway(plant_config(doc, tmp_path / "plant.yaml"), roles=("collect", "ingest"), gateway_id="sf-b")
    await gateway.start()
    assert gateway.ingest is not None
    writer = gateway.ingest.writer
    try:
        await eventually(lambda: _count_at_least(client, "sf_database", 30), "readings flowing into InfluxDB")
        await asyncio.to_thread(database.process.stop)

        async def spooling() -> bool:
            return writer.database_down and writer.spool.rows >= 5

        await eventually(spooling, "5 batches spooled while InfluxDB is down")
        await asyncio.to_thread(database.process.start)

        async def replayed() -> bool:
            return not writer.database_down and writer.spool.rows == 0

        await eventually(replayed, "the spool replayed after InfluxDB came back")
        for meter in meters:
            meter.pause()
        await until_stored_equals_served(client, "sf_database", meters)
        assert writer.spool.dropped == 0 and writer.dead_letters.batches == 0
        assert writer.replayed_batches >= 5 and writer.replayed_lines == writer.spooled_lines
        report(
            "database outage",
            readings_served=len(served(meters)),
            batches_spooled=writer.spooled_batches,
            lines_spooled=writer.spooled_lines,
            batches_replayed=writer.replayed_batches,
            lines_replayed=writer.replayed_lines,
        )
    finally:
        await gateway.stop()
        await client.aclose()
        await stop_meters(meters)
        await asyncio.to_thread(database.process.stop)


def spool_content(path: Path, table: str) -> list[tuple[bytes, int]]:
    """(payload, items) of every entry a gateway process left in its spool file (read-only)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute(f"SELECT payload, items FROM {table} ORDER BY id").fetchall()
    except sqlite3.OperationalError:  # the process has not created the table yet
        return []
    finally:
        db.close()


def failed_read_spooled(path: Path, devices: set[str]) -> bool:
    """True once, for every device, the MQTT spool holds a scan whose readings are all bad: a paused
    meter's failure comes after all its served reads, and each device is scanned in sequence."""
    failed = set()
    for payload, _ in spool_content(path, "mqtt_outbox"):
        batch = decode_batch(payload)
        if batch.readings and all(r.quality is Quality.BAD for r in batch.readings):
            failed.add(batch.device)
    return failed >= devices


async def test_gateway_killed_and_restarted_loses_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broker = await asyncio.to_thread(start_mosquitto, tmp_path / "broker")
    database = await asyncio.to_thread(start_influxdb, tmp_path / "influxdb")
    meters = await start_meters(2)
    spool = tmp_path / "state" / "spool.sqlite"  # both outboxes, one table each
    mqtt = {"port": broker.port, "spool": {"path": str(spool)}}
    influx = {"url": database.url, "database": "sf", **FAST_RETRY, "spool": {"path": str(spool)}}
    plant_file = tmp_path / "plant.yaml"
    plant_config(plant_doc("sf_kill", meters, mqtt, influx), plant_file)
    client = InfluxV1Client(InfluxConfig(url=database.url, database="sf"))
    await client.ensure_database()
    log_file = tmp_path / "gateway.log"

    def start_gateway() -> subprocess.Popen:
        with open(log_file, "ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "ferrogate", "run", "--plant", str(plant_file), "--role", "collect,ingest"],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    proc = start_gateway()
    try:
        await eventually(lambda: _count_at_least(client, "sf_kill", 30), "readings flowing into InfluxDB")
        await asyncio.to_thread(database.process.stop)
        await eventually(lambda: _true(len(spool_content(spool, "influx_outbox")) >= 2), "InfluxDB batches spooled")
        await asyncio.to_thread(broker.process.stop)
        await eventually(lambda: _true(len(spool_content(spool, "mqtt_outbox")) >= 10), "MQTT batches spooled")
        for meter in meters:
            meter.pause()
        devices = {m.device_id for m in meters}
        await eventually(lambda: _true(failed_read_spooled(spool, devices)), "every served read spooled")

        mqtt_spooled = spool_content(spool, "mqtt_outbox")
        influx_spooled = spool_content(spool, "influx_outbox")
        proc.send_signal(signal.SIGKILL)
        assert await asyncio.to_thread(proc.wait) == -signal.SIGKILL
        assert len(mqtt_spooled) >= 5 and influx_spooled

        await asyncio.to_thread(broker.process.start)
        await asyncio.to_thread(database.process.start)
        proc = start_gateway()
        await until_stored_equals_served(client, "sf_kill", meters)

        async def spools_empty() -> bool:
            # the restarted gateway keeps spooling the paused meters' failures; what it had at the
            # kill is gone once an entry of the new run heads each outbox or it is empty
            return not any(p in mqtt_spooled for p in spool_content(spool, "mqtt_outbox")) and not any(
                p in influx_spooled for p in spool_content(spool, "influx_outbox")
            )

        await eventually(spools_empty, "the restarted gateway to send everything spooled before the kill")
        report(
            "SIGKILL and restart",
            readings_served=len(served(meters)),
            mqtt_batches_spooled_at_kill=len(mqtt_spooled),
            readings_in_them=sum(items for _, items in mqtt_spooled),
            influx_batches_spooled_at_kill=len(influx_spooled),
            lines_in_them=sum(items for _, items in influx_spooled),
        )
    except BaseException:
        print(log_file.read_text(errors="replace")[-4000:])
        raise
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(proc.wait, 30)
        await client.aclose()
        await stop_meters(meters)
        await asyncio.to_thread(broker.process.stop)
        await asyncio.to_thread(database.process.stop)


async def _true(value: bool) -> bool:
    return value


async def test_two_ingest_workers_share_the_stream(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, fresh_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    meters = await start_meters(2)
    influx = {"url": influxdb.url, "database": fresh_database, **FAST_RETRY}
    plant = plant_config(plant_doc("sf_shared", meters, {"port": mosquitto.port}, influx), tmp_path / "plant.yaml")
    assert plant.mqtt is not None and plant.influxdb is not None
    client = InfluxV1Client(InfluxConfig(url=influxdb.url, database=fresh_database))
    await client.ensure_database()
    workers = [IngestWorker(plant.mqtt, plant.influxdb, "sf_shared", f"w{i}") for i in (1, 2)]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    collector = Gateway(plant, roles=("collect",), gateway_id="sf-d")
    try:
        for worker in workers:
            await asyncio.wait_for(worker.subscribed.wait(), 30)
        await collector.start()
        publisher = collector.publisher
        assert publisher is not None

        async def enough() -> bool:
            return publisher.published >= 40

        await eventually(enough, "40 batches published")
        for meter in meters:
            meter.pause()
        await until_stored_equals_served(client, "sf_shared", meters)
        # stop scanning, so the count of published batches is final, and let the last ones arrive
        await collector.stop_collecting()

        async def all_received() -> bool:
            return sum(w.messages for w in workers) >= publisher.published

        await eventually(all_received, "both workers together to receive every published batch")
        shares = [w.messages for w in workers]
        # each batch went to exactly one worker: none twice, none missing, and both took a share
        assert sum(shares) == publisher.published and min(shares) > 0
        assert all(w.rejected == 0 for w in workers)
        report(
            "shared subscription",
            readings_served=len(served(meters)),
            batches=publisher.published,
            worker_1=shares[0],
            worker_2=shares[1],
        )
    finally:
        await collector.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for worker in workers:
            await worker.aclose()
        await client.aclose()
        await stop_meters(meters)

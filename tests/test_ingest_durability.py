"""When the ingest acknowledges a message, with the real Mosquitto and InfluxDB: only once its points
are durable. Unwritten messages come back to a worker that died; spooled ones are acknowledged and
come back from the spool instead; a batch InfluxDB rejects for good becomes a dead letter."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ferrogate.gateway.config import InfluxConfig, MqttConfig
from ferrogate.gateway.deadletter import read_dead_letters
from ferrogate.gateway.influx import InfluxV1Client
from ferrogate.gateway.ingest import IngestWorker
from ferrogate.gateway.model_base import SpoolConfig
from ferrogate.gateway.mqtt import MqttPublisher
from ferrogate.gateway.services import InfluxDB, Mosquitto, free_port, start_influxdb
from tests.test_ingest_messages import T0, batch
from tests.waiting import eventually

BATCHES = 5


async def publish(mqtt: MqttConfig, site: str, seqs: range) -> None:
    # these tests are about the broker-to-ingest hop: the batch is published once the broker has it
    # (the collector's wait for ingest's durable mark is tested in tests/test_store_and_forward_durable_ack.py)
    publisher = MqttPublisher(mqtt.model_copy(update={"ack_from_ingest": False}), site, f"{site}-pub")
    task = asyncio.create_task(publisher.run())
    try:
        for seq in seqs:
            publisher.submit(batch(site, "m1", seq))
        await publisher.drain()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        publisher.close()


async def start(mqtt: MqttConfig, influx: InfluxConfig, site: str) -> tuple[IngestWorker, asyncio.Task]:
    worker = IngestWorker(mqtt, influx, site, "durable")
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(worker.subscribed.wait(), 30)
    return worker, task


async def crash(worker: IngestWorker, task: asyncio.Task) -> None:
    """Stop a worker the hard way: no flush, nothing more acknowledged."""
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await worker.aclose()


async def count_rows(client: InfluxV1Client) -> int:
    series = await client.query("SELECT count(quality) FROM reading")
    return series[0].values[0][1] if series else 0


async def test_unwritten_messages_are_not_acknowledged(tmp_path: Path, mosquitto: Mosquitto) -> None:
    mqtt = MqttConfig(port=mosquitto.port)
    port = free_port()  # InfluxDB will answer here only later
    influx = InfluxConfig(url=f"http://127.0.0.1:{port}", database="durable", flush_interval_s=0.1, max_retries=100)
    worker, task = await start(mqtt, influx, "durable_a")
    database = None
    try:
        await publish(mqtt, "durable_a", range(BATCHES))

        async def holding() -> bool:
            return worker.messages == BATCHES

        await eventually(holding, "the worker to receive every batch")
        # nothing durable, so nothing acknowledged
        assert worker.writer.pending >= BATCHES and worker.writer.spooled_batches == 0
        await crash(worker, task)

        database = await asyncio.to_thread(start_influxdb, tmp_path / "influxdb", port)
        worker, task = await start(mqtt, influx.model_copy(update={"max_retries": 3}), "durable_a")
        client = InfluxV1Client(influx)
        try:

            async def rewritten() -> bool:
                return await count_rows(client) == 2 * BATCHES if worker.database_ready.is_set() else False

            await eventually(rewritten, "the redelivered batches in InfluxDB")
            assert worker.messages == BATCHES  # the broker delivered them again, to the new worker
        finally:
            await client.aclose()
    finally:
        await crash(worker, task)
        if database is not None:
            await asyncio.to_thread(database.process.stop)


async def test_spooled_messages_are_acknowledged_and_replayed_from_disk(tmp_path: Path, mosquitto: Mosquitto) -> None:
    mqtt = MqttConfig(port=mosquitto.port)
    port = free_port()
    influx = InfluxConfig(
        url=f"http://127.0.0.1:{port}",
        database="durable",
        flush_interval_s=0.1,
        max_retries=0,
        retry_initial_s=0.1,
        retry_max_s=0.5,
        spool=SpoolConfig(path=tmp_path / "spool.sqlite"),
    )
    worker, task = await start(mqtt, influx, "durable_b")
    database = None
    try:
        await publish(mqtt, "durable_b", range(BATCHES))

        async def spooled() -> bool:
            return worker.messages == BATCHES and worker.writer.pending == 0

        await eventually(spooled, "every batch spooled and acknowledged")
        assert worker.writer.spooled_lines == 2 * BATCHES
        await crash(worker, task)

        database = await asyncio.to_thread(start_influxdb, tmp_path / "influxdb", port)
        worker, task = await start(mqtt, influx, "durable_b")
        assert worker.writer.spool.recovered >= 1
        client = InfluxV1Client(influx)
        try:
            await client.ensure_database()

            async def replayed() -> bool:
                return worker.writer.spool.rows == 0

            await eventually(replayed, "the spool replayed")
            assert worker.writer.replayed_lines == 2 * BATCHES
            assert await count_rows(client) == 2 * BATCHES
            # acknowledged before the crash: the broker has nothing to deliver again (a marker
            # batch, delivered in order, is the first and only message)
            await publish(mqtt, "durable_b", range(BATCHES, BATCHES + 1))

            async def marker() -> bool:
                return worker.messages >= 1

            await eventually(marker, "the marker batch")
            assert worker.messages == 1
        finally:
            await client.aclose()
    finally:
        await crash(worker, task)
        if database is not None:
            await asyncio.to_thread(database.process.stop)


async def test_a_batch_rejected_for_good_becomes_a_dead_letter(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, fresh_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    mqtt = MqttConfig(port=mosquitto.port)
    dead = tmp_path / "dead-letters.jsonl"
    influx = InfluxConfig(url=influxdb.url, database=fresh_database, flush_interval_s=0.1, dead_letter_path=dead)
    client = InfluxV1Client(influx)
    await client.ensure_database()
    # `value` written as an integer first: the same shard then refuses our float values (HTTP 400)
    await client.write([f"reading,site=other,device=x,point=y,unit=kW value=1i {T0}"])
    worker, task = await start(mqtt, influx, "durable_c")
    try:
        await publish(mqtt, "durable_c", range(1, 2))
        # 40 days later: another shard (shards span a day or a week), where floats are welcome
        later = batch("durable_c", "m1", 40 * 86_400)
        publisher = MqttPublisher(mqtt, "durable_c", "durable_c-pub2")
        running = asyncio.create_task(publisher.run())
        publisher.submit(later)
        await publisher.drain()
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        publisher.close()

        async def handled() -> bool:
            return worker.messages == 2 and worker.writer.pending == 0

        await eventually(handled, "both batches handled")
        assert worker.writer.dead_letters.batches == 1 and worker.writer.dead_letters.lines == 2
        [letter] = read_dead_letters(dead)
        assert letter["status"] == 400 and "field type conflict" in letter["error"]
        t = T0 + 1_000_000_123
        tags = "reading,site=durable_c,device=m1,point"
        assert letter["lines"] == [
            f'{tags}=energy,asset=eaf1,unit=kWh value=101.0,quality="good" {t}',
            f'{tags}=power,asset=eaf1,unit=kW quality="bad",reason="comm_error: timeout" {t}',
        ]
        assert "InfluxDB rejected a batch of 2 lines" in caplog.text and str(dead) in caplog.text
        # the worker went on: the later batch is stored
        rows = (await client.query("SELECT value FROM reading WHERE site='durable_c' AND point='energy'"))[0].rows()
        assert rows == [{"time": later.readings[0].source_time_ns, "value": later.readings[0].value}]
    finally:
        await crash(worker, task)
        await client.aclose()


async def test_messages_published_while_the_worker_is_away_are_kept_for_it(
    mosquitto: Mosquitto, influxdb: InfluxDB, fresh_database: str
) -> None:
    mqtt = MqttConfig(port=mosquitto.port)
    influx = InfluxConfig(url=influxdb.url, database=fresh_database, flush_interval_s=0.1)
    worker, task = await start(mqtt, influx, "durable_d")  # creates the persistent session
    await crash(worker, task)
    await publish(mqtt, "durable_d", range(BATCHES))  # nobody connected: the broker queues them
    worker, task = await start(mqtt, influx, "durable_d")
    client = InfluxV1Client(influx)
    try:

        async def all_written() -> bool:
            return worker.messages == BATCHES and worker.writer.pending == 0

        await eventually(all_written, "the queued batches written")
        assert await count_rows(client) == 2 * BATCHES
    finally:
        await crash(worker, task)
        await client.aclose()

"""Ingest of what arrives on the telemetry and status topics, with the real Mosquitto and InfluxDB:
malformed payloads are rejected with a counted reason and acknowledged (never redelivered, never a
crash), device status changes become retained messages and `device_status` rows."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiomqtt
import pytest
import pytest_asyncio

from ferrogate.gateway.config import InfluxConfig, MqttConfig
from ferrogate.gateway.influx import InfluxV1Client
from ferrogate.gateway.ingest import IngestWorker
from ferrogate.gateway.mqtt import MqttPublisher
from ferrogate.gateway.payload import status_topic, telemetry_topic
from ferrogate.gateway.reading import Quality, Reading, ScanBatch
from ferrogate.gateway.services import InfluxDB, Mosquitto
from tests.waiting import eventually

# 00:00 UTC yesterday in ns: inside the database's retention (the default policy keeps 90 days), and
# the batches of a test, seconds apart, fall into the same daily shard
T0 = (time.time_ns() // 86_400_000_000_000 - 1) * 86_400_000_000_000


def batch(site: str, device: str, seq: int) -> ScanBatch:
    t = T0 + seq * 1_000_000_000 + 123  # nanosecond-exact source times must survive
    readings = [
        Reading("energy", 100.0 + seq, "kWh", t),
        Reading("power", None, "kW", t, Quality.BAD, "comm_error: timeout"),
    ]
    return ScanBatch(site, device, seq, t, readings, {"energy": "eaf1", "power": "eaf1"})


class Running:
    """An ingest worker running as a task; `restart()` replaces it with a new one of the same id."""

    def __init__(self, mqtt: MqttConfig, influx: InfluxConfig, site: str) -> None:
        self.args = (mqtt, influx, site, "msg-test")
        self.worker = IngestWorker(*self.args)
        self.task = asyncio.create_task(self.worker.run())

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.worker.aclose()

    async def restart(self) -> None:
        await self.stop()
        self.worker = IngestWorker(*self.args)
        self.task = asyncio.create_task(self.worker.run())


@pytest_asyncio.fixture
async def setup(
    mosquitto: Mosquitto, influxdb: InfluxDB, fresh_database: str
) -> AsyncIterator[tuple[Running, InfluxV1Client, MqttConfig]]:
    mqtt = MqttConfig(port=mosquitto.port)
    influx = InfluxConfig(url=influxdb.url, database=fresh_database, flush_interval_s=0.1)
    client = InfluxV1Client(influx)
    await client.ensure_database()
    running = Running(mqtt, influx, "ingest_msg")
    await asyncio.wait_for(running.worker.subscribed.wait(), 30)
    yield running, client, mqtt
    await running.stop()
    await client.aclose()


MALFORMED = [
    (b"not json at all", "not JSON"),
    (b'{"schema": "other/9", "site": "ingest_msg"}', "unknown schema 'other/9', expected 'ferrogate/1'"),
    (b'{"schema": "ferrogate/1", "site": "ingest_msg", "device": "m1", "seq": 1}', "missing field 'gateway_time_ns'"),
    (
        b'{"schema":"ferrogate/1","site":"ingest_msg","device":"m1","seq":1,"gateway_time_ns":1,'
        b'"readings":[{"point":"p","v":1.0,"u":"kW","q":"excellent","t":1}]}',
        "readings[0].q must be one of ['bad', 'good', 'uncertain']",
    ),
    (
        b'{"schema":"ferrogate/1","site":"ingest_msg","device":"m1","seq":1,"gateway_time_ns":1,'
        b'"readings":[{"point":"p","v":null,"u":"kW","q":"good","t":1}]}',
        "readings[0].v is null but quality is good",
    ),
    (
        b'{"schema":"ferrogate/1","site":"ingest_msg","device":"other","seq":1,"gateway_time_ns":1,"readings":[]}',
        "payload is for ingest_msg/other but came on the topic of ingest_msg/m1",
    ),
]


async def test_malformed_payloads_are_rejected_counted_and_acknowledged(
    setup: tuple[Running, InfluxV1Client, MqttConfig], caplog: pytest.LogCaptureFixture
) -> None:
    running, client, mqtt = setup
    topic = telemetry_topic(mqtt.topic_root, "ingest_msg", "m1")
    good = [batch("ingest_msg", "m1", seq) for seq in (1, 2)]
    publisher = MqttPublisher(mqtt, "ingest_msg", "msg-test")
    publishing = asyncio.create_task(publisher.run())
    try:
        publisher.submit(good[0])
        await publisher.drain()
        async with aiomqtt.Client("127.0.0.1", mqtt.port, protocol=aiomqtt.ProtocolVersion.V5) as raw:
            for payload, _ in MALFORMED:
                await raw.publish(topic, payload, qos=1)
        publisher.submit(good[1])
        await publisher.drain()
        worker = running.worker

        async def all_handled() -> bool:
            return worker.messages + worker.rejected >= len(MALFORMED) + 2

        await eventually(all_handled, "every message handled")
        assert (worker.messages, worker.rejected) == (2, len(MALFORMED))
        assert not running.task.done(), "the worker must keep running"
        assert sum(worker.rejected_reasons.values()) == len(MALFORMED)
        # counted by kind: what the sender chose (quoted values, numbers) is left out of the labels
        assert set(worker.rejected_reasons) == {
            "not JSON",
            "unknown schema '…', expected '…' or '…'",
            "missing field '…'",
            "readings[N].q must be one of ['…', '…', '…']",
            "readings[N].v is null but quality is good",
            "payload is for '…'/'…' but came on the topic of '…'/'…'",
        }
        assert f"ingest rejected a message on {topic}: not JSON" in caplog.text

        await running.worker.writer.flush()
        rows = (await client.query("SELECT value, quality, reason, asset, unit FROM reading"))[0].rows()
        stored = sorted((r["time"], r["unit"], r["value"], r["quality"], r["reason"], r["asset"]) for r in rows)
        assert stored == [
            (T0 + 1_000_000_123, "kW", None, "bad", "comm_error: timeout", "eaf1"),
            (T0 + 1_000_000_123, "kWh", 101.0, "good", None, "eaf1"),
            (T0 + 2_000_000_123, "kW", None, "bad", "comm_error: timeout", "eaf1"),
            (T0 + 2_000_000_123, "kWh", 102.0, "good", None, "eaf1"),
        ]

        # everything was acknowledged: a new worker on the same persistent session gets none of it
        # again; QoS 1 delivery is in order, so the marker arriving first proves it
        await running.restart()
        await asyncio.wait_for(running.worker.subscribed.wait(), 30)
        publisher.submit(batch("ingest_msg", "m1", 3))
        await publisher.drain()

        async def marker() -> bool:
            return running.worker.messages + running.worker.rejected >= 1

        await eventually(marker, "the marker batch")
        assert (running.worker.messages, running.worker.rejected) == (1, 0)
    finally:
        publishing.cancel()
        await asyncio.gather(publishing, return_exceptions=True)
        publisher.close()


async def test_device_status_is_retained_and_stored(setup: tuple[Running, InfluxV1Client, MqttConfig]) -> None:
    running, client, mqtt = setup
    publisher = MqttPublisher(mqtt, "ingest_msg", "status-test")
    publishing = asyncio.create_task(publisher.run())
    try:
        publisher.set_device_status("m1", True)
        publisher.set_device_status("m1", True)  # no change: not sent again
        publisher.set_device_status("m1", False)
        await publisher.drain()
        assert publisher.status_published == 2

        # the broker keeps the last state for anyone subscribing later
        async with aiomqtt.Client("127.0.0.1", mqtt.port, protocol=aiomqtt.ProtocolVersion.V5) as sub:
            await sub.subscribe(status_topic(mqtt.topic_root, "ingest_msg", "m1"), qos=1)
            retained = await asyncio.wait_for(anext(aiter(sub.messages)), 10)
        assert retained.retain and b'"status":"offline"' in retained.payload

        async def stored() -> bool:
            series = await client.query("SELECT online FROM device_status WHERE device='m1'")
            return bool(series) and len(series[0].values) == 2

        await eventually(stored, "both status changes in InfluxDB")
        rows = (await client.query("SELECT online, site FROM device_status"))[0].rows()
        assert [r["online"] for r in rows] == [True, False] and {r["site"] for r in rows} == {"ingest_msg"}
        assert running.worker.status_messages == 2
    finally:
        publishing.cancel()
        await asyncio.gather(publishing, return_exceptions=True)
        publisher.close()


async def test_a_batch_delivered_twice_is_stored_once(setup: tuple[Running, InfluxV1Client, MqttConfig]) -> None:
    running, client, mqtt = setup
    publisher = MqttPublisher(mqtt, "ingest_msg", "twice-test")
    publishing = asyncio.create_task(publisher.run())
    try:
        again = batch("ingest_msg", "m2", 7)
        publisher.submit(again)
        publisher.submit(again)  # e.g. replayed after a PUBACK was lost with the connection
        await publisher.drain()

        async def both_handled() -> bool:
            return running.worker.messages >= 2 and running.worker.writer.pending == 0

        await eventually(both_handled, "both deliveries handled")
        rows = (await client.query("SELECT value, quality FROM reading WHERE device='m2'"))[0].rows()
        t = again.readings[0].source_time_ns
        assert sorted(rows, key=lambda r: r["quality"]) == [
            {"time": t, "value": None, "quality": "bad"},
            {"time": t, "value": 107.0, "quality": "good"},
        ]
    finally:
        publishing.cancel()
        await asyncio.gather(publishing, return_exceptions=True)
        publisher.close()

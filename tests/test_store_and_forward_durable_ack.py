"""The durable acknowledgement (gateway/delivery.py): a collector forgets a batch only once ingest's
retained mark says it is durable, not on the broker's PUBACK. The marks' bookkeeping on its own, the
spool's epoch, and the whole loop with the real Mosquitto and InfluxDB."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ferrogate.gateway import delivery
from ferrogate.gateway import ingest as ingest_module
from ferrogate.gateway import mqtt as mqtt_module
from ferrogate.gateway.config import InfluxConfig, MqttConfig
from ferrogate.gateway.delivery import HOLE_REPORT_S, DeliveryTag, DurableMarks, read_tag, tag_properties
from ferrogate.gateway.influx import InfluxV1Client
from ferrogate.gateway.ingest import IngestWorker
from ferrogate.gateway.model_base import SpoolConfig
from ferrogate.gateway.mqtt import MqttPublisher
from ferrogate.gateway.payload import decode_ingest_ack, ingest_ack_topic
from ferrogate.gateway.services import InfluxDB, Mosquitto, start_influxdb, start_mosquitto
from ferrogate.gateway.spool import Spool
from tests.test_ingest_messages import batch
from tests.waiting import eventually


def tag(entry_id: int, prev: int, stream: str = "gw", epoch: str = "e1") -> DeliveryTag:
    return DeliveryTag(stream, epoch, entry_id, prev)


def test_the_tag_travels_in_a_user_property() -> None:
    assert read_tag(tag_properties("gw-1", "ab12", 42, 41)) == tag(42, 41, "gw-1", "ab12")
    assert read_tag(None) is None


def test_the_tag_is_packed_as_paho_packs_it() -> None:
    """tag_properties packs its bytes itself: they must be what paho's own packing makes, for a short
    tag and for one long enough that the properties' length takes two bytes."""
    for stream, epoch, entry_id, prev in (("gw-1", "ab12", 42, 41), ("g" * 150, "e" * 16, 10**15, 10**15 - 1)):
        reference = Properties(PacketTypes.PUBLISH)
        reference.UserProperty = [("ferrogate-spool", f"{stream} {epoch} {entry_id} {prev}")]
        assert tag_properties(stream, epoch, entry_id, prev).pack() == reference.pack()


def test_the_mark_moves_only_over_an_unbroken_chain() -> None:
    marks = DurableMarks()
    assert marks.durable(tag(1, 0)) and marks.mark("gw", "e1") == 1
    assert marks.durable(tag(2, 1)) and marks.mark("gw", "e1") == 2
    # 3 is missing (lost on the way): 4 and 5 wait, the mark stays at 2
    assert not marks.durable(tag(4, 3)) and not marks.durable(tag(5, 4))
    assert marks.mark("gw", "e1") == 2
    # 3 comes again (a replay): the waiting ones join, the mark jumps to 5
    assert marks.durable(tag(3, 2)) and marks.mark("gw", "e1") == 5
    # a repeat of what the mark already covers changes nothing
    assert not marks.durable(tag(4, 3)) and marks.mark("gw", "e1") == 5
    # the collector's spool dropped 6..9 (full): the next entry names 5 as the one before it
    assert marks.durable(tag(10, 5)) and marks.mark("gw", "e1") == 10
    # a new connection starts at the spool's head with prev 0: whatever came before is not waiting
    assert marks.durable(tag(20, 0)) and marks.mark("gw", "e1") == 20


def test_streams_and_epochs_have_their_own_marks() -> None:
    marks = DurableMarks()
    marks.durable(tag(7, 0, "a", "e1"))
    marks.durable(tag(3, 0, "b", "e1"))
    marks.durable(tag(1, 0, "a", "e2"))  # collector a reinstalled: a new spool file counts from 1
    assert (marks.mark("a", "e1"), marks.mark("b", "e1"), marks.mark("a", "e2")) == (7, 3, 1)
    assert sorted(marks.unpublished(0.0)) == [("a", "e1", 7, 0), ("a", "e2", 1, 0), ("b", "e1", 3, 0)]
    marks.published("a", "e1", 7)
    assert sorted(marks.unpublished(0.0)) == [("a", "e2", 1, 0), ("b", "e1", 3, 0)]


def test_a_mark_held_by_a_hole_is_reported_again() -> None:
    marks = DurableMarks()
    marks.durable(tag(1, 0))
    marks.published("gw", "e1", 1, now=100.0)
    marks.durable(tag(3, 2))  # 2 is missing
    assert marks.holes() and marks.unpublished(100.0 + HOLE_REPORT_S / 2) == []
    assert marks.unpublished(100.0 + HOLE_REPORT_S) == [("gw", "e1", 1, 1)]


def test_two_workers_carry_on_from_each_others_marks() -> None:
    """A shared subscription deals one stream out in turn: each worker holds every other entry, and
    neither could move the mark alone; reading each other's marks, both do."""
    one, two = DurableMarks(), DurableMarks()
    for entry_id in range(1, 11):
        (one if entry_id % 2 else two).durable(tag(entry_id, entry_id - 1))
    assert (one.mark("gw", "e1"), two.mark("gw", "e1")) == (1, 0)
    # relay the marks through the ack topic until nobody has anything new to say
    for _ in range(20):
        for sender, receiver in ((one, two), (two, one)):
            for stream, epoch, mark, _ in sender.unpublished(0.0):
                sender.published(stream, epoch, mark)
                receiver.merge(stream, epoch, mark)
    assert one.mark("gw", "e1") == two.mark("gw", "e1") == 10


def test_the_spool_epoch_belongs_to_the_file(tmp_path: Path) -> None:
    first = Spool(tmp_path / "s.sqlite", "outbox", max_bytes=1 << 20)
    epoch = first.epoch
    for _ in range(5):
        first.append("t", b"x", items=1)
    assert [e.id for e in first.peek(10, after=3)] == [4, 5]
    first.close()
    again = Spool(tmp_path / "s.sqlite", "outbox", max_bytes=1 << 20)
    assert again.epoch == epoch
    again.close()
    other = Spool(tmp_path / "new.sqlite", "outbox", max_bytes=1 << 20)
    assert other.epoch != epoch and len(other.epoch) == 16
    other.close()


async def retained_mark(mqtt: MqttConfig, topic: str) -> tuple[str, int, int]:
    async with aiomqtt.Client("127.0.0.1", mqtt.port, identifier="mark-reader") as reader:
        await reader.subscribe(topic, qos=1)
        async with asyncio.timeout(10):
            async for message in reader.messages:
                assert isinstance(message.payload, bytes)
                return decode_ingest_ack(message.payload)
    raise AssertionError("unreachable")


async def test_batches_stay_spooled_until_ingest_has_them_in_the_database(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """The broker has every batch (PUBACK) while InfluxDB is down: the collector still keeps them all.
    Once InfluxDB answers and ingest has written them, its mark empties the collector's spool."""
    site, batches = "durable_ack", 6
    mqtt = MqttConfig(port=mosquitto.port, spool=SpoolConfig(path=tmp_path / "collector.sqlite"))
    # InfluxDB answers here only later; until then the port stays bound (not listening: connections
    # are refused) so that no other process on a busy box takes it meanwhile
    placeholder = socket.socket()
    placeholder.bind(("127.0.0.1", 0))
    port = placeholder.getsockname()[1]
    influx = InfluxConfig(url=f"http://127.0.0.1:{port}", database="durable_ack", flush_interval_s=0.1, max_retries=100)
    worker = IngestWorker(mqtt, influx, site, "ack-test")
    publisher = MqttPublisher(mqtt, site, "collector-1")
    tasks = [asyncio.create_task(worker.run())]
    database = None
    client = InfluxV1Client(influx)
    try:
        await asyncio.wait_for(worker.subscribed.wait(), 30)
        tasks.append(asyncio.create_task(publisher.run()))
        for seq in range(batches):
            publisher.submit(batch(site, "m1", seq))

        async def received() -> bool:
            return worker.messages == batches and publisher.published == batches

        await eventually(received, "the broker to acknowledge and the worker to receive every batch")
        assert publisher.backlog == batches and publisher.acked == 0, "nothing is durable yet, nothing forgotten"

        placeholder.close()
        database = await asyncio.to_thread(start_influxdb, tmp_path / "influxdb", port)
        await asyncio.wait_for(publisher.drain(), 60)
        assert publisher.backlog == 0 and publisher.acked == publisher.spool.last_id == batches
        rows = await client.query("SELECT count(quality) FROM reading")
        assert rows[0].values[0][1] == 2 * batches  # two readings a batch
        # the mark stays on the broker (retained) for a collector or a worker that comes back
        epoch, mark, waiting = await retained_mark(mqtt, ingest_ack_topic(mqtt.topic_root, site, "collector-1"))
        assert (epoch, mark, waiting) == (publisher.spool.epoch, batches, 0)
        print(f"\n[durable ack] batches: {batches}, marks published by ingest: {worker.marks_published}")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        publisher.close()
        await worker.aclose()
        await client.aclose()
        placeholder.close()
        if database is not None:
            await asyncio.to_thread(database.process.stop)


async def test_a_batch_the_broker_dropped_is_sent_again(
    tmp_path: Path, influxdb: InfluxDB, fresh_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hole without a disconnect: the broker's queue for an absent ingest worker holds 3 messages
    and drops the rest (`max_queued_messages 3`) while the collector stays connected. Ingest, back,
    makes the 3 durable and then holds later batches beyond the hole; it says so, and the collector
    sends its spool again from the mark."""
    monkeypatch.setattr(delivery, "HOLE_REPORT_S", 0.2)
    monkeypatch.setattr(ingest_module, "HOLE_REPORT_S", 0.2)
    monkeypatch.setattr(mqtt_module, "RESEND_AFTER_HOLE_S", 0.5)
    site = "durable_hole"
    broker = await asyncio.to_thread(start_mosquitto, tmp_path / "broker", None, "max_queued_messages 3\n")
    mqtt = MqttConfig(port=broker.port)
    influx = InfluxConfig(url=influxdb.url, database=fresh_database, flush_interval_s=0.1)
    client = InfluxV1Client(influx)
    await client.ensure_database()
    publisher = MqttPublisher(mqtt, site, "collector-h")
    worker = IngestWorker(mqtt, influx, site, "hole")
    tasks = [asyncio.create_task(worker.run())]
    try:
        await asyncio.wait_for(worker.subscribed.wait(), 30)
        tasks.pop().cancel()  # the worker goes away; its persistent session stays, with a 3-message queue
        await worker.aclose()
        tasks.append(asyncio.create_task(publisher.run()))
        for seq in range(10):
            publisher.submit(batch(site, "m1", seq))

        async def acknowledged() -> bool:
            return publisher.published == 10

        await eventually(acknowledged, "the broker to acknowledge all 10 batches (it queues 3)")
        worker = IngestWorker(mqtt, influx, site, "hole")
        tasks.append(asyncio.create_task(worker.run()))
        await asyncio.wait_for(worker.subscribed.wait(), 30)
        for seq in range(10, 12):  # the plant goes on: these arrive beyond the hole
            publisher.submit(batch(site, "m1", seq))
        await asyncio.wait_for(publisher.drain(), 60)
        rows = await client.query(f"SELECT count(quality) FROM reading WHERE site='{site}'")
        assert rows[0].values[0][1] == 2 * 12
        assert publisher.hole_resends >= 1 and publisher.backlog == 0
        print(f"\n[hole] batches: 12, sends: {publisher.published}, resends from the mark: {publisher.hole_resends}")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        publisher.close()
        await worker.aclose()
        await client.aclose()
        await asyncio.to_thread(broker.process.stop)


async def test_two_workers_sharing_the_stream_empty_the_spool(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, fresh_database: str
) -> None:
    """The shared subscription deals the batches out between two workers: neither holds an unbroken
    chain, yet reading each other's marks they confirm every batch and the collector's spool empties."""
    site, batches = "durable_two", 40
    mqtt = MqttConfig(port=mosquitto.port)
    influx = InfluxConfig(url=influxdb.url, database=fresh_database, flush_interval_s=0.1)
    client = InfluxV1Client(influx)
    await client.ensure_database()
    workers = [IngestWorker(mqtt, influx, site, f"two-{i}") for i in (1, 2)]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    publisher = MqttPublisher(mqtt, site, "collector-2")
    try:
        for worker in workers:
            await asyncio.wait_for(worker.subscribed.wait(), 30)
        tasks.append(asyncio.create_task(publisher.run()))
        for seq in range(batches):
            publisher.submit(batch(site, "m1", seq))
        await asyncio.wait_for(publisher.drain(), 60)
        shares = [w.messages for w in workers]
        assert publisher.backlog == 0 and publisher.acked == batches
        assert min(shares) > 0 and sum(shares) >= batches
        rows = await client.query(f"SELECT count(quality) FROM reading WHERE site='{site}'")
        assert rows[0].values[0][1] == 2 * batches
        print(
            f"\n[two workers] batches: {batches}, shares: {shares}, marks published: "
            f"{[w.marks_published for w in workers]}"
        )
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        publisher.close()
        for worker in workers:
            await worker.aclose()
        await client.aclose()

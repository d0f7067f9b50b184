"""The durable acknowledgement (gateway/delivery.py): a collector forgets a batch only once ingest's
retained mark says it is durable, not on the broker's PUBACK. The marks' bookkeeping on its own, the
spool's epoch, and the whole loop with the real Mosquitto and InfluxDB."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiomqtt

from ferrogate.gateway.config import InfluxConfig, MqttConfig
from ferrogate.gateway.delivery import DeliveryTag, DurableMarks, read_tag, tag_properties
from ferrogate.gateway.influx import InfluxV1Client
from ferrogate.gateway.ingest import IngestWorker
from ferrogate.gateway.model_base import SpoolConfig
from ferrogate.gateway.mqtt import MqttPublisher
from ferrogate.gateway.payload import decode_ingest_ack, ingest_ack_topic
from ferrogate.gateway.services import Mosquitto, free_port, start_influxdb
from ferrogate.gateway.spool import Spool
from tests.test_ingest_messages import batch
from tests.waiting import eventually


def tag(entry_id: int, prev: int, stream: str = "gw", epoch: str = "e1") -> DeliveryTag:
    return DeliveryTag(stream, epoch, entry_id, prev)


def test_the_tag_travels_in_a_user_property() -> None:
    assert read_tag(tag_properties("gw-1", "ab12", 42, 41)) == tag(42, 41, "gw-1", "ab12")
    assert read_tag(None) is None


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
    assert sorted(marks.unpublished()) == [("a", "e1", 7), ("a", "e2", 1), ("b", "e1", 3)]
    marks.published("a", "e1", 7)
    assert sorted(marks.unpublished()) == [("a", "e2", 1), ("b", "e1", 3)]


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
            for stream, epoch, mark in sender.unpublished():
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


async def retained_mark(mqtt: MqttConfig, topic: str) -> tuple[str, int]:
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
    port = free_port()  # InfluxDB answers here only later
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

        database = await asyncio.to_thread(start_influxdb, tmp_path / "influxdb", port)
        await asyncio.wait_for(publisher.drain(), 60)
        assert publisher.backlog == 0 and publisher.acked == publisher.spool.last_id == batches
        rows = await client.query("SELECT count(quality) FROM reading")
        assert rows[0].values[0][1] == 2 * batches  # two readings a batch
        # the mark stays on the broker (retained) for a collector or a worker that comes back
        epoch, mark = await retained_mark(mqtt, ingest_ack_topic(mqtt.topic_root, site, "collector-1"))
        assert (epoch, mark) == (publisher.spool.epoch, batches)
        print(f"\n[durable ack] batches: {batches}, marks published by ingest: {worker.marks_published}")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        publisher.close()
        await worker.aclose()
        await client.aclose()
        if database is not None:
            await asyncio.to_thread(database.process.stop)

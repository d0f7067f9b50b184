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
from ferrogate.gateway.influx import InfluxError, InfluxV1Client
from ferrogate.gateway.ingest import InfluxWriter, IngestWorker
from ferrogate.gateway.lineprotocol import batch_lines
from ferrogate.gateway.model_base import SpoolConfig
from ferrogate.gateway.mqtt import MqttPublisher
from ferrogate.gateway.payload import decode_ingest_ack, ingest_ack_topic
from ferrogate.gateway.services import InfluxDB, Mosquitto, start_influxdb, start_mosquitto
from ferrogate.gateway.spool import MIB, Spool
from tests.test_ingest_batching import stop_writer
from tests.test_ingest_messages import T0, batch
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


async def stop(
    tasks: list[asyncio.Task], publisher: MqttPublisher, workers: list[IngestWorker], client: InfluxV1Client
) -> None:
    """Cancel the tasks and close the collector, the ingest workers and the query client."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    publisher.close()
    for worker in workers:
        await worker.aclose()
    await client.aclose()


async def retained_mark(mqtt: MqttConfig, topic: str) -> tuple[str, int, int]:
    async with aiomqtt.Client("127.0.0.1", mqtt.port, identifier="mark-reader") as reader:
        await reader.subscribe(topic, qos=1)
        async with asyncio.timeout(10):
            async for message in reader.messages:
                assert isinstance(message.payload, bytes)
                return decode_ingest_ack(message.payload)
    raise AssertionError("unreachable")


class LateDatabase:
    """A collector (disk spool) and an ingest worker on the real broker, with InfluxDB started only
    later on a port held meanwhile (bound, not listening: connections are refused), so that no other
    process on a busy box takes it."""

    def __init__(self, tmp_path: Path, mosquitto: Mosquitto, site: str, **influx: object) -> None:
        self.tmp_path, self.site = tmp_path, site
        self.mqtt = MqttConfig(port=mosquitto.port, spool=SpoolConfig(path=tmp_path / "collector.sqlite"))
        self.placeholder = socket.socket()
        self.placeholder.bind(("127.0.0.1", 0))
        self.port = self.placeholder.getsockname()[1]
        self.influx = InfluxConfig(url=f"http://127.0.0.1:{self.port}", database=site, flush_interval_s=0.1, **influx)
        self.worker = IngestWorker(self.mqtt, self.influx, site, f"{site}-ingest")
        self.publisher = MqttPublisher(self.mqtt, site, "collector-1")
        self.client = InfluxV1Client(self.influx)
        self.database: InfluxDB | None = None
        self.tasks: list[asyncio.Task] = []

    async def __aenter__(self) -> LateDatabase:
        self.tasks.append(asyncio.create_task(self.worker.run()))
        await asyncio.wait_for(self.worker.subscribed.wait(), 30)
        self.tasks.append(asyncio.create_task(self.publisher.run()))
        return self

    async def received(self, batches: int) -> None:
        """Publish `batches` and wait until the broker has them all and the worker received them."""
        for seq in range(batches):
            self.publisher.submit(batch(self.site, "m1", seq))

        async def received() -> bool:
            return self.worker.messages == batches and self.publisher.published == batches

        await eventually(received, "the broker to acknowledge and the worker to receive every batch")

    async def database_answers(self) -> None:
        self.placeholder.close()
        self.database = await asyncio.to_thread(start_influxdb, self.tmp_path / "influxdb", self.port)

    async def all_durable(self, batches: int) -> None:
        """The collector's spool empties (ingest's mark passed every batch); each is in InfluxDB, in
        the default retention policy, and the mark stays on the broker (retained) for a collector or
        a worker that comes back."""
        await asyncio.wait_for(self.publisher.drain(), 60)
        assert self.publisher.backlog == 0 and self.publisher.acked == self.publisher.spool.last_id == batches
        rows = await self.client.query("SELECT count(quality) FROM reading")
        assert rows and rows[0].values[0][1] == 2 * batches  # two readings a batch
        topic = ingest_ack_topic(self.mqtt.topic_root, self.site, "collector-1")
        assert await retained_mark(self.mqtt, topic) == (self.publisher.spool.epoch, batches, 0)

    async def __aexit__(self, *exc: object) -> None:
        await stop(self.tasks, self.publisher, [self.worker], self.client)
        self.placeholder.close()
        if self.database is not None:
            await asyncio.to_thread(self.database.process.stop)


async def test_batches_stay_spooled_until_ingest_has_them_in_the_database(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """The broker has every batch (PUBACK) while InfluxDB is down: the collector still keeps them all.
    Once InfluxDB answers and ingest has written them, its mark empties the collector's spool."""
    batches = 6
    async with LateDatabase(tmp_path, mosquitto, "durable_ack", max_retries=100) as run:
        await run.received(batches)
        assert run.publisher.backlog == batches and run.publisher.acked == 0, (
            "nothing is durable yet, nothing forgotten"
        )
        await run.database_answers()
        await run.all_durable(batches)
        print(f"\n[durable ack] batches: {batches}, marks published by ingest: {run.worker.marks_published}")


async def test_an_ingest_spool_in_memory_confirms_nothing_before_the_database_has_it(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """Ingest without a spool path (its outbox would be in memory) gives up on the database at once
    (`max_retries: 0`): the batches are not durable anywhere but in the collector's spool, so they
    are held unacknowledged and the collector keeps every one, however often ingest tries again."""
    batches = 6
    async with LateDatabase(
        tmp_path, mosquitto, "durable_mem", max_retries=0, retry_initial_s=0.1, retry_max_s=0.3
    ) as run:
        assert run.worker.writer.spool.path is None
        await run.received(batches)

        async def outage_decided() -> bool:
            # the bug this guards against: the batches "spooled" to memory and the collector's
            # spool pruned by the mark; otherwise the writer keeps trying the held batch
            return run.publisher.acked > 0 or run.worker.writer.failed_writes >= 4

        await eventually(outage_decided, "the writer to give up on InfluxDB and try again (or confirm)")
        writer = run.worker.writer
        # every batch held (the collector's probe, with no lines, may have been confirmed on its own)
        assert writer.database_down and writer.pending >= batches and writer.spooled_batches == 0
        assert run.publisher.backlog == batches and run.publisher.acked == 0, "held in RAM is not durable"
        assert run.worker.marks_published == 0
        await run.database_answers()
        await run.all_durable(batches)
        assert not writer.database_down and writer.written_lines == 2 * batches
        print(f"\n[durable ack, no ingest spool] batches: {batches}, writes tried while away: {writer.failed_writes}")


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
        await stop(tasks, publisher, [worker], client)
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
        await stop(tasks, publisher, workers, client)


async def test_a_batch_the_database_rejects_is_held_without_a_dead_letter_file(
    influxdb: InfluxDB, fresh_database: str
) -> None:
    """Without a dead-letter file (no `dead_letter_path`, no spool path) a batch InfluxDB rejects for
    good cannot be kept anywhere: it is held, not acknowledged, so its collector keeps it."""
    config = InfluxConfig(url=influxdb.url, database=fresh_database, flush_interval_s=0.1)
    assert config.resolved_dead_letter_path() is None
    client = InfluxV1Client(config)
    await client.ensure_database()
    # `value` written as an integer first: the same shard then refuses the batch's float (HTTP 400)
    await client.write([f"reading,site=other,device=x,point=y,unit=kW value=1i {T0}"])
    writer = InfluxWriter(config, InfluxV1Client(config))
    task = asyncio.create_task(writer.run())
    acked: list[int] = []
    try:
        writer.add(batch_lines(batch("held", "m1", 1)), lambda: acked.append(1))
        writer.add(batch_lines(batch("held", "m1", 2)), lambda: acked.append(2))  # behind it, in order

        async def tried_again() -> bool:
            return writer.holds.times >= 2

        await eventually(tried_again, "the rejected batch held and tried again")
        assert acked == [] and writer.pending == 2 and writer.dead_letters.batches == 0
    finally:
        await stop_writer(writer, task)
        await client.aclose()


@pytest.mark.parametrize("when_full", ["drop_oldest", "drop_newest"])
async def test_an_ingest_spool_at_its_limit_holds_instead_of_dropping(tmp_path: Path, when_full: str) -> None:
    """Ingest's spool at its own limit drops nothing: a batch dropped (or an older one dropped for it)
    would be lost after its collector was told it is durable. The batch is held unacknowledged."""
    messages = [batch_lines(batch("full", "m1", seq)) for seq in range(2)]
    size = len("\n".join(messages[0]).encode())
    refused = socket.socket()  # bound, not listening: InfluxDB refuses connections
    refused.bind(("127.0.0.1", 0))
    spool = SpoolConfig(path=tmp_path / "spool.sqlite", max_mib=1.5 * size / MIB, when_full=when_full)
    config = InfluxConfig(
        url=f"http://127.0.0.1:{refused.getsockname()[1]}",
        database="full",
        flush_interval_s=0.1,
        max_retries=0,
        retry_initial_s=0.1,
        retry_max_s=0.3,
        spool=spool,
    )
    writer = InfluxWriter(config, InfluxV1Client(config))
    task = asyncio.create_task(writer.run())
    acked: list[int] = []
    try:
        writer.add(messages[0], lambda: acked.append(0))

        async def spooled() -> bool:
            return acked == [0]

        await eventually(spooled, "the first batch spooled and acknowledged")
        writer.add(messages[1], lambda: acked.append(1))

        async def held() -> bool:
            return writer.holds.times >= 2

        await eventually(held, "the second batch held at the spool's limit, and tried again")
        assert acked == [0] and writer.pending == 1
        assert writer.spool.rows == 1 and writer.spool.dropped == 0 and writer.spooled_batches == 1
    finally:
        await stop_writer(writer, task)
        refused.close()


async def test_no_write_lands_before_the_default_retention_policy_exists(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, fresh_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """InfluxDB answers only after ingest's first try to prepare it (as when influxd starts after the
    worker): the worker's retry creates the database, whose default policy is `autogen` until `raw` is
    made the default. A line written in between would land in `autogen`, out of every default query
    (the cause of a flake of the test above: rows empty after the drain). Here the policies wait
    until the writer has taken a batch: it must wait for them."""
    real_ensure = InfluxV1Client.ensure_database
    calls: list[str] = []
    policies_pending = asyncio.Event()
    release = asyncio.Event()

    async def ensure_database(self: InfluxV1Client) -> None:
        calls.append("ensure")
        if len(calls) == 1:
            raise InfluxError("not answering yet (the first try)", None, True)
        await self.query(f'CREATE DATABASE "{self.config.database}"', epoch=None, db=False)
        policies_pending.set()
        await release.wait()
        await real_ensure(self)

    monkeypatch.setattr(InfluxV1Client, "ensure_database", ensure_database)
    site = "durable_rp"
    mqtt = MqttConfig(port=mosquitto.port, ack_from_ingest=False)
    influx = InfluxConfig(url=influxdb.url, database=fresh_database, flush_interval_s=0.1)
    worker = IngestWorker(mqtt, influx, site, "rp")
    writes_while_pending: list[int] = []
    real_write = worker.sink.write

    async def write(lines: list[str], precision: str = "ns") -> None:
        if not release.is_set():
            writes_while_pending.append(len(lines))
        await real_write(lines, precision)

    monkeypatch.setattr(worker.sink, "write", write)  # the same client; its writes observed
    publisher = MqttPublisher(mqtt, site, "collector-rp")
    tasks = [asyncio.create_task(worker.run())]
    client = InfluxV1Client(influx)
    try:
        await asyncio.wait_for(worker.subscribed.wait(), 30)
        await asyncio.wait_for(policies_pending.wait(), 30)
        tasks.append(asyncio.create_task(publisher.run()))
        publisher.submit(batch(site, "m1", 1))

        async def taken() -> bool:
            # taken by the writer: from here it writes (without awaiting anything first) or waits
            return worker.messages == 1 and not worker.writer.buffer

        await eventually(taken, "the writer to take the batch")
        release.set()
        await asyncio.wait_for(worker.writer.flush(), 30)
        assert writes_while_pending == []
        await asyncio.wait_for(worker.database_ready.wait(), 30)  # `raw` is the default from here
        rows = await client.query("SELECT count(quality) FROM reading")
        assert rows and rows[0].values[0][1] == 2
    finally:
        release.set()
        await stop(tasks, publisher, [worker], client)


async def test_a_burst_waits_at_the_broker_not_in_ingest(
    mosquitto: Mosquitto, influxdb: InfluxDB, fresh_database: str
) -> None:
    """A burst of 1,000 batches published at once: Mosquitto 2.0 sends past the worker's Receive
    Maximum once acknowledgements flow, so the worker paces itself (gateway/ingest_flow.py). It
    holds no more than two writes waiting besides the one under way, and reads no further ahead than
    READ_AHEAD messages; every batch is stored."""
    site, batches, batch_size = "durable_burst", 1000, 20  # 2 lines a batch: a write takes 10 batches
    mqtt = MqttConfig(port=mosquitto.port, ack_from_ingest=False)
    influx = InfluxConfig(url=influxdb.url, database=fresh_database, flush_interval_s=0.1, batch_size=batch_size)
    client = InfluxV1Client(influx)
    await client.ensure_database()
    worker = IngestWorker(mqtt, influx, site, "burst")
    task = asyncio.create_task(worker.run())
    publisher = MqttPublisher(mqtt, site, "collector-burst")
    try:
        await asyncio.wait_for(worker.subscribed.wait(), 30)
        running = asyncio.create_task(publisher.run())
        for seq in range(batches):
            publisher.submit(batch(site, "m1", seq))
        await asyncio.wait_for(publisher.drain(), 120)
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)

        async def stored() -> bool:
            rows = await client.query(f"SELECT count(quality) FROM reading WHERE site='{site}'")
            return bool(rows) and rows[0].values[0][1] == 2 * batches

        await eventually(stored, "every batch in InfluxDB", within_s=120)
        # crowded at 2 writes' lines waiting (20 batches) besides the write under way (10 batches),
        # and the collector's probe (a message without lines) may be among them
        assert worker.read_pauses > 0 and worker.writer.peak_pending <= 30 + 1
        assert worker.peak_read_ahead <= 2 * ingest_module.READ_AHEAD
        print(
            f"\n[burst] batches: {batches}, read pauses: {worker.read_pauses}, most held: "
            f"{worker.writer.peak_pending}, most read ahead: {worker.peak_read_ahead}"
        )
    finally:
        await stop([task], publisher, [worker], client)

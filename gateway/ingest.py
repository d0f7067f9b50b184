"""Ingest: telemetry and device status from MQTT (v5 shared subscription) into InfluxDB, in batches.

A message is acknowledged (manual PUBACK) only once its points are durable: written to InfluxDB,
spooled to disk while the database is away, or, if the database rejects them for good, kept in the
dead-letter file. Until then the broker holds the message for this worker's persistent session, so
a worker that dies gets it again when it comes back. Without a spool path (an outbox in memory) or
a dead-letter file there is nothing that survives a restart: such a worker acknowledges a batch only
once InfluxDB has it, and holds it, unacknowledged, while the database is away or rejects it.

Several workers share the stream through the shared subscription `$share/ferrogate-ingest/...`,
each message going to one of them.

Collectors keep their batches until ingest says they are durable: for a message that carries a
delivery tag, ingest moves its collector's durable mark and publishes it, retained, on
`{root}/{site}/ingest/ack/{collector}` (gateway/delivery.py), which it also reads: the last mark
after a restart, and the other workers' marks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence

import aiomqtt

from ferrogate.gateway.config import InfluxConfig, MqttConfig
from ferrogate.gateway.deadletter import DeadLetters
from ferrogate.gateway.delivery import HOLE_REPORT_S, DeliveryTag, DurableMarks, read_tag
from ferrogate.gateway.episodes import Episode
from ferrogate.gateway.influx import ErrorKind, InfluxError, InfluxV1Client, LineSink
from ferrogate.gateway.ingest_flow import ReadPause
from ferrogate.gateway.lineprotocol import batch_lines, columns_lines, device_status_line
from ferrogate.gateway.mqtt import Backoff, _first_of, connection_lost, make_client, received
from ferrogate.gateway.mqtt_acks import PubackBatch
from ferrogate.gateway.payload import (
    PayloadError,
    check_size,
    decode_device_status,
    decode_ingest_ack,
    decode_telemetry,
    device_status_filter,
    encode_ingest_ack,
    ingest_ack_filter,
    ingest_ack_topic,
    ingest_probe_topic,
    telemetry_filter,
)
from ferrogate.gateway.reading import Columns
from ferrogate.gateway.rejections import Rejections
from ferrogate.gateway.spool import MIB, Spool, open_spool
from ferrogate.gateway.spool_faults import SPOOL_WRITE_ERRORS, SpoolFaults

log = logging.getLogger(__name__)

SHARE_GROUP = "ferrogate-ingest"
# a batch held for want of a durable place (no spool path or dead-letter file, a spool at its limit)
# is logged at most this often (s)
HOLD_LOG_INTERVAL_S = 60.0
# messages received but not yet taken by the worker, at most (the broker's Receive Maximum is not
# kept by Mosquitto 2.0 under load: gateway/ingest_flow.py); beyond, the socket is not read
READ_AHEAD = 100
SPOOL_NAME = "influx_outbox"
Ack = Callable[[], None]


def open_sink(config: InfluxConfig) -> LineSink:
    if config.dialect == "v2":
        from ferrogate.gateway.influx_v2 import InfluxV2Client

        return InfluxV2Client(config)
    return InfluxV1Client(config)


class InfluxWriter:
    """Batches lines by size (`batch_size`) and time (`flush_interval_s`, or `flush_idle_s` without a
    new message: a scan's burst is over) and makes each batch durable.

    A batch is written; or, after `max_retries` failed tries, spooled to disk and replayed in order
    once the database answers again (new batches queue behind the spool meanwhile); or, rejected
    for good (4xx), kept as a dead letter. The acks of a batch's messages run after that, in order.
    """

    def __init__(
        self,
        config: InfluxConfig,
        sink: LineSink,
        spool: Spool | None = None,
        dead_letters: DeadLetters | None = None,
        max_pending: int = 1000,
    ) -> None:
        self.config = config
        self.sink = sink
        self.spool = spool if spool is not None else open_spool(config.spool, SPOOL_NAME)
        self.dead_letters = (
            dead_letters if dead_letters is not None else DeadLetters(config.resolved_dead_letter_path())
        )
        # flush early when this many messages wait for their ack (the broker sends no more than
        # the worker's Receive Maximum unacknowledged)
        self.max_pending = max_pending
        self.buffer: deque[tuple[list[str], Ack | None]] = deque()
        # a batch neither written, spooled nor dead-lettered (the disk refused): not acknowledged, so the
        # broker and the collector keep its messages; it is tried again, ahead of newer ones, each flush
        self._stuck: tuple[list[list[str]], list[Ack | None]] | None = None
        self.faults = SpoolFaults(self.spool, "batches not acknowledged (the broker and the collectors keep them)")
        self.buffered_lines = 0
        self._added_at = 0.0  # monotonic time of the last message handed over
        self.added = 0  # entries (messages) handed over
        self.peak_pending = 0  # the most messages held at once (handed over, not yet acknowledged)
        self.done = 0  # entries made durable and acknowledged
        self.written_lines = 0
        self.written_batches = 0
        self.spooled_batches = 0
        self.spooled_lines = 0
        self.replayed_batches = 0
        self.replayed_lines = 0
        self.database_down = False
        self._backoff = Backoff(config.retry_initial_s, config.retry_max_s)
        self._retry_at = 0.0
        self._wake = asyncio.Event()  # write now: a full batch, or `flush`
        self._nudge = asyncio.Event()  # the run loop looks again: `_wake`, or a first message waits
        self._progress = asyncio.Condition()
        self._room = asyncio.Event()  # set whenever the writer takes or acknowledges messages
        self.holds = HoldLog()  # batches held for want of a durable place
        self.failed_writes = 0  # writes the database did not take (unreachable, 5xx, ...): tried again
        # the write target (database, retention policies) is prepared before the first write and
        # never while one is under way: a line written between CREATE DATABASE and the creation of
        # the default policy `raw` lands in `autogen`, which then stops being the default
        self._target_ready = False
        self._preparing = asyncio.Lock()

    @property
    def pending(self) -> int:
        """Messages handed over whose points are not durable yet (not acknowledged)."""
        return self.added - self.done

    @property
    def failed_batches(self) -> int:
        """Batches given up on (dead letters)."""
        return self.dead_letters.batches

    def add(self, lines: list[str], ack: Ack | None = None) -> None:
        """Queue one message's lines; `ack` runs once they are durable (also for an empty list)."""
        self.buffer.append((lines, ack))
        self.buffered_lines += len(lines)
        self.added += 1
        self._added_at = time.monotonic()
        if self.added - self.done > self.peak_pending:
            self.peak_pending = self.added - self.done
        if self.buffered_lines >= self.config.batch_size or len(self.buffer) >= self.max_pending:
            self._wake.set()
            self._nudge.set()
        elif len(self.buffer) == 1:  # the idle flush's clock starts (`_until_batch`)
            self._nudge.set()

    def crowded(self) -> bool:
        """More held than writing needs: `max_pending` messages, or the lines of two full writes
        waiting besides the one under way (the worker then stops reading: gateway/ingest_flow.py)."""
        return self.pending >= self.max_pending or self.buffered_lines >= 2 * self.config.batch_size

    def has_room(self) -> bool:
        """Room again: under three quarters of `max_pending`, and no more than one write waiting."""
        return 4 * self.pending < 3 * self.max_pending and self.buffered_lines <= self.config.batch_size

    async def wait_room(self, within_s: float) -> bool:
        """Wait until `has_room`; False after `within_s` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within_s):
                while not self.has_room():
                    self._room.clear()
                    await self._room.wait()
                return True
        return False

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            timeout = self.config.flush_interval_s
            if self.spool.rows or (self._stuck is not None and self.database_down):
                timeout = min(timeout, max(0.0, self._retry_at - loop.time()))
            await self._until_batch(timeout)
            self._wake.clear()
            await self._flush_buffer()
            if self.spool.rows and loop.time() >= self._retry_at:
                await self._replay()
            async with self._progress:
                self._progress.notify_all()

    async def _until_batch(self, within_s: float) -> None:
        """Wait for a full batch (`add` wakes), `within_s`, or, with messages waiting, `flush_idle_s`
        without a new one. Scans arrive as a burst each second: the burst's tail would otherwise wait
        for the next burst to fill a batch, or for the interval (a second of latency to InfluxDB)."""
        deadline = time.monotonic() + within_s
        idle = self.config.flush_idle_s
        while not self._wake.is_set():
            now = time.monotonic()
            wait = deadline - now
            if idle and self.buffer and self._stuck is None:  # a held batch waits for its retry instead
                quiet_at = self._added_at + idle
                if quiet_at <= now:
                    return
                wait = min(wait, quiet_at - now)
            if wait <= 0:
                return
            self._nudge.clear()
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._nudge.wait()

    async def flush(self) -> None:
        """Wait until everything added so far is durable (written, spooled or dead-lettered)."""
        target = self.added
        self._wake.set()
        self._nudge.set()
        async with self._progress:
            await self._progress.wait_for(lambda: self.done >= target)

    async def drain(self) -> None:
        """Wait until everything added so far is in the database (or dead-lettered): spool empty."""
        await self.flush()
        async with self._progress:
            await self._progress.wait_for(lambda: self.spool.rows == 0)

    async def _flush_buffer(self) -> None:
        while self._stuck is not None or self.buffer:
            if self._stuck is not None and self._waiting_for_database():
                return
            groups, acks = self._stuck or self._take()
            self._stuck = None
            if groups and not await self._make_durable(groups):
                self._stuck = (groups, acks)
                return
            self.faults.recovered()
            self.holds.released(self.pending)
            self._acknowledge(acks)

    def _waiting_for_database(self) -> bool:
        """A held batch waits for the database's next try (its outage backoff), not for every flush."""
        return self.database_down and not self.spool.rows and asyncio.get_running_loop().time() < self._retry_at

    async def _make_durable(self, groups: list[list[str]]) -> bool:
        """Write, spool or dead-letter the groups; False when none of that kept them (nothing may be
        acknowledged): the disk refused, or there is no disk (a pathless spool or dead-letter file)."""
        try:
            # while the spool holds older batches, new ones queue behind them (order, and no hammering)
            if self.spool.rows:
                return self._to_spool(groups)
            # in an outage the database gets one try per step of its backoff, not `max_retries` more
            retries = 0 if self.database_down else self.config.max_retries
            if not await self._write_retrying(groups, retries):
                return self._to_spool(groups)
        except OSError:  # the dead-letter file could not be written, or there is none (logged)
            return False
        return True

    def _take(self) -> tuple[list[list[str]], list[Ack | None]]:
        """The oldest messages, whole, up to `batch_size` lines (at least one message): the lines of
        each message with any (a rejected message or a probe has none), and every message's ack."""
        groups: list[list[str]] = []
        acks: list[Ack | None] = []
        taken = 0
        limit = self.config.batch_size
        while self.buffer and (not taken or taken + len(self.buffer[0][0]) <= limit):
            entry_lines, entry_ack = self.buffer.popleft()
            if entry_lines:
                groups.append(entry_lines)
                taken += len(entry_lines)
            acks.append(entry_ack)
        self.buffered_lines -= taken
        self._room.set()
        return groups, acks

    def _acknowledge(self, acks: list[Ack | None]) -> None:
        for entry_ack in acks:
            if entry_ack is not None:
                entry_ack()
        self.done += len(acks)
        self._room.set()

    async def _write_retrying(self, groups: list[list[str]], retries: int) -> bool:
        """Write with `retries` retries; False (and outage mode) if the database stays away."""
        backoff = Backoff(self.config.retry_initial_s, self.config.retry_max_s)
        for attempt in range(retries + 1):
            try:
                await self._write(groups)
            except InfluxError as exc:
                error = exc
                self.failed_writes += 1
            else:
                if self.database_down and not self.spool.rows:  # held batches (no spool) went through
                    self.database_down = False
                    self._backoff.reset()
                    log.info("InfluxDB answers again: held batches written")
                return True
            if attempt < retries:
                delay = backoff.next_delay()
                log.warning(
                    "InfluxDB write of %d lines failed (%s); retry %d of %d in %.1f s",
                    sum(map(len, groups)),
                    error,
                    attempt + 1,
                    retries,
                    delay,
                )
                await asyncio.sleep(delay)
        self._enter_outage(error)
        return False

    async def _write(self, groups: list[list[str]]) -> None:
        """One write of the groups' lines (a group: one message, or one spooled batch). A missing v1
        database is created, an oversized batch split; when the database rejects lines for good, the
        groups are bisected so that only those that fail by themselves become dead letters.
        Raises InfluxError when trying again later is worth it."""
        lines = groups[0] if len(groups) == 1 else [line for group in groups for line in group]
        if not self._target_ready:
            try:
                await self.prepare()
            except InfluxError as exc:
                if exc.retryable:
                    raise
                log.error("InfluxDB write target not prepared (%s); writing anyway", exc)
        for first_try in (True, False):
            try:
                await self.sink.write(lines)
            except InfluxError as exc:
                if exc.kind is ErrorKind.NOT_FOUND and first_try and await self._create_target():
                    continue
                if exc.kind not in (ErrorKind.REJECTED, ErrorKind.TOO_LARGE):
                    raise
                if len(groups) > 1:
                    half = len(groups) // 2
                    await self._write(groups[:half])
                    await self._write(groups[half:])
                elif exc.kind is ErrorKind.TOO_LARGE and len(lines) > 1:
                    half = len(lines) // 2
                    await self._write([lines[:half]])
                    await self._write([lines[half:]])
                else:
                    self._dead_letter(lines, exc)
                return
            self.written_lines += len(lines)
            self.written_batches += 1
            return

    async def prepare(self, again: bool = False) -> bool:
        """Create the write target if this dialect and user may (True if it exists now); writes
        wait meanwhile. Raises InfluxError while the database does not answer. `again`: also when
        prepared before (the database was dropped)."""
        async with self._preparing:
            if self._target_ready and not again:
                return True
            try:
                created = await self.sink.prepare()
            except InfluxError as exc:
                # one that trying again cannot fix: the writes go ahead and answer for themselves
                self._target_ready = not exc.retryable
                raise
            self._target_ready = True  # or not ours to create (`ferrogate db-init`, a v2 bucket)
            return created

    async def _create_target(self) -> bool:
        try:
            return await self.prepare(again=True)
        except InfluxError:
            return False

    def _dead_letter(self, lines: list[str], error: InfluxError) -> None:
        """Keep a batch the database rejected for good in the dead-letter file. Without one it cannot
        be kept: raises OSError, so the batch is held, not acknowledged (its collector keeps it)."""
        if self.dead_letters.path is None:
            self.holds.held(
                f"InfluxDB rejects a batch of {len(lines)} lines for good ({error}) and there is no dead-letter "
                "file (influxdb.dead_letter_path or spool.path) to keep it in",
                self.pending,
            )
            raise NotKept("no dead-letter file")
        self.dead_letters.add(lines, error, time.time_ns())

    def _enter_outage(self, error: InfluxError) -> None:
        if not self.database_down:
            self.database_down = True
            if self.spool.path is not None:
                where = self.spool.path
                log.error("InfluxDB unavailable (%s): spooling batches to %s until it answers again", error, where)
            else:
                log.error(
                    "InfluxDB unavailable (%s): no spool path, so batches are held unacknowledged (the broker and "
                    "the collectors keep them) until it answers again",
                    error,
                )
        self._retry_at = asyncio.get_running_loop().time() + self._backoff.next_delay()

    def _to_spool(self, groups: list[list[str]]) -> bool:
        """Spool the groups; False when they are not kept on disk, so nothing may be acknowledged: the
        spool has no path (memory only), its disk refuses (full), or it is at its own limit (`max_mib`;
        ingest never applies `when_full`: a dropped batch, or an older one dropped for it, would be
        lost after its collector was told it is durable)."""
        if self.spool.path is None:
            return False  # held until the database answers (logged on entering the outage)
        payload = "\n".join(line for group in groups for line in group).encode()
        if self.spool.bytes + len(payload) > self.spool.max_bytes:
            limit = self.spool.max_bytes / MIB
            self.holds.held(f"the InfluxDB spool {self.spool.path} is at its limit ({limit:.1f} MiB)", self.pending)
            return False
        count = sum(map(len, groups))
        try:
            self.spool.append("", payload, count)
        except SPOOL_WRITE_ERRORS as exc:
            self.faults.failed(exc, self.pending)
            return False
        self.spooled_batches += 1
        self.spooled_lines += count
        return True

    async def _replay(self) -> None:
        """Write the spool's batches, oldest first, until it is empty or the database fails again."""
        loop = asyncio.get_running_loop()
        before = self.replayed_batches
        while self.spool.rows:
            entries = self.spool.peek(1000, max_items=self.config.batch_size)
            groups = [entry.payload.decode().split("\n") for entry in entries]
            try:
                await self._write(groups)
            except (InfluxError, OSError) as exc:  # OSError: a dead letter that could not be written
                self.failed_writes += 1
                delay = self._backoff.next_delay()
                self._retry_at = loop.time() + delay
                log.warning(
                    "InfluxDB still unavailable (%s); %d batches spooled, next try in %.1f s",
                    exc,
                    self.spool.rows,
                    delay,
                )
                return
            try:
                self.spool.remove_through(entries[-1].id)
            except SPOOL_WRITE_ERRORS as exc:  # written, but the disk refuses the delete: written again later
                self.faults.failed(exc, self.pending)
                self._retry_at = loop.time() + self._backoff.next_delay()
                return
            self.replayed_batches += len(entries)
            self.replayed_lines += sum(map(len, groups))
            self._backoff.reset()
            # keep acknowledging new messages while a long backlog replays: they queue behind it
            await self._flush_buffer()
        self.database_down = False
        log.info(
            "InfluxDB spool replayed: %d batches now, %d batches (%d lines) in total",
            self.replayed_batches - before,
            self.replayed_batches,
            self.replayed_lines,
        )

    def close(self) -> None:
        self.spool.close()


class IngestWorker:
    """Telemetry and device status of one site (a plant's own ingest) or of many (the group
    center's workers, `gateway/center_ingest.py`), all on the shared subscription."""

    client_role = "ingest"  # in the MQTT client id: {prefix}-{client_role}-{worker_id}

    def __init__(
        self,
        mqtt: MqttConfig,
        influx: InfluxConfig,
        site: str | Sequence[str],
        worker_id: str = "1",
        spool_name: str = SPOOL_NAME,
    ) -> None:
        self.mqtt = mqtt
        self.sites = (site,) if isinstance(site, str) else tuple(site)
        self.site = self.sites[0]
        self.worker_id = worker_id
        self.sink = open_sink(influx)
        self.influx_client = self.sink  # with dialect v1 also the InfluxQL query client
        self.writer = InfluxWriter(
            influx, self.sink, open_spool(influx.spool, spool_name), max_pending=mqtt.receive_maximum
        )
        self.messages = 0  # telemetry batches accepted
        self.status_messages = 0  # device status changes accepted
        self.rejections = Rejections("ingest")
        self.subscribed = asyncio.Event()
        self.database_ready = asyncio.Event()
        self._root_prefix = mqtt.topic_root + "/"
        self._known_sites = frozenset(self.sites)
        self._client: aiomqtt.Client | None = None
        # collectors' durable marks (gateway/delivery.py), keyed by their ack topic
        self.marks = DurableMarks()
        self.marks_published = 0
        self._marks_moved = asyncio.Event()
        self.read_pauses = 0  # times the worker stopped reading the broker: the writer was crowded
        self.peak_read_ahead = 0  # the most received messages waiting to be taken

    @property
    def rejected(self) -> int:
        return self.rejections.count

    @property
    def rejected_reasons(self) -> dict[str, int]:
        return self.rejections.by_reason

    def handle(self, topic: str, payload: bytes, ack: Ack | None = None) -> None:
        """Turn one message into lines for the writer; a malformed one is rejected (counted, logged)
        and, like every message, acknowledged in its turn."""
        lines: list[str] = []
        try:
            check_size(payload, self.mqtt.max_message_bytes)
            site, kind, name = self._origin(topic)
            if kind == "telemetry":
                batch = decode_telemetry(payload)
                _check_origin(batch.site, batch.device, site, name)
                # ferrogate/2 (what collectors publish): straight from its arrays, no object per reading
                lines = columns_lines(batch) if isinstance(batch, Columns) else batch_lines(batch)
                self.messages += 1
            elif kind == "status":
                status_site, device, online, time_ns = decode_device_status(payload)
                _check_origin(status_site, device, site, name)
                lines = [device_status_line(status_site, device, online, time_ns)]
                self.status_messages += 1
            elif (kind, name) != ("ingest", "probe"):  # probes only ask whether a worker is subscribed
                raise PayloadError("not a telemetry or device status topic of this site")
        except PayloadError as exc:
            self.rejections.add(topic, str(exc))
        except Exception as exc:  # a payload must never stop the worker
            self.rejections.add(topic, f"unexpected: {type(exc).__name__}: {exc}")
            log.debug("message on %s could not be converted", topic, exc_info=True)
        self.writer.add(lines, ack)

    def _durable(self, topic: str, ack: Ack | None, tag: DeliveryTag) -> Ack | None:
        """`ack`, and then, once the message is durable, its collector's mark moved (a message this
        worker refuses counts too: it would be refused again)."""
        site, kind, _ = self._origin(topic)
        if kind not in ("telemetry", "status"):
            return ack
        stream = ingest_ack_topic(self.mqtt.topic_root, site, tag.stream)

        def done() -> None:
            if ack is not None:
                ack()
            if self.marks.durable(DeliveryTag(stream, tag.epoch, tag.id, tag.prev)):
                self._marks_moved.set()

        return done

    def mark_filters(self) -> list[str]:
        """Every collector's durable mark of this worker's sites (not shared: each worker reads all)."""
        return [ingest_ack_filter(self.mqtt.topic_root, site) for site in self.sites]

    def _on_mark(self, topic: str, payload: bytes) -> None:
        """A durable mark on an ack topic: the retained one after a (re)connect, or another worker's."""
        try:
            epoch, mark, _ = decode_ingest_ack(payload)
        except PayloadError as exc:
            self.rejections.add(topic, str(exc))
            return
        if self.marks.merge(topic, epoch, mark):
            self._marks_moved.set()

    async def _publish_marks(self) -> None:
        """Publish every mark that moved, retained, QoS 1, and every HOLE_REPORT_S a mark held by a
        hole (so its collector sends again); marks that move meanwhile wait for the next round."""
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(HOLE_REPORT_S if self.marks.holes() else None):
                    await self._marks_moved.wait()
            self._marks_moved.clear()
            client = self._client
            if client is None:
                continue  # set again once reconnected
            lost = connection_lost(client)
            for topic, epoch, mark, waiting in self.marks.unpublished(loop.time()):
                payload = encode_ingest_ack(epoch, mark, waiting)
                try:
                    await _first_of(client.publish(topic, payload, qos=1, retain=True), lost)
                except aiomqtt.MqttError:
                    break  # published again after the reconnect
                self.marks.published(topic, epoch, mark, loop.time())
                self.marks_published += 1

    def _origin(self, topic: str) -> tuple[str, str, str]:
        """(site, kind, name) of `{root}/{site}/{kind}/{name}` for one of this worker's sites."""
        parts = topic[len(self._root_prefix) :].split("/") if topic.startswith(self._root_prefix) else []
        if len(parts) != 3 or parts[0] not in self._known_sites:
            return "", "", ""
        return parts[0], parts[1], parts[2]

    def subscriptions(self) -> list[str]:
        """Shared: each message goes to one worker of the group."""
        root = self.mqtt.topic_root
        return [
            f"$share/{SHARE_GROUP}/{topic_filter}"
            for site in self.sites
            for topic_filter in (
                telemetry_filter(root, site),
                device_status_filter(root, site),
                ingest_probe_topic(root, site),
            )
        ]

    async def run(self) -> None:
        first_try = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._prepare(first_try), name="influx-prepare")
            tg.create_task(self._consume(), name="mqtt-ingest")
            tg.create_task(self._publish_marks(), name="mqtt-ingest-marks")
            # writes start once the database (and its retention policies) had a chance to be created,
            # so none lands in a policy about to stop being the default; an unreachable database
            # does not hold them up (they retry and spool)
            await first_try.wait()
            tg.create_task(self.writer.run(), name="influx-writer")

    async def _prepare(self, first_try: asyncio.Event) -> None:
        """Create the database if this dialect and user may; retried while the database is away."""
        backoff = Backoff(first=0.5, limit=30.0)
        while True:
            try:
                created = await self.writer.prepare()
            except InfluxError as exc:
                first_try.set()
                if not exc.retryable:
                    log.error("InfluxDB write target not prepared: %s", exc)
                    return
                delay = backoff.next_delay()
                log.warning("InfluxDB not ready (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            if not created:
                log.info("InfluxDB write target is not created by the gateway; it must exist (db-init or admin)")
            self.database_ready.set()
            first_try.set()
            return

    async def _consume(self) -> None:
        subscriptions = self.subscriptions()
        mark_filters = self.mark_filters()
        mark_prefixes = tuple(f.removesuffix("+") for f in mark_filters)
        backoff = Backoff()
        while True:
            client = make_client(
                self.mqtt,
                f"{self.mqtt.client_id_prefix}-{self.client_role}-{self.worker_id}",
                receive_maximum=self.mqtt.receive_maximum,
                manual_ack=True,
            )
            try:
                async with client:
                    self._client = client
                    reader = ReadPause(client, READ_AHEAD)
                    reader.take_over()
                    pubacks = PubackBatch(client)
                    # QoS 0: no manual PUBACK to send; the retained marks arrive now, others' as they move
                    for mark_filter in mark_filters:
                        granted = await client.subscribe(mark_filter, qos=0)
                        if any(getattr(code, "is_failure", False) for code in granted):
                            log.error("the broker refused the subscription to the durable marks: %s", granted)
                    for subscription in subscriptions:
                        granted = await client.subscribe(subscription, qos=1)
                        if any(getattr(code, "is_failure", False) for code in granted):
                            # e.g. the broker's ACL: without the probe topic, collectors hold their spools
                            log.error("the broker refused the subscription to %s: %s", subscription, granted)
                    self.subscribed.set()
                    self._marks_moved.set()  # marks that moved while disconnected
                    backoff.reset()
                    async for message in received(client):
                        topic = message.topic.value
                        if mark_prefixes and topic.startswith(mark_prefixes):
                            if isinstance(message.payload, bytes):
                                self._on_mark(topic, message.payload)
                        else:
                            acker: Ack | None = self._acker(client, pubacks, message)
                            tag = read_tag(message.properties)
                            if tag is not None:
                                acker = self._durable(topic, acker, tag)
                            self.handle(topic, message.payload, acker)
                        # after every message taken, marks too: reading resumes as the queue drains,
                        # whatever the last messages in it were (never paused with nothing to take)
                        await self._pace(client, reader)
            except aiomqtt.MqttError as exc:
                self.subscribed.clear()
                delay = backoff.next_delay()
                log.warning("ingest MQTT: %s; reconnecting in %.1f s", exc, delay)
                await asyncio.sleep(delay)
            finally:
                self._client = None

    async def _pace(self, client: aiomqtt.Client, reader: ReadPause) -> None:
        """Keep a burst at the broker, not in this process (gateway/ingest_flow.py): while the writer
        is crowded, stop reading and wait for room (at most half the keepalive: the broker's PINGRESP
        must be read); and read no further ahead than READ_AHEAD received messages."""
        if self.writer.crowded():
            reader.pause()
            self.read_pauses += 1
            # a connection lost meanwhile ends the wait (MqttError: the reconnect loop takes over)
            await _first_of(self.writer.wait_room(self.mqtt.keepalive_s / 2), connection_lost(client))
        queued = len(client.messages)
        self.peak_read_ahead = max(self.peak_read_ahead, queued)
        if queued >= READ_AHEAD:
            reader.pause()
        elif queued <= READ_AHEAD // 4:  # never paused with nothing left to take: reading resumes first
            reader.resume()

    def _acker(self, client: aiomqtt.Client, pubacks: PubackBatch, message: aiomqtt.Message) -> Ack:
        def send() -> None:
            # a message id is only meaningful on the connection that delivered it; after a
            # reconnect the broker redelivers whatever was not acknowledged
            if self._client is client:
                pubacks.ack(message)

        return send

    async def aclose(self) -> None:
        await self.sink.aclose()
        self.writer.close()


class NotKept(OSError):
    """A batch that could not be kept anywhere durable (see InfluxWriter._dead_letter)."""


class HoldLog:
    """Batches held unacknowledged for want of a durable place: logged at ERROR at once, then at
    most every HOLD_LOG_INTERVAL_S with the count held, and once when they go through again."""

    def __init__(self) -> None:
        self._holds = Episode(HOLD_LOG_INTERVAL_S)

    @property
    def times(self) -> int:
        """Flushes that held their batch."""
        return self._holds.occurrences

    def held(self, why: str, pending: int) -> None:
        if self._holds.occurred():
            log.error("%s: %d messages held unacknowledged (the broker and the collectors keep them)", why, pending)

    def released(self, pending: int) -> None:
        if self._holds.ended():
            log.warning("held batches are durable again; %d messages still pending", pending)


def _check_origin(site: str, device: str, own_site: str, topic_device: str) -> None:
    if site != own_site or device != topic_device:
        raise PayloadError(f"payload is for {site!r}/{device!r} but came on the topic of {own_site!r}/{topic_device!r}")

"""MQTT connections (aiomqtt over paho-mqtt, MQTT v5) and the publisher the collector feeds.

The publisher is store-and-forward: every scan batch is committed to the disk spool (within
SPOOL_FLUSH_S of its scan, in one transaction with the other devices' batches of that moment) before
it is published, and leaves
it only once ingest says it is durable in the database (gateway/delivery.py; or, with
`ack_from_ingest: false`, on the broker's PUBACK), so a broker outage or crash or a killed gateway
loses nothing; after a reconnect or a restart the spool is replayed in order. A batch may therefore
be delivered twice; InfluxDB's point key (series + timestamp) makes the second write an overwrite.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import aiomqtt
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ferrogate.gateway import mqtt_properties
from ferrogate.gateway.cancellation import cancel_pending
from ferrogate.gateway.config import MqttConfig
from ferrogate.gateway.delivery import tag_properties
from ferrogate.gateway.payload import (
    PayloadError,
    check_size,
    decode_batch,
    decode_ingest_ack,
    encode_batch,
    encode_device_status,
    ingest_ack_topic,
    ingest_probe_topic,
    status_topic,
    stream_name,
    telemetry_filter,
    telemetry_topic,
)
from ferrogate.gateway.reading import ScanBatch
from ferrogate.gateway.rejections import Rejections
from ferrogate.gateway.spool import MIB, Spool, SpoolEntry, open_spool
from ferrogate.gateway.spool_faults import MemoryOverflow

log = logging.getLogger(__name__)
T = TypeVar("T")

ONLINE = b"online"
OFFLINE = b"offline"
SPOOL_NAME = "mqtt_outbox"
NO_MATCHING_SUBSCRIBERS = 16  # MQTT v5 PUBACK reason code
# while connected, the publisher checks again that an ingest worker is subscribed this often (s)
PROBE_INTERVAL_S = 10.0
# holding the spool this long for want of an ingest worker is worth a warning (s)
INGEST_WAIT_WARNING_S = 30.0
# ingest reports its mark held by a hole (a message the broker dropped without closing a connection)
# and the mark has not moved for this long: send everything past it again (s)
RESEND_AFTER_HOLE_S = 10.0
# batches handed over within this long share one spool transaction (a scan round of every device
# on a link finishes within a few ms): one commit instead of one per device (s)
SPOOL_FLUSH_S = 0.02


class Client(aiomqtt.Client):
    """aiomqtt's client, made to close a connection whose CONNACK wait was given up (`_abandon`),
    and to keep a `Task.cancel()` a cancellation (gateway/cancellation.py):
    after CONNACK, SUBACK and PUBACK waits a pending cancellation is raised again; and since
    aiomqtt 2.5 can raise MqttError from `__aexit__`, which would replace a CancelledError in
    flight, leaving the client while cancelled stays a cancellation.
    """

    _abandoned = False  # a connect that failed or was cancelled part way: see _abandon
    # the CONNACK's session-present flag: the broker resumed this client id's session (and its queue)
    session_present = False

    async def __aenter__(self) -> Client:
        self._abandoned = False
        try:
            await super().__aenter__()
        except BaseException:
            self._abandon()
            raise
        if cancel_pending():
            with contextlib.suppress(Exception):
                await super().__aexit__(asyncio.CancelledError, None, None)
            raise asyncio.CancelledError
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        dropped = self._disconnected
        try:
            await super().__aexit__(exc_type, exc, tb)
        except aiomqtt.MqttError:
            if exc_type is not None and issubclass(exc_type, asyncio.CancelledError):
                return  # the CancelledError propagates
            raise
        finally:
            # A connection that dropped while the role waited on something else (its outbox, a
            # PUBACK that then timed out) was handled by the role's reconnect loop; aiomqtt keeps the
            # drop's exception in a future only its message iterator reads, and asyncio would log
            # it as "Future exception was never retrieved" when the client is collected.
            if dropped.done() and not dropped.cancelled():
                dropped.exception()

    def _abandon(self) -> None:
        """aiomqtt leaves paho's connection be when the CONNACK wait times out or is cancelled: the
        socket connects on its own (the connect runs in a thread), a CONNACK arriving later makes a
        live session nobody reads, and when the broker ends it (a takeover by the next attempt with
        the same client id, a broker restart) the exception lands in a future no one retrieves
        ("Future exception was never retrieved"). Close it now, or as soon as its CONNACK arrives."""
        self._abandoned = True
        self._client.disconnect()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, *args: Any, **kwargs: Any) -> None:
        if self._abandoned:
            client.disconnect()
            return
        # paho's ConnectFlags; aiomqtt 2.5 (pinned) reads only the reason code
        self.session_present = bool(flags.session_present)
        super()._on_connect(client, userdata, flags, *args, **kwargs)

    def _on_disconnect(self, *args: Any, **kwargs: Any) -> None:
        if not self._abandoned:
            super()._on_disconnect(*args, **kwargs)

    async def subscribe(self, *args: Any, **kwargs: Any) -> Any:
        granted = await super().subscribe(*args, **kwargs)
        if cancel_pending():
            raise asyncio.CancelledError
        return granted

    async def publish(self, *args: Any, **kwargs: Any) -> None:
        await super().publish(*args, **kwargs)
        if cancel_pending():
            raise asyncio.CancelledError

    async def publish_many(self, messages: Sequence[tuple[str, bytes, bool, Properties | None]]) -> None:
        """Publish (topic, payload, retain, properties) messages with QoS 1, in order, and wait for
        every PUBACK (at most `timeout` s, else MqttError). What aiomqtt's `publish` does per
        message (a task, an event and a timeout each), done once for the window; a connection that
        drops meanwhile raises MqttError at once."""
        waiter = _Acks(asyncio.get_running_loop())
        lost = self._disconnected
        pending = self._pending_publishes
        publish = self._client.publish
        mids: list[int] = []
        try:
            for topic, payload, retain, properties in messages:
                info = publish(topic, payload, 1, retain, properties)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    cause = lost.exception() if lost.done() and not lost.cancelled() else None
                    raise aiomqtt.MqttCodeError(info.rc, "Could not publish message") from cause
                if not info.is_published():
                    pending[info.mid] = waiter  # aiomqtt's on_publish calls waiter.set()
                    mids.append(info.mid)
                    waiter.expected += 1
            if waiter.expected:
                lost.add_done_callback(waiter.lost)
                try:
                    async with asyncio.timeout(self.timeout):
                        await waiter.done
                except TimeoutError:
                    raise aiomqtt.MqttError("Operation timed out") from None
                finally:
                    lost.remove_done_callback(waiter.lost)
        finally:
            for mid in mids:
                if pending.get(mid) is waiter:
                    del pending[mid]
        if cancel_pending():
            raise asyncio.CancelledError


class _Acks:
    """Counts the PUBACKs of a window (aiomqtt's on_publish calls `set` per message)."""

    __slots__ = ("done", "expected", "seen")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.done: asyncio.Future[None] = loop.create_future()
        self.expected = 0
        self.seen = 0

    def set(self) -> None:
        self.seen += 1
        if self.seen >= self.expected and not self.done.done():
            self.done.set_result(None)

    def lost(self, disconnected: asyncio.Future[None]) -> None:
        if not self.done.done():
            cause = disconnected.exception() if not disconnected.cancelled() else None
            self.done.set_exception(aiomqtt.MqttError(f"connection lost: {cause}"))


def make_client(
    config: MqttConfig,
    identifier: str,
    will: aiomqtt.Will | None = None,
    *,
    receive_maximum: int | None = None,
    manual_ack: bool = False,
) -> Client:
    """An MQTT v5 client with a persistent session (unless `clean_start`); must be created inside the
    running event loop (aiomqtt's rule).

    `manual_ack`: QoS 1 messages are acknowledged only when the caller says so (`ack`), not on
    receipt; it is set before connecting, because a persistent session's queued messages arrive
    right after CONNACK. `receive_maximum` caps the unacknowledged messages the broker sends.
    """
    # every client in every process decodes received packets the same way (PUBLISH for ingest and
    # the books, PUBACK for the collector): once per process, on the pinned paho only
    mqtt_properties.install()
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = config.session_expiry_s
    if receive_maximum is not None:
        properties.ReceiveMaximum = receive_maximum
    client = Client(
        config.host,
        config.port,
        username=config.username,
        password=config.resolve_password(),
        identifier=identifier,
        protocol=aiomqtt.ProtocolVersion.V5,
        will=will,
        keepalive=config.keepalive_s,
        timeout=10,
        clean_start=config.clean_start,
        properties=properties,
        max_inflight_messages=config.max_inflight,
        tls_context=config.tls.context() if config.tls is not None else None,
    )
    # aiomqtt 2.5 (pinned) has no manual-ack option; paho, which it wraps, has
    client._client.manual_ack_set(manual_ack)
    return client


def ack(client: aiomqtt.Client, message: aiomqtt.Message) -> None:
    """Send the PUBACK of a message received with `manual_ack` (QoS 0 needs none)."""
    if message.qos > 0:
        client._client.ack(message.mid, message.qos)


async def received(client: aiomqtt.Client) -> AsyncIterator[aiomqtt.Message]:
    """`client.messages`, but a message already queued is taken at once: aiomqtt 2.5 (pinned) makes
    a task and an `asyncio.wait` for every message, queued or not, and hands it over a turn of the
    event loop later. A dropped connection ends the iteration (MqttError) once the queue is empty,
    as aiomqtt's does (it, too, hands out a message that is there)."""
    queue, messages = client._queue, client.messages
    while True:
        if queue.qsize():
            yield queue.get_nowait()
        else:
            yield await anext(messages)


def connection_lost(client: aiomqtt.Client) -> asyncio.Future[None]:
    """Resolves when the client's connection drops (aiomqtt 2.5 keeps this future private)."""
    return client._disconnected


async def has_subscribers(client: aiomqtt.Client, topic: str) -> bool:
    """Publish a QoS 1 probe to `topic`; False if the broker answers 'No matching subscribers'.

    aiomqtt 2.5 drops PUBACK reason codes, so this listens on paho's publish callback itself.
    """
    paho = client._client
    forward = paho.on_publish
    answer: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    mid = -1

    def on_publish(c, userdata, acked_mid, reason_code, properties) -> None:  # paho's callback signature
        if acked_mid == mid and not answer.done():
            answer.set_result(reason_code.value)
        forward(c, userdata, acked_mid, reason_code, properties)

    paho.on_publish = on_publish
    try:
        info = paho.publish(topic, b"probe", qos=1)
        if info.rc != 0:
            raise aiomqtt.MqttCodeError(info.rc, "could not publish the ingest probe")
        mid = info.mid  # the PUBACK cannot arrive before we next yield to the loop
        try:
            async with asyncio.timeout(client.timeout):
                reason = await answer
        except TimeoutError:
            raise aiomqtt.MqttError("no PUBACK for the ingest probe") from None
    finally:
        paho.on_publish = forward
    return reason != NO_MATCHING_SUBSCRIBERS


class Backoff:
    """Exponential backoff with full jitter, reset after a success."""

    def __init__(self, first: float = 0.5, limit: float = 30.0) -> None:
        self.first, self.limit, self.attempt = first, limit, 0

    def next_delay(self) -> float:
        delay = min(self.limit, self.first * 2**self.attempt)
        self.attempt += 1
        return random.uniform(delay / 2, delay)

    def reset(self) -> None:
        self.attempt = 0


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    retain: bool = False


class Outbox:
    """Messages a role derives (the books' rows, the limit grades), published QoS 1 by `run` in the
    order they were put, reconnecting with backoff; a message whose publish failed goes first on
    the next connection. In memory: the role derives them again after a restart.

    `latest_only`: a message replaces the one still waiting on its topic (it keeps that one's place),
    for a role that republishes its whole state each time and whose readers want the last version
    only; what waits while the broker is away is then bounded by the number of topics."""

    def __init__(self, config: MqttConfig, identifier: str, *, latest_only: bool = False) -> None:
        self.config = config
        self.identifier = identifier
        self.latest_only = latest_only
        self.published = 0
        self._queue: deque[Message] = deque()
        self._latest: dict[str, Message] = {}
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._queue) + len(self._latest)

    def waiting(self) -> list[Message]:
        """What waits to be published, in the order it goes (a copy)."""
        return [*self._queue, *self._latest.values()]

    def put(self, message: Message) -> None:
        if self.latest_only:
            self._latest[message.topic] = message
        else:
            self._queue.append(message)
        self._ready.set()

    async def _take(self) -> Message:
        while True:
            if self._queue:
                return self._queue.popleft()
            if self._latest:
                return self._latest.pop(next(iter(self._latest)))
            self._ready.clear()
            await self._ready.wait()

    async def run(self) -> None:
        backoff = Backoff()
        pending: Message | None = None
        while True:
            try:
                async with make_client(self.config, self.identifier) as client:
                    backoff.reset()
                    while True:
                        if pending is None:
                            pending = await self._take()
                        await client.publish(pending.topic, pending.payload, qos=1, retain=pending.retain)
                        self.published += 1
                        pending = None
            except aiomqtt.MqttError as exc:
                delay = backoff.next_delay()
                log.warning(
                    "%s: MQTT %s; reconnecting in %.1f s (%d messages waiting)", self.identifier, exc, delay, len(self)
                )
                await asyncio.sleep(delay)


class MqttPublisher:
    """Publishes scan batches and device status with QoS 1, in order, from the spool.

    The gateway's retained status topic carries 'online' while connected and 'offline' by
    last-will when the connection dies; each device's retained status topic carries its last
    online/offline change.
    """

    def __init__(
        self,
        config: MqttConfig,
        site: str,
        gateway_id: str,
        spool: Spool | None = None,
        first_wait_for: Sequence[asyncio.Event] = (),
    ) -> None:
        """`first_wait_for`: subscriptions of followers in the same process (the energy books) that
        must be in place before the first batch goes out; a follower's first-ever session has no
        queue on the broker yet, so what was published before it subscribed would never reach it.
        Waited for once per process; after that, persistent sessions queue for followers that are away."""
        self.config = config
        self._first_wait_for = list(first_wait_for)
        self.site = site
        self.gateway_id = gateway_id
        self.spool = spool if spool is not None else open_spool(config.spool, SPOOL_NAME)
        # what the spool's disk refuses (full) waits in memory, bounded (gateway/spool_faults.py)
        self.overflow = MemoryOverflow(self.spool, int(config.spool.memory_mib * MIB))
        self.submitted = 0  # telemetry batches handed over by the collector in this run
        self.published = 0  # telemetry batches acknowledged by the broker (PUBACK)
        self.status_published = 0
        self.replayed = 0  # batches that waited in the spool through an outage or a restart
        self.ingest_absent = 0  # probes the broker answered with 'no matching subscribers'
        # durable acknowledgement: batches stay in the spool until ingest's mark passes them
        self.durable_ack = config.durable_ack
        self.stream = stream_name(gateway_id)
        self.acked = 0  # ingest's durable mark for this spool's epoch
        self.acks = 0  # marks received that pruned the spool
        self.hole_resends = 0  # spools sent again from the mark because ingest reported a hole
        self._resend = False  # set by a hole report: the forward loop starts again at the head
        self._acked_at = 0.0  # loop time of the last move of the mark (or of the connect)
        self.connected = asyncio.Event()
        # handed over, not yet committed (SPOOL_FLUSH_S): (topic, payload, items, retain)
        self._staged: list[tuple[str, bytes, int, bool]] = []
        self._flush_at: asyncio.TimerHandle | None = None
        self._flush_error: BaseException | None = None
        self._device_online: dict[str, bool] = {}
        self._wake = asyncio.Event()
        self._progress = asyncio.Condition()

    @property
    def dropped(self) -> int:
        """Entries the full spool (or the full memory behind a full disk) dropped, counted and logged."""
        return self.spool.dropped + self.overflow.dropped

    @property
    def backlog(self) -> int:
        """Entries waiting in the spool (spooled while the broker was away, or in flight)."""
        return self.spool.rows + len(self._staged)

    def submit(self, batch: ScanBatch) -> None:
        """Hand a batch over: committed to the spool within SPOOL_FLUSH_S (with whatever else is
        handed over meanwhile; if the disk refuses it, held in bounded memory until it takes it,
        gateway/spool_faults.py), then the run loop publishes it."""
        topic = telemetry_topic(self.config.topic_root, batch.site, batch.device)
        self._stage(topic, encode_batch(batch, self.config.payload_schema), len(batch.readings), False)
        self.submitted += 1

    def _stage(self, topic: str, payload: bytes, items: int, retain: bool) -> None:
        if self._flush_error is not None:  # the spool failed: the caller (the collector) stops
            error, self._flush_error = self._flush_error, None
            raise error
        self._staged.append((topic, payload, items, retain))
        if self._flush_at is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no event loop (a script, a test): commit at once
                self.flush()
                return
            self._flush_at = loop.call_later(SPOOL_FLUSH_S, self.flush)

    def flush(self) -> None:
        """Commit what was handed over, in one transaction, and wake the run loop. A failure (the
        disk) is logged and raised again by the next hand-over, so the collector stops as if the
        spool had failed under it."""
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        staged, self._staged = self._staged, []
        if not staged:
            return
        try:
            self.overflow.append_many(staged)  # what the disk refuses is held in memory, in order
        except Exception as exc:
            log.error("MQTT spool: %d batches could not be committed: %s", len(staged), exc)
            self._flush_error = exc
            return
        self._wake.set()

    def set_device_status(self, device_id: str, online: bool) -> None:
        """Publish (retained, through the spool so it keeps its place in the stream) a device's
        online/offline change; a repeat of the current state is ignored."""
        if self._device_online.get(device_id) is online:
            return
        self._device_online[device_id] = online
        payload = encode_device_status(self.site, device_id, online, time.time_ns())
        self._stage(status_topic(self.config.topic_root, self.site, device_id), payload, 0, True)

    async def run(self) -> None:
        root = self.config.topic_root
        gw_status = status_topic(root, self.site)
        will = aiomqtt.Will(gw_status, OFFLINE, qos=1, retain=True)
        backoff = Backoff()
        while True:
            try:
                async with make_client(
                    self.config, f"{self.config.client_id_prefix}-collect-{self.gateway_id}", will
                ) as client:
                    client.pending_calls_threshold = self.config.max_inflight + 1
                    await client.publish(gw_status, ONLINE, qos=1, retain=True)
                    reader = await self._follow_acks(client) if self.durable_ack else None
                    self.connected.set()
                    backoff.reset()
                    replay_through = self.spool.last_id if self.spool.rows else 0
                    if replay_through:
                        log.info("MQTT connected: replaying %d spooled batches", self.spool.rows)
                    try:
                        await self._forward(client, replay_through)
                    except asyncio.CancelledError:
                        # a graceful stop sends no last-will: say 'offline' ourselves
                        with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                            await asyncio.wait_for(client.publish(gw_status, OFFLINE, qos=1, retain=True), 2)
                        raise
                    finally:
                        if reader is not None:
                            reader.cancel()
                            await asyncio.gather(reader, return_exceptions=True)
            except aiomqtt.MqttError as exc:
                if self.connected.is_set():
                    log.warning("MQTT broker lost (%s): batches wait in the spool", exc)
                self.connected.clear()
                delay = backoff.next_delay()
                log.warning("MQTT publisher: %s; reconnecting in %.1f s (%d batches spooled)", exc, delay, self.backlog)
                await asyncio.sleep(delay)

    async def _forward(self, client: Client, replay_through: int) -> None:
        """Publish the spool, a window of `max_inflight` at a time, until the connection drops: from
        the head each time when the broker's PUBACK deletes, else everything past what this connection
        sent (the spool then waits for ingest's mark, `_follow_acks`)."""
        lost = connection_lost(client)
        loop = asyncio.get_running_loop()
        probed_at = -PROBE_INTERVAL_S
        sent = 0  # durable ack: the last entry sent on this connection (0: start at the head)
        self._acked_at = loop.time()
        if self._first_wait_for:
            await _first_of(asyncio.gather(*(e.wait() for e in self._first_wait_for)), lost)
            self._first_wait_for.clear()
        while True:
            if self.config.wait_for_ingest and loop.time() - probed_at >= PROBE_INTERVAL_S:
                await self._until_ingest_subscribed(client, lost)
                probed_at = loop.time()
            if self._resend:
                self._resend, sent = False, 0
            entries = self.spool.peek(self.config.max_inflight, after=sent)
            if not entries:
                self._wake.clear()
                await _first_of(self._wake.wait(), lost)
                continue
            if self.durable_ack:
                await self._publish_tagged(client, entries, sent)  # raises MqttError when `lost`
                sent = entries[-1].id
            else:
                await self._publish(client, entries)
                if not self.overflow.remove_through(entries[-1].id):
                    sent = entries[-1].id  # a full disk kept them: pruned with a later window, not sent again
            for entry in entries:
                if entry.retain:
                    self.status_published += 1
                else:
                    self.published += 1
            if entries[0].id <= replay_through:
                replayed = sum(1 for e in entries if e.id <= replay_through)
                self.replayed += replayed
                if entries[-1].id >= replay_through:
                    log.info("MQTT replay done (%d batches replayed so far)", self.replayed)
            async with self._progress:
                self._progress.notify_all()

    async def _until_ingest_subscribed(self, client: aiomqtt.Client, lost: asyncio.Future[None]) -> None:
        """Hold the spool while no ingest worker is subscribed: a broker restarted from its persistence
        file (Mosquitto 2.0) drops messages for shared subscriptions until their workers reconnect."""
        probe = ingest_probe_topic(self.config.topic_root, self.site)
        backoff = Backoff(first=0.2, limit=5.0)
        loop = asyncio.get_running_loop()
        since = loop.time()
        refused = 0
        warned = False
        while not await _first_of(has_subscribers(client, probe), lost):
            self.ingest_absent += 1
            refused += 1
            waited = loop.time() - since
            if refused == 1 or (waited >= INGEST_WAIT_WARNING_S and not warned):
                warned = waited >= INGEST_WAIT_WARNING_S
                log.log(
                    logging.WARNING if warned else logging.INFO,
                    "no ingest worker subscribed on the broker for %.0f s: holding %d spooled batches",
                    waited,
                    self.backlog,
                )
            await _first_of(asyncio.sleep(backoff.next_delay()), lost)
        if refused:
            log.info("an ingest worker is subscribed: forwarding %d spooled batches", self.backlog)

    @staticmethod
    async def _publish(client: Client, entries: list[SpoolEntry]) -> None:
        # paho sends them in this order; all must be acknowledged before the spool forgets them
        await client.publish_many([(e.topic, e.payload, e.retain, None) for e in entries])

    async def _publish_tagged(self, client: Client, entries: list[SpoolEntry], prev: int) -> None:
        """Publish with delivery tags (gateway/delivery.py): each entry names the one sent before it."""
        stream, epoch = self.stream, self.spool.epoch
        messages = []
        for e in entries:
            messages.append((e.topic, e.payload, e.retain, tag_properties(stream, epoch, e.id, prev)))
            prev = e.id
        await client.publish_many(messages)

    async def _follow_acks(self, client: aiomqtt.Client) -> asyncio.Task[None] | None:
        """Subscribe to ingest's durable mark for this collector (retained: the last one comes at once)
        and prune the spool as it moves; a broker whose ACL refuses it makes the PUBACK delete again."""
        topic = ingest_ack_topic(self.config.topic_root, self.site, self.stream)
        granted = await client.subscribe(topic, qos=1)
        if any(getattr(code, "is_failure", False) for code in granted):
            self.durable_ack = False
            log.error(
                "the broker refused the subscription to %s (%s): batches are deleted on the broker's PUBACK, "
                "and a broker crash can lose readings; install deploy/mosquitto/acl",
                topic,
                granted,
            )
            return None

        async def read() -> None:
            with contextlib.suppress(aiomqtt.MqttError):  # the connection dropped: the run loop reconnects
                async for message in client.messages:
                    if message.topic.value == topic and isinstance(message.payload, bytes):
                        await self._on_ack(message.payload)

        return asyncio.create_task(read(), name="mqtt-ingest-acks")

    async def _on_ack(self, payload: bytes) -> None:
        try:
            epoch, mark, waiting = decode_ingest_ack(payload)
        except PayloadError as exc:
            log.warning("ingest acknowledgement ignored: %s", exc)
            return
        if epoch != self.spool.epoch:
            return  # another spool file's (this collector was reinstalled)
        now = asyncio.get_running_loop().time()
        if mark <= self.acked:
            if waiting and mark == self.acked and now - self._acked_at >= RESEND_AFTER_HOLE_S:
                # ingest holds later batches but misses one after the mark: the broker dropped it
                self._acked_at, self._resend = now, True
                self.hole_resends += 1
                self._wake.set()
                log.warning("ingest misses a batch after its durable mark %d: sending the spool again from it", mark)
            return
        self.acked = mark
        self.acks += 1
        self._acked_at = now
        self.overflow.remove_through(mark)  # a full disk refuses it: the next mark prunes past it
        async with self._progress:
            self._progress.notify_all()

    async def drain(self) -> None:
        """Wait until every batch submitted so far has been acknowledged (or dropped by a full spool)."""
        self.flush()
        if not self.overflow.flush():
            log.error("%d batches are held in memory: the spool's disk refuses them", len(self.overflow.held))
        target = self.spool.last_id
        async with self._progress:
            await self._progress.wait_for(lambda: (self.spool.head_id() or target + 1) > target)

    def close(self) -> None:
        self.flush()
        self.spool.close()


async def _first_of(work: Awaitable[T], lost: asyncio.Future[None]) -> T:
    """Run `work` unless the connection drops first; then raise MqttError."""
    task = asyncio.ensure_future(work)
    try:
        await asyncio.wait({task, lost}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task
    if task.done() and not task.cancelled():
        return task.result()  # or re-raises the work's error
    cause = lost.exception() if lost.done() else None
    raise aiomqtt.MqttError(f"connection lost: {cause}") from cause


async def follow_telemetry(
    config: MqttConfig,
    site: str,
    identifier: str,
    on_batch: Callable[[ScanBatch], None],
    subscribed: asyncio.Event | None = None,
    qos: int = 0,
    rejections: Rejections | None = None,
    on_session: Callable[[bool], None] | None = None,
) -> None:
    """Hand every decodable telemetry batch of `site` to `on_batch`, reconnecting with backoff.
    A plain (non-shared) subscription: each follower (live cache, energy books) sees every scan.
    `subscribed` is set while connected and cleared while the broker is away. A message that is
    too large, malformed, of another schema, or that `on_batch` refuses (PayloadError) or fails on
    is counted in `rejections` and the stream goes on. `on_session`: see `follow`."""

    def on_message(topic: str, payload: bytes) -> None:
        on_batch(decode_batch(payload))

    topic_filter = telemetry_filter(config.topic_root, site)
    await follow(config, identifier, topic_filter, on_message, subscribed, qos, rejections, on_session)


async def follow(
    config: MqttConfig,
    identifier: str,
    topic_filter: str,
    on_message: Callable[[str, bytes], None],
    subscribed: asyncio.Event | None = None,
    qos: int = 0,
    rejections: Rejections | None = None,
    on_session: Callable[[bool], None] | None = None,
) -> None:
    """Hand every message on `topic_filter` to `on_message(topic, payload)`, reconnecting with
    backoff (see follow_telemetry): an oversized message or one `on_message` refuses (PayloadError)
    or fails on is counted in `rejections` and the stream goes on.

    `on_session(resumed)` is called on each connection, before any of its messages is handed on:
    `resumed` is the CONNACK's session-present flag. False (the first session, a broker restarted
    without its persistence file, an expired session) means nothing published while this follower
    was away was queued for it."""
    rejections = rejections if rejections is not None else Rejections(identifier)
    backoff = Backoff()
    while True:
        try:
            async with make_client(config, identifier) as client:
                if on_session is not None:
                    # a resumed session's queued messages may arrive before the SUBACK; they wait in
                    # aiomqtt's queue until the loop below, so this is ordered before all of them
                    on_session(client.session_present)
                await client.subscribe(topic_filter, qos=qos)
                if subscribed is not None:
                    subscribed.set()
                backoff.reset()
                async for message in client.messages:
                    payload = message.payload
                    try:
                        if not isinstance(payload, bytes):
                            raise PayloadError(f"not bytes: {type(payload).__name__}")
                        check_size(payload, config.max_message_bytes)
                        on_message(message.topic.value, payload)
                    except PayloadError as exc:
                        rejections.add(message.topic.value, str(exc))
                    except Exception as exc:  # a message must never stop the follower
                        rejections.add(message.topic.value, f"unexpected: {type(exc).__name__}: {exc}")
                        log.debug("%s: message on %s failed", identifier, message.topic, exc_info=True)
        except aiomqtt.MqttError as exc:
            if subscribed is not None:
                subscribed.clear()
            delay = backoff.next_delay()
            log.warning("%s: MQTT %s; reconnecting in %.1f s", identifier, exc, delay)
            await asyncio.sleep(delay)

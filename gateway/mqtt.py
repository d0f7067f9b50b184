"""MQTT connections (aiomqtt over paho-mqtt, MQTT v5) and the publisher the collector feeds."""

from __future__ import annotations

import asyncio
import logging
import random

import aiomqtt

from ferrogate.gateway.config import MqttConfig
from ferrogate.gateway.payload import encode_batch, status_topic, telemetry_topic
from ferrogate.gateway.reading import ScanBatch

log = logging.getLogger(__name__)

ONLINE = b"online"
OFFLINE = b"offline"


def make_client(config: MqttConfig, identifier: str, will: aiomqtt.Will | None = None) -> aiomqtt.Client:
    """An MQTT v5 client; must be created inside the running event loop (aiomqtt's rule)."""
    return aiomqtt.Client(
        config.host,
        config.port,
        username=config.username,
        password=config.resolve_password(),
        identifier=identifier,
        protocol=aiomqtt.ProtocolVersion.V5,
        will=will,
        keepalive=config.keepalive_s,
        timeout=10,
    )


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


class MqttPublisher:
    """Publishes scan batches with QoS 1 in order; a batch leaves the queue only after PUBACK.

    The gateway's retained status topic carries 'online' while connected and 'offline' by
    last-will when the connection dies.
    """

    def __init__(self, config: MqttConfig, site: str, gateway_id: str, queue_size: int = 10_000) -> None:
        self.config = config
        self.site = site
        self.gateway_id = gateway_id
        self.queue: asyncio.Queue[ScanBatch] = asyncio.Queue(queue_size)
        self.submitted = 0
        self.published = 0
        self.dropped = 0
        self.connected = asyncio.Event()
        self._progress = asyncio.Condition()

    def submit(self, batch: ScanBatch) -> None:
        """Hand over a batch without waiting; when the queue is full the oldest batch is dropped
        and counted (the disk spool of a later issue removes this loss)."""
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
            log.warning("MQTT queue full: dropped oldest batch (%d dropped so far)", self.dropped)
        self.queue.put_nowait(batch)
        self.submitted += 1

    async def run(self) -> None:
        root = self.config.topic_root
        gw_status = status_topic(root, self.site)
        will = aiomqtt.Will(gw_status, OFFLINE, qos=1, retain=True)
        backoff = Backoff()
        pending: ScanBatch | None = None
        while True:
            try:
                async with make_client(
                    self.config, f"{self.config.client_id_prefix}-collect-{self.gateway_id}", will
                ) as client:
                    await client.publish(gw_status, ONLINE, qos=1, retain=True)
                    self.connected.set()
                    backoff.reset()
                    while True:
                        if pending is None:
                            pending = await self.queue.get()
                        await client.publish(
                            telemetry_topic(root, pending.site, pending.device), encode_batch(pending), qos=1
                        )
                        self.published += 1
                        pending = None
                        async with self._progress:
                            self._progress.notify_all()
            except aiomqtt.MqttError as exc:
                self.connected.clear()
                delay = backoff.next_delay()
                log.warning("MQTT publisher: %s; reconnecting in %.1f s", exc, delay)
                await asyncio.sleep(delay)

    async def drain(self) -> None:
        """Wait until every batch submitted so far has been acknowledged (or counted as dropped)."""
        target = self.submitted
        async with self._progress:
            await self._progress.wait_for(lambda: self.published + self.dropped >= target)

"""Ingest: telemetry from MQTT (v5 shared subscription) into InfluxDB as line protocol, in batches."""

from __future__ import annotations

import asyncio
import logging

import aiomqtt

from ferrogate.gateway.config import InfluxConfig, MqttConfig
from ferrogate.gateway.influx import InfluxError, InfluxV1Client
from ferrogate.gateway.lineprotocol import batch_lines
from ferrogate.gateway.mqtt import Backoff, make_client
from ferrogate.gateway.payload import PayloadError, decode_batch, telemetry_filter

log = logging.getLogger(__name__)

SHARE_GROUP = "ferrogate-ingest"


class InfluxWriter:
    """Buffers lines and writes them in batches of `batch_size` or every `flush_interval_s`."""

    def __init__(self, config: InfluxConfig, client: InfluxV1Client) -> None:
        self.config = config
        self.client = client
        self.buffer: list[str] = []
        self.written_lines = 0
        self.failed_batches = 0
        self._wake = asyncio.Event()
        self._flushed = asyncio.Condition()

    def add(self, lines: list[str]) -> None:
        self.buffer.extend(lines)
        if len(self.buffer) >= self.config.batch_size:
            self._wake.set()

    async def run(self) -> None:
        backoff = Backoff(first=0.5, limit=30.0)
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.config.flush_interval_s)
            except TimeoutError:
                pass
            self._wake.clear()
            while self.buffer:
                chunk = self.buffer[: self.config.batch_size]
                try:
                    await self.client.write(chunk)
                except InfluxError as exc:
                    if exc.retryable:
                        delay = backoff.next_delay()
                        log.warning("InfluxDB write failed (%s); retrying in %.1f s", exc, delay)
                        await asyncio.sleep(delay)
                        continue
                    # not retryable: keep the reason and the lines visible, then move on
                    self.failed_batches += 1
                    log.error("InfluxDB rejected %d lines: %s; first line: %s", len(chunk), exc, chunk[0])
                backoff.reset()
                del self.buffer[: len(chunk)]
                self.written_lines += len(chunk)
            async with self._flushed:
                self._flushed.notify_all()

    async def flush(self) -> None:
        """Wait until everything added so far has been written (or rejected)."""
        self._wake.set()
        async with self._flushed:
            await self._flushed.wait_for(lambda: not self.buffer)


class IngestWorker:
    def __init__(self, mqtt: MqttConfig, influx: InfluxConfig, site: str, worker_id: str = "1") -> None:
        self.mqtt = mqtt
        self.influx_client = InfluxV1Client(influx)
        self.writer = InfluxWriter(influx, self.influx_client)
        self.site = site
        self.worker_id = worker_id
        self.messages = 0
        self.rejected = 0
        self.subscribed = asyncio.Event()
        self.database_ready = asyncio.Event()

    def handle(self, payload: bytes, topic: str) -> None:
        try:
            batch = decode_batch(payload)
        except PayloadError as exc:
            self.rejected += 1
            log.warning("rejected message on %s: %s", topic, exc)
            return
        self.messages += 1
        self.writer.add(batch_lines(batch))

    async def _ensure_database(self) -> None:
        backoff = Backoff(first=0.5, limit=30.0)
        while True:
            try:
                await self.influx_client.ensure_database()
            except InfluxError as exc:
                if not exc.retryable:
                    raise
                delay = backoff.next_delay()
                log.warning("InfluxDB not ready (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
            else:
                self.database_ready.set()
                return

    async def run(self) -> None:
        await self._ensure_database()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.writer.run(), name="influx-writer")
            tg.create_task(self._consume(), name="mqtt-ingest")

    async def _consume(self) -> None:
        topic = f"$share/{SHARE_GROUP}/{telemetry_filter(self.mqtt.topic_root, self.site)}"
        backoff = Backoff()
        while True:
            try:
                async with make_client(self.mqtt, f"{self.mqtt.client_id_prefix}-ingest-{self.worker_id}") as client:
                    await client.subscribe(topic, qos=1)
                    self.subscribed.set()
                    backoff.reset()
                    async for message in client.messages:
                        self.handle(message.payload, str(message.topic))
            except aiomqtt.MqttError as exc:
                self.subscribed.clear()
                delay = backoff.next_delay()
                log.warning("ingest MQTT: %s; reconnecting in %.1f s", exc, delay)
                await asyncio.sleep(delay)

    async def aclose(self) -> None:
        await self.influx_client.aclose()

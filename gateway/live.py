"""Last value of every point, fed from the telemetry stream; what the API's live views read."""

from __future__ import annotations

import asyncio
import logging

import aiomqtt

from ferrogate.gateway.config import MqttConfig
from ferrogate.gateway.mqtt import Backoff, make_client
from ferrogate.gateway.payload import PayloadError, decode_batch, telemetry_filter
from ferrogate.gateway.reading import Reading, ScanBatch

log = logging.getLogger(__name__)


class LiveCache:
    """(device, point) -> (latest reading, gateway time of the scan that brought it)."""

    def __init__(self) -> None:
        self.latest: dict[tuple[str, str], tuple[Reading, int]] = {}
        self.batches = 0

    def update(self, batch: ScanBatch) -> None:
        self.batches += 1
        latest = self.latest
        for r in batch.readings:
            key = (batch.device, r.point)
            old = latest.get(key)
            # replayed or re-delivered older data must not overwrite a newer value
            if old is None or r.source_time_ns >= old[0].source_time_ns:
                latest[key] = (r, batch.gateway_time_ns)

    def get(self, device: str, point: str) -> tuple[Reading, int] | None:
        return self.latest.get((device, point))


async def follow_telemetry(
    cache: LiveCache, config: MqttConfig, site: str, identifier: str, subscribed: asyncio.Event | None = None
) -> None:
    """Keep `cache` current from MQTT (a plain, non-shared subscription: every API sees everything)."""
    backoff = Backoff()
    while True:
        try:
            async with make_client(config, identifier) as client:
                await client.subscribe(telemetry_filter(config.topic_root, site), qos=0)
                if subscribed is not None:
                    subscribed.set()
                backoff.reset()
                async for message in client.messages:
                    try:
                        cache.update(decode_batch(message.payload))
                    except PayloadError as exc:
                        log.debug("live cache ignored a message on %s: %s", message.topic, exc)
        except aiomqtt.MqttError as exc:
            delay = backoff.next_delay()
            log.warning("live cache MQTT: %s; reconnecting in %.1f s", exc, delay)
            await asyncio.sleep(delay)

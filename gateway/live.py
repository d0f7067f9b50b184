"""Last value of every point, fed from the telemetry stream; what the API's live views read."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ferrogate.gateway.payload import PayloadError
from ferrogate.gateway.reading import Quality, Reading, ScanBatch

log = logging.getLogger(__name__)


class Subscription:
    """A live-stream client's bounded queue: when it is full the oldest batch is dropped and
    counted, so a slow client loses updates but never holds up the gateway."""

    def __init__(self, maxsize: int) -> None:
        self.queue: asyncio.Queue[ScanBatch] = asyncio.Queue(maxsize)
        self.skipped = 0

    def offer(self, batch: ScanBatch) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.skipped += 1
        self.queue.put_nowait(batch)


class LiveCache:
    """(device, point) -> (latest reading, gateway time of the scan that brought it).

    With `known` (device -> its point ids, from the plant file) a batch of another device is
    refused and points the plant does not have are not kept: what a stranger publishes cannot make
    the cache grow."""

    def __init__(self, known: dict[str, frozenset[str]] | None = None) -> None:
        self.known = known
        self.latest: dict[tuple[str, str], tuple[Reading, int]] = {}
        self.batches = 0
        self.subscriptions: set[Subscription] = set()
        # device -> (gateway time of its last scan, whether that scan had any good reading)
        self.devices: dict[str, tuple[int, bool]] = {}
        # called with every batch (e.g. the alarm evaluator); must be quick and must not raise
        self.listeners: list[Callable[[ScanBatch], None]] = []

    def subscribe(self, maxsize: int) -> Subscription:
        subscription = Subscription(maxsize)
        self.subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self.subscriptions.discard(subscription)

    def update(self, batch: ScanBatch) -> None:
        points = None
        if self.known is not None:
            points = self.known.get(batch.device)
            if points is None:
                raise PayloadError(f"device {batch.device!r} is not in the plant file")
        self.batches += 1
        for subscription in self.subscriptions:
            subscription.offer(batch)
        for listener in self.listeners:
            listener(batch)
        good = False
        latest = self.latest
        for r in batch.readings:
            if points is not None and r.point not in points:
                continue
            key = (batch.device, r.point)
            old = latest.get(key)
            # replayed or re-delivered older data must not overwrite a newer value. Newer is a later
            # scan (gateway clock) or a later source time (device clock): a reading the gateway made up
            # for a silent device carries the gateway's clock, the device's own readings its clock,
            # and a device clock ahead of (or behind) the gateway's must not hide one from the other.
            if old is None or batch.gateway_time_ns >= old[1] or r.source_time_ns >= old[0].source_time_ns:
                latest[key] = (r, batch.gateway_time_ns)
            good = good or r.quality is Quality.GOOD
        seen = self.devices.get(batch.device)
        if seen is None or batch.gateway_time_ns >= seen[0]:
            self.devices[batch.device] = (batch.gateway_time_ns, good)

    def get(self, device: str, point: str) -> tuple[Reading, int] | None:
        return self.latest.get((device, point))

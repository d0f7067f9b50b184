"""The collector: one task per device, scans aligned to the device's interval, one batch per scan."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ferrogate.drivers.base import Driver, bad_readings, now_ns
from ferrogate.gateway.config import PlantConfig
from ferrogate.gateway.mqtt import Backoff
from ferrogate.gateway.reading import COMM_ERROR, Quality, ScanBatch

log = logging.getLogger(__name__)


@dataclass
class DeviceStats:
    scans: int = 0
    overruns: int = 0
    connect_failures: int = 0
    bad_readings: int = 0
    last_scan_ms: float = 0.0
    online: bool = False
    errors: dict[str, int] = field(default_factory=dict)


def make_driver(plant: PlantConfig, device_id: str) -> Driver:
    device = plant.device(device_id)
    if device.protocol == "modbus":
        from ferrogate.drivers.modbus import ModbusDriver

        return ModbusDriver(device)
    from ferrogate.drivers.opcua import OpcUaDriver

    return OpcUaDriver(device)


class DeviceScanner:
    """Scans one device forever; never raises for device trouble, publishes BAD readings instead."""

    def __init__(self, plant: PlantConfig, device_id: str, sink: Callable[[ScanBatch], None]) -> None:
        self.site = plant.site.id
        self.device = plant.device(device_id)
        self.driver = make_driver(plant, device_id)
        self.sink = sink
        self.stats = DeviceStats()
        self.seq = 0
        owners = plant.asset_of_point()
        self.assets = {p.id: owners[(device_id, p.id)] for p in self.device.points if (device_id, p.id) in owners}
        self._points = [(p.id, p.unit) for p in self.device.points]
        self._backoff = Backoff(first=self.device.scan_interval_s, limit=30.0)
        self._next_connect = 0.0

    async def _ensure_connected(self) -> bool:
        if self.stats.online:
            return True
        if time.monotonic() < self._next_connect:
            return False
        try:
            await asyncio.wait_for(self.driver.connect(), timeout=self.device.timeout_s * 2)
        except Exception as exc:  # any failure to connect is a device problem, reported as quality
            self.stats.connect_failures += 1
            self._next_connect = time.monotonic() + self._backoff.next_delay()
            self._last_error = f"{COMM_ERROR}: connect: {type(exc).__name__}: {exc}"
            return False
        self._backoff.reset()
        self.stats.online = True
        return True

    async def scan_once(self) -> ScanBatch:
        started = time.perf_counter()
        if await self._ensure_connected():
            readings = await self.driver.read()
        else:
            readings = bad_readings(self._points, self._last_error, now_ns())
        bad = 0
        for r in readings:
            if r.quality is not Quality.GOOD:
                bad += 1
                key = (r.reason or "unknown").split(":", 1)[0]
                self.stats.errors[key] = self.stats.errors.get(key, 0) + 1
        if (
            readings
            and bad == len(readings)
            and self.stats.online
            and all((r.reason or "").startswith(COMM_ERROR) for r in readings)
        ):
            self.stats.online = False  # reconnect next scan
            await self.driver.close()
        self.seq += 1
        batch = ScanBatch(self.site, self.device.id, self.seq, now_ns(), readings, self.assets)
        self.stats.scans += 1
        self.stats.bad_readings += bad
        self.stats.last_scan_ms = (time.perf_counter() - started) * 1000
        return batch

    async def run(self) -> None:
        interval = self.device.scan_interval_s
        try:
            while True:
                # align to wall-clock multiples of the interval so scans do not drift
                now = time.time()
                next_slot = math.floor(now / interval + 1) * interval
                await asyncio.sleep(next_slot - now)
                self.sink(await self.scan_once())
                if time.time() - next_slot > interval:
                    self.stats.overruns += 1
        finally:
            await self.driver.close()


class Collector:
    def __init__(self, plant: PlantConfig, sink: Callable[[ScanBatch], None]) -> None:
        self.scanners = [DeviceScanner(plant, d.id, sink) for d in plant.devices]

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for scanner in self.scanners:
                tg.create_task(scanner.run(), name=f"scan:{scanner.device.id}")

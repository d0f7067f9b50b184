"""The collector: one scanner per device, one task per scan class, one batch per scan.

- Scan classes: a device's points are grouped by scan interval (`scan_interval_s` of the point,
  else of the device); each class is read and published on its own, aligned to wall-clock
  multiples of its interval (a 1 s class scans at .000 of every second) so scans do not drift.
  A scan that runs into the next slot skips it and counts an overrun instead of piling up.
- Reconnects: a device that does not answer (comm_error or timeout on every reading) is offline;
  its scans publish BAD readings with the last reason without touching the network until the
  next attempt, which backs off exponentially with jitter up to `reconnect_max_s`. A dead device
  costs its own task nothing but sleeps and never delays the others.
- Report by exception: a point with `report_deadband` is published when its value moved more
  than the deadband or its quality changed, and every `refresh_s` anyway.
- Clock steps: slots follow the wall clock. When it steps back (NTP, an operator) a class scans at
  the next slot of the new time instead of waiting out the step; when it steps ahead the slots in
  between are skipped but not counted as overruns (only a scan that ran long overruns).
- Status: `on_status(device_id, online)` is called on every online/offline transition (and once
  at the first scan), e.g. to publish a retained MQTT status per device.
- Listening drivers: devices that push their data (HJ 212 loggers) are not scanned; a listener per
  listen address hands their messages to the same sink as batches of the same shape.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ferrogate.drivers.base import Driver, bad_readings, is_comm_failure, now_ns
from ferrogate.drivers.hj212.config import Hj212Device
from ferrogate.drivers.modbus.link import ModbusLinks
from ferrogate.gateway.cancellation import raise_if_cancelled
from ferrogate.gateway.config import PlantConfig
from ferrogate.gateway.metrics import DeviceMetrics, GatewayMetrics
from ferrogate.gateway.mqtt import Backoff
from ferrogate.gateway.reading import CLOCK_STEP, COMM_ERROR, Quality, Reading, ScanBatch
from ferrogate.gateway.timeutil import GATEWAY_CLOCK

if TYPE_CHECKING:
    from ferrogate.drivers.hj212.driver import Hj212Listener

log = logging.getLogger(__name__)
_GOOD = Quality.GOOD

StatusCallback = Callable[[str, bool], None]
# kept for callers of the slice: the per-device statistics are the device's metrics
DeviceStats = DeviceMetrics


def make_driver(
    plant: PlantConfig, device_id: str, metrics: DeviceMetrics | None = None, links: ModbusLinks | None = None
) -> Driver:
    device = plant.device(device_id)
    if isinstance(device, Hj212Device):
        raise ValueError(f"device {device_id} is HJ 212: it is listened for (Hj212Listener), not polled")
    if device.protocol == "modbus":
        from ferrogate.drivers.modbus.driver import ModbusDriver

        return ModbusDriver(device, metrics, links)
    from ferrogate.drivers.opcua.driver import OpcUaDriver

    return OpcUaDriver(device, metrics)


def first_slot(now: float, interval: float) -> int:
    """Scans happen at wall-clock multiples of the interval (slot k at k x interval), so they do
    not drift and all devices with one interval scan together; the first is the next one to come."""
    return math.floor(now / interval) + 1


def next_slot(slot: int, now: float, interval: float) -> tuple[int, int]:
    """After the scan of `slot` finished at `now`: the slot to scan next and how many slots were
    skipped because they started while the scan ran (overruns: counted, never queued)."""
    following = max(slot + 1, math.floor(now / interval) + 1)
    return following, following - slot - 1


@dataclass
class ScanClass:
    interval_s: float
    points: list[tuple[str, str]]  # (point id, unit)
    group: object  # the driver's prepared read
    next_refresh: float = 0.0  # time.monotonic() of the next full refresh (report deadband)

    @property
    def name(self) -> str:
        return f"{self.interval_s:g}s"


class DeviceScanner:
    """Scans one device forever; never raises for device trouble, publishes BAD readings instead."""

    def __init__(
        self,
        plant: PlantConfig,
        device_id: str,
        sink: Callable[[ScanBatch], None],
        *,
        metrics: DeviceMetrics | None = None,
        on_status: StatusCallback | None = None,
        links: ModbusLinks | None = None,
        wall: Callable[[], float] | None = None,
    ) -> None:
        """`wall`: the wall clock the scan slots follow (Unix seconds; default the gateway clock's
        wall clock, so a test that steps that one steps the scans too)."""
        self.site = plant.site.id
        self._wall = wall if wall is not None else _wall_s
        self.device = device = plant.device(device_id)
        self.metrics = metrics if metrics is not None else DeviceMetrics(device_id, device.protocol)
        self.stats = self.metrics
        self.driver = make_driver(plant, device_id, self.metrics, links)
        self.sink = sink
        self.on_status = on_status
        self.seq = 0
        owners = plant.asset_of_point()
        self.assets = {p.id: owners[(device_id, p.id)] for p in device.points if (device_id, p.id) in owners}
        by_interval: dict[float, list[tuple[str, str]]] = {}
        for p in device.points:
            by_interval.setdefault(p.scan_interval_s or device.scan_interval_s, []).append((p.id, p.unit))
        self.classes = [
            ScanClass(interval, pts, self.driver.group([pid for pid, _ in pts]))
            for interval, pts in sorted(by_interval.items())
        ]
        self._deadband = {p.id: p.report_deadband for p in device.points if p.report_deadband is not None}
        self._reported: dict[str, tuple[float | None, Quality]] = {}
        # connection state, shared by the scan classes
        self._connected = False
        self._connect_lock = asyncio.Lock()
        self._backoff = Backoff(first=min(1.0, device.scan_interval_s), limit=device.reconnect_max_s)
        self._next_attempt = 0.0
        self._last_error = f"{COMM_ERROR}: not connected yet"
        self._status: bool | None = None
        self._ever_online = False

    # -- connection state -------------------------------------------------------------------

    def _went_offline(self, reason: str) -> None:
        self._connected = False
        self._last_error = reason
        self._next_attempt = time.monotonic() + self._backoff.next_delay()
        self._set_status(False)

    def _set_status(self, online: bool) -> None:
        self.metrics.online = online
        if online and not self._ever_online:
            self._ever_online = True
        elif online and self._status is False:
            self.metrics.reconnects += 1
        if online:
            self._backoff.reset()
        if online != self._status:
            self._status = online
            log.info("device %s is %s", self.device.id, "online" if online else f"offline ({self._last_error})")
            if self.on_status is not None:
                self.on_status(self.device.id, online)

    async def _connect(self) -> bool:
        """Connect unless offline and the backoff says wait; True when reads may go ahead."""
        if self._connected:
            return True
        async with self._connect_lock:  # another scan class may be connecting right now
            if self._connected:
                return True
            if time.monotonic() < self._next_attempt:
                return False
            try:
                # connect may take a security handshake and a few requests: a few timeouts' worth
                async with asyncio.timeout(self.device.timeout_s * 3):
                    await self.driver.connect()
            except Exception as exc:  # any failure to connect is a device problem, reported as quality
                self.metrics.connect_failures += 1
                self._went_offline(f"{COMM_ERROR}: connect: {type(exc).__name__}: {exc}")
                return False
            self._connected = True
            return True

    # -- scanning ---------------------------------------------------------------------------

    async def scan_once(self, scan_class: ScanClass | None = None) -> ScanBatch:
        """Read one scan class (the first when None) and build its batch."""
        cls = scan_class or self.classes[0]
        started = time.perf_counter()
        m = self.metrics
        stamped_from = now_ns()  # readings the gateway stamps in this scan lie from here to the batch time
        if await self._connect():
            readings = await self.driver.read(cls.group)
        else:
            readings = bad_readings(cls.points, self._last_error, now_ns())
        comm = 0
        # usually none; `_GOOD`, not `Quality.GOOD`: an enum attribute looked up per reading cost 6x
        not_good = [r for r in readings if r.quality is not _GOOD]
        for r in not_good:
            m.count_error(r.reason)
            if is_comm_failure(r.reason):
                comm += 1
        bad = len(not_good)
        if readings and comm == len(readings):
            if self._connected:
                self._went_offline(readings[0].reason or COMM_ERROR)
            elif self._status is None:
                self._set_status(False)
        elif self._connected:
            self._set_status(True)
        m.bad_readings += bad
        if self._deadband:
            readings = self._report_by_exception(cls, readings)
        self.seq += 1
        batch = ScanBatch(self.site, self.device.id, self.seq, now_ns(), readings, self.assets)
        if GATEWAY_CLOCK.stepped_ns:  # the wall clock is off the gateway's stamps: say so on each one
            flag_clock_step(readings, stamped_from, batch.gateway_time_ns, GATEWAY_CLOCK.stepped_ns)
        m.scans += 1
        m.readings += len(readings)
        m.scan_latency.observe(time.perf_counter() - started)
        return batch

    def _report_by_exception(self, cls: ScanClass, readings: list[Reading]) -> list[Reading]:
        now = time.monotonic()
        refresh = now >= cls.next_refresh
        if refresh:
            cls.next_refresh = now + self.device.refresh_s
        deadband, reported = self._deadband, self._reported
        out: list[Reading] = []
        for r in readings:
            band = deadband.get(r.point)
            if band is not None and not refresh:
                last = reported.get(r.point)
                if (
                    last is not None
                    and last[1] is r.quality
                    and (r.value is None or (last[0] is not None and abs(r.value - last[0]) <= band))
                ):
                    self.metrics.suppressed += 1
                    continue
            if band is not None:
                reported[r.point] = (r.value, r.quality)
            out.append(r)
        return out

    async def run_class(self, cls: ScanClass) -> None:
        interval, wall = cls.interval_s, self._wall
        slot = first_slot(wall(), interval)
        while True:
            wait = slot * interval - wall()
            if wait > interval:  # the wall clock stepped back: do not wait out the step
                log.warning("%s: the wall clock stepped back %.1f s; scans follow it", self.device.id, wait - interval)
                slot = first_slot(wall(), interval)
                wait = slot * interval - wall()
            slept_from = time.monotonic()
            await asyncio.sleep(max(0.0, wait))
            started = time.monotonic()
            late = started - slept_from - max(0.0, wait) + min(max(0.0, -wait), interval)  # behind the slot
            batch = await self.scan_once(cls)
            if batch.readings:  # an all-suppressed scan (report by exception) has nothing to say
                self.sink(batch)
            # a driver's wait_for may have swallowed a cancellation that came with the answer (3.11);
            # raise it only now: the device served this scan, so its readings go out first
            raise_if_cancelled()
            slot, skipped = next_slot(slot, wall(), interval)
            # slots the scan itself ran into (measured on the monotonic clock), not those a forward
            # step of the wall clock jumped over
            self.metrics.overruns += min(skipped, math.floor((late + time.monotonic() - started) / interval))

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                for cls in self.classes:
                    tg.create_task(self.run_class(cls), name=f"scan:{self.device.id}:{cls.name}")
        finally:
            await self.driver.close()


def _wall_s() -> float:
    return GATEWAY_CLOCK.wall() / 1e9


def flag_clock_step(readings: list[Reading], first_ns: int, last_ns: int, stepped_ns: int) -> int:
    """Flag the readings stamped by the gateway (their time in [first_ns, last_ns], this scan's span of
    gateway stamps) while its wall clock had stepped: a value is Uncertain, a bad reading keeps its
    reason first (offline detection reads it); each says `clock_step` and by how much. Device-stamped
    readings are left alone. Returns how many were flagged."""
    note = f"{CLOCK_STEP}: the gateway's wall clock is {stepped_ns / 1e9:+.1f} s off its stamps"
    flagged = 0
    for r in readings:
        if first_ns <= r.source_time_ns <= last_ns:
            if r.quality is Quality.GOOD:
                r.quality, r.reason = Quality.UNCERTAIN, note
            else:
                r.reason = f"{r.reason}; {note}" if r.reason else note
            flagged += 1
    return flagged


class Collector:
    def __init__(
        self,
        plant: PlantConfig,
        sink: Callable[[ScanBatch], None],
        on_status: StatusCallback | None = None,
        metrics: GatewayMetrics | None = None,
        on_listen_moved: Callable[[list[str], int], None] | None = None,
    ) -> None:
        """`on_listen_moved`: where HJ 212 listen ports were chosen free (tests), a taken one moves
        and this is told (Hj212Listener)."""
        self.metrics = metrics if metrics is not None else GatewayMetrics()
        links = ModbusLinks()  # units behind one host:port share its connections
        self.scanners = [
            DeviceScanner(
                plant,
                d.id,
                sink,
                metrics=self.metrics.device(d.id, d.protocol),
                on_status=on_status,
                links=links,
            )
            for d in plant.devices
            if not isinstance(d, Hj212Device)
        ]
        listened = [d for d in plant.devices if isinstance(d, Hj212Device)]
        self.listeners: list[Hj212Listener] = []
        if not listened:
            return
        # the HJ 212 receiver (codec, server, listener) only in a process that listens: about 1 MiB
        from ferrogate.drivers.hj212.driver import Hj212Listener, listen_groups

        owners = plant.asset_of_point()
        self.listeners = [
            Hj212Listener(
                group,
                plant.site.id,
                plant.site.timezone,
                sink,
                assets=owners,
                metrics={d.id: self.metrics.device(d.id, d.protocol) for d in group},
                on_status=on_status,
                on_moved=on_listen_moved,
            )
            for group in listen_groups(listened).values()
        ]

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for listener in self.listeners:
                tg.create_task(listener.run(), name=f"listen:hj212:{listener.port}")
            for scanner in self.scanners:
                tg.create_task(scanner.run(), name=f"scan:{scanner.device.id}")

"""The listening driver: the HJ 212 devices of one listen address, served by one `Hj212Server`,
their uploads turned into the same `ScanBatch`es the polling drivers make (one per message, source
time `DataTime`), so everything after the collector is unaware of how a reading arrived.

A device's online state follows its connections (online while one of them has delivered its data
and is open). A password that cannot be read (variable unset, file missing) does not stop the
gateway: that logger's frames are refused as `bad_password`, counted and logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from zoneinfo import ZoneInfo

from ferrogate.drivers.hj212.config import Hj212Device
from ferrogate.drivers.hj212.protocol.message import Message
from ferrogate.drivers.hj212.readings import PointBinding, PointMap
from ferrogate.drivers.hj212.receiver import LoggerAccount
from ferrogate.drivers.hj212.server import Hj212Server, ServerLimits
from ferrogate.gateway.metrics import DeviceMetrics
from ferrogate.gateway.ports import address_in_use
from ferrogate.gateway.reading import Quality, ScanBatch

log = logging.getLogger(__name__)


def point_map(device: Hj212Device) -> PointMap:
    return PointMap(PointBinding(p.id, p.cn, p.factor, p.suffix, p.unit, p.scale, p.offset) for p in device.points)


def account(device: Hj212Device, site_zone: str) -> LoggerAccount:
    try:
        password = device.resolve_password()
    except (LookupError, OSError) as exc:
        log.error("HJ 212 device %s: cannot read its password (%s); its frames will be refused", device.id, exc)
        password = None
    return LoggerAccount(device.mn, password, device.id, ZoneInfo(device.timezone or site_zone))


def listen_groups(devices: Sequence[Hj212Device]) -> dict[tuple[str, int], list[Hj212Device]]:
    """Devices by the address they are listened for on: one server each."""
    groups: dict[tuple[str, int], list[Hj212Device]] = {}
    for d in devices:
        groups.setdefault((d.listen_host, d.listen_port), []).append(d)
    return groups


class Hj212Listener:
    def __init__(
        self,
        devices: Sequence[Hj212Device],
        site: str,
        site_zone: str,
        sink: Callable[[ScanBatch], None],
        *,
        assets: Mapping[tuple[str, str], str] | None = None,
        metrics: Mapping[str, DeviceMetrics] | None = None,
        on_status: Callable[[str, bool], None] | None = None,
        on_moved: Callable[[list[str], int], None] | None = None,
    ) -> None:
        self.site = site
        self.sink = sink
        self.on_status = on_status
        # given where the listen port was chosen free beforehand (tests, the demo on free ports): a port
        # another process took before the bind is replaced by one the kernel picks, and on_moved(device
        # ids, port) tells whoever connects; None (a configured port): a taken port fails the start
        self.on_moved = on_moved
        self.host, self.port = devices[0].listen_host, devices[0].listen_port
        self.points = {d.id: point_map(d) for d in devices}
        owners = assets or {}
        self.assets = {d.id: {p.id: owners[(d.id, p.id)] for p in d.points if (d.id, p.id) in owners} for d in devices}
        self.metrics = {d.id: (metrics or {}).get(d.id) or DeviceMetrics(d.id, "hj212") for d in devices}
        self.seq = dict.fromkeys(self.points, 0)
        limits = ServerLimits(
            idle_timeout_s=max(d.idle_timeout_s for d in devices),
            max_segment=max(d.max_segment for d in devices),
        )
        accounts = {d.mn: account(d, site_zone) for d in devices}
        self.server = Hj212Server(accounts, self._deliver, limits, self._status)

    def _deliver(self, logger: LoggerAccount, message: Message) -> None:
        started = time.perf_counter()
        device = logger.device
        readings = self.points[device].readings(message)
        m = self.metrics[device]
        m.scans += 1
        m.requests += 1
        if not readings:
            return  # a message with nothing configured (a reply, a heartbeat, another command)
        self.seq[device] += 1
        bad = 0
        for r in readings:
            if r.quality is not Quality.GOOD:
                bad += 1
                m.count_error(r.reason)
        m.bad_readings += bad
        m.readings += len(readings)
        self.sink(ScanBatch(self.site, device, self.seq[device], time.time_ns(), readings, self.assets[device]))
        m.scan_latency.observe(time.perf_counter() - started)

    def _status(self, device: str, online: bool) -> None:
        m = self.metrics[device]
        if online and m.scans and not m.online:
            m.reconnects += 1
        m.online = online
        log.info("HJ 212 device %s is %s", device, "online" if online else "offline")
        if self.on_status is not None:
            self.on_status(device, online)

    async def start(self) -> None:
        try:
            await self.server.start(self.host, self.port)
        except OSError as exc:
            if self.on_moved is None or not address_in_use(exc):
                raise
            log.warning("HJ 212 listen port %s:%d was taken (%s); listening on a free one", self.host, self.port, exc)
            await self.server.start(self.host, 0)  # the kernel's pick, read back: nothing can take it first
            self.port = self.server.port
            self.on_moved(list(self.points), self.port)

    async def run(self) -> None:
        """Listen until cancelled."""
        await self.start()
        try:
            await self.server.serve_forever()
        finally:
            await self.server.stop()

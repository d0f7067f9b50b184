"""The `uplink` role: follows the telemetry stream (and the energy books' daily KPIs where a platform
takes computed figures), makes each HJ 212 platform's records, spools and sends them (aggregate.py,
figures.py, sender.py); and reports the energy books to the energy online-monitoring platforms
(energy_platform/). A platform whose spool has no path keeps its backlog in memory only
(lost with the process), like the other outboxes."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from ferrogate.gateway.config import MqttConfig
from ferrogate.gateway.mqtt import follow, follow_telemetry
from ferrogate.gateway.payload import PayloadError
from ferrogate.gateway.reading import ScanBatch
from ferrogate.gateway.rejections import Rejections
from ferrogate.gateway.spool import open_spool
from ferrogate.gateway.uplink.aggregate import PeriodAggregator, Record, UplinkItem
from ferrogate.gateway.uplink.config import PER_TONNE, PlatformConfig, UplinkConfig
from ferrogate.gateway.uplink.energy_platform.service import EnergyPlatform
from ferrogate.gateway.uplink.figures import DayFigures, FigureItem
from ferrogate.gateway.uplink.sender import PlatformSender, PlatformTarget

log = logging.getLogger(__name__)


class Platform:
    """One platform: its aggregator (what to send) and its sender (how it gets there)."""

    def __init__(self, config: PlatformConfig, zone: str) -> None:
        self.config = config
        tz = ZoneInfo(zone)
        target = PlatformTarget(
            config.id,
            config.host,
            config.port,
            config.mn,
            config.resolve_password() or "",
            tz,
            config.st,
            config.timeout_s,
            config.retries,
            config.retry_max_s,
        )
        spool = open_spool(config.spool, f"uplink_{config.id}")
        state = state_file(config.spool.path, config.id) if config.spool.path is not None else None
        self.sender = PlatformSender(target, spool, state)
        items = [
            UplinkItem(p.code, *p.point.split(".", 1), tuple(p.data), p.method, p.suffix)  # type: ignore[arg-type]
            for p in config.points
        ]
        made = self.sender.made_through()
        self.aggregator = PeriodAggregator(items, tz, config.close_after_s, made)
        figures = [FigureItem(f.code, f.scope, f.subject, f.field, PER_TONNE[f.unit]) for f in config.figures]
        self.figures = DayFigures(figures, made)

    def on_batch(self, batch: ScanBatch) -> None:
        self.aggregator.add(batch.device, batch.readings)
        self._spool(self.aggregator.close())

    def on_kpi(self, doc: dict) -> None:
        self._spool(self.figures.add(doc))

    def _spool(self, records: list[Record]) -> None:
        if records:
            made = {**self.aggregator.made_through, **self.figures.made_through}
            self.sender.enqueue(records, made, time.time_ns() // 1_000_000)


class UplinkService:
    def __init__(
        self,
        config: UplinkConfig,
        mqtt: MqttConfig,
        site: str,
        zone: str,
        gateway_id: str,
        energy_platforms: list[EnergyPlatform] | None = None,
    ) -> None:
        self.mqtt, self.site = mqtt, site
        self.identifier = f"{mqtt.client_id_prefix}-uplink-{gateway_id}"
        self.platforms = [Platform(p, zone) for p in config.platforms]
        self.energy_platforms = energy_platforms or []
        self.subscribed = asyncio.Event()
        self.books_subscribed = asyncio.Event()  # following the books' daily KPIs (platforms with figures)
        self.rejections = Rejections("uplink")  # messages of the stream it could not take
        self.batches = 0  # telemetry batches taken

    def on_batch(self, batch: ScanBatch) -> None:
        self.batches += 1
        for platform in self.platforms:
            platform.on_batch(batch)

    def on_kpi(self, topic: str, payload: bytes) -> None:
        try:
            doc = json.loads(payload)
        except ValueError as exc:
            raise PayloadError(f"not JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise PayloadError("not a JSON object")
        for platform in self.platforms:
            platform.on_kpi(doc)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for platform in self.platforms:
                tg.create_task(platform.sender.run(), name=f"uplink:{platform.config.id}")
            for energy in self.energy_platforms:
                tg.create_task(energy.run(), name=f"uplink:energy:{energy.config.id}")
            if self.platforms:  # the energy platforms read the books from InfluxDB, not the stream
                tg.create_task(
                    follow_telemetry(
                        self.mqtt, self.site, self.identifier, self.on_batch, self.subscribed, 1, self.rejections
                    ),
                    name="uplink:follow",
                )
            if any(p.config.figures for p in self.platforms):
                tg.create_task(
                    follow(
                        self.mqtt,
                        f"{self.identifier}-books",
                        f"{self.mqtt.topic_root}/{self.site}/energy/kpi/day/#",
                        self.on_kpi,
                        self.books_subscribed,
                        1,
                        self.rejections,
                    ),
                    name="uplink:books",
                )

    async def aclose(self) -> None:
        for platform in self.platforms:
            platform.sender.spool.close()
        for energy in self.energy_platforms:
            await energy.aclose()


def state_file(spool_path: Path, platform: str) -> Path:
    """Where a platform's `made_through` is kept, next to its spool."""
    return spool_path.with_name(f"{spool_path.name}.uplink-{platform}.json")

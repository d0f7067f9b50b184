"""Wires the roles together: collect (drivers -> MQTT), ingest (MQTT -> InfluxDB), api (live state).

All roles run in one process by default; any subset can run alone, joined only by MQTT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Coroutine, Iterator
from typing import Any

import uvicorn

from ferrogate.api.app import create_app
from ferrogate.gateway.collect import Collector
from ferrogate.gateway.config import PlantConfig
from ferrogate.gateway.ingest import IngestWorker
from ferrogate.gateway.live import LiveCache, follow_telemetry
from ferrogate.gateway.mqtt import MqttPublisher

log = logging.getLogger(__name__)

ROLES = ("collect", "ingest", "api")


class RoleConfigError(ValueError):
    pass


class EmbeddedServer(uvicorn.Server):
    """uvicorn inside our event loop: the CLI, not uvicorn, owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Gateway:
    def __init__(
        self,
        plant: PlantConfig,
        roles: tuple[str, ...] = ROLES,
        api_host: str = "127.0.0.1",
        api_port: int = 8080,
        gateway_id: str | None = None,
    ) -> None:
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise RoleConfigError(f"unknown role(s) {sorted(unknown)}; choose from {list(ROLES)}")
        if plant.mqtt is None:
            raise RoleConfigError("the plant file has no 'mqtt' section (every role needs the broker)")
        if "ingest" in roles and plant.influxdb is None:
            raise RoleConfigError("the ingest role needs an 'influxdb' section in the plant file")
        self.plant = plant
        self.roles = roles
        self.gateway_id = gateway_id or socket.gethostname()
        self.publisher: MqttPublisher | None = None
        self.collector: Collector | None = None
        self.ingest: IngestWorker | None = None
        self.live = LiveCache()
        self.live_subscribed = asyncio.Event()
        self.api_server: uvicorn.Server | None = None
        self.api_host, self.api_port = api_host, api_port
        self._tasks: list[asyncio.Task] = []

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))

    async def start(self) -> None:
        plant, mqtt = self.plant, self.plant.mqtt
        assert mqtt is not None
        if "ingest" in self.roles:
            assert plant.influxdb is not None
            self.ingest = IngestWorker(mqtt, plant.influxdb, plant.site.id, self.gateway_id)
            self._spawn(self.ingest.run(), "ingest")
        if "api" in self.roles:
            ident = f"{mqtt.client_id_prefix}-live-{self.gateway_id}"
            self._spawn(follow_telemetry(self.live, mqtt, plant.site.id, ident, self.live_subscribed), "live")
            app = create_app(plant, self.live)
            config = uvicorn.Config(app, host=self.api_host, port=self.api_port, log_level="warning", lifespan="off")
            self.api_server = EmbeddedServer(config)
            self._spawn(self.api_server.serve(), "api")
        if "collect" in self.roles:
            self.publisher = MqttPublisher(mqtt, plant.site.id, self.gateway_id)
            self.collector = Collector(plant, self.publisher.submit)
            self._spawn(self.publisher.run(), "mqtt-publisher")
            self._spawn(self.collector.run(), "collector")

    async def wait(self) -> None:
        """Return when a role stops by itself (a crash is re-raised so the service manager restarts us)."""
        done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            exc = task.exception()
            if exc is not None:
                raise RuntimeError(f"role task {task.get_name()} failed") from exc
            log.error("role task %s ended", task.get_name())

    async def stop(self) -> None:
        if self.api_server is not None:
            self.api_server.should_exit = True
        for task in self._tasks:
            if task.get_name() != "api":
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.ingest is not None:
            await self.ingest.aclose()

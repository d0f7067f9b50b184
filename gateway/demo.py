"""`ferrogate demo`: the whole stack on simulators in one process, with its own broker and
database in the data directory unless the plant file names external ones."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from ferrogate.api.keys import Role, new_key
from ferrogate.gateway.compliance.config import ComplianceConfig
from ferrogate.gateway.config import InfluxConfig, MqttConfig
from ferrogate.gateway.model_base import SpoolConfig
from ferrogate.gateway.plant_file import PlantFile
from ferrogate.gateway.runtime import Gateway
from ferrogate.gateway.services import InfluxDB, Mosquitto, start_influxdb, start_mosquitto
from ferrogate.simulators.clock import SimClock
from ferrogate.simulators.plant import SimulatedPlant

log = logging.getLogger(__name__)

DEMO_KEY_VARIABLE = "FERROGATE_DEMO_API_KEY"
# the demo plant's CEMS data loggers take their PW from here; the demo and the simulators fill in a
# common factory default when it is not set (an HJ 212 PW travels in clear in every frame anyway)
DEMO_CEMS_PASSWORD_VARIABLE = "FERROGATE_DEMO_CEMS_PASSWORD"
DEMO_CEMS_PASSWORD = "123456"


def default_demo_secrets() -> None:
    os.environ.setdefault(DEMO_CEMS_PASSWORD_VARIABLE, DEMO_CEMS_PASSWORD)


def demo_gateway_id(data_dir: Path) -> str:
    """Stable for one data directory (persistent MQTT sessions survive a restart), distinct between
    two demos on one broker (a shared client id would make the broker drop one of them)."""
    return "demo-" + hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:8]


@dataclass
class DemoOptions:
    data_dir: Path
    api_port: int = 8080  # 0: any free port, read back into this field once the API listens
    speed: float = 60.0
    history_s: float = 2 * 3600.0
    duration_s: float | None = None
    api_host: str = "127.0.0.1"
    # the plant's device ports were chosen free by the caller (tests): one taken meanwhile is moved
    move_taken_ports: bool = False


@dataclass
class Demo:
    plant: PlantFile
    options: DemoOptions
    mosquitto: Mosquitto | None = None
    influxdb: InfluxDB | None = None
    simulation: SimulatedPlant | None = None
    clock: SimClock | None = None  # the simulation's, held until the gateway scans
    gateway: Gateway | None = None
    messages: list[str] = field(default_factory=list)
    api_key: str = ""

    async def start(self) -> None:
        default_demo_secrets()
        data = self.options.data_dir
        data.mkdir(parents=True, exist_ok=True)
        plant = self.plant
        spool = SpoolConfig(path=data / "spool.sqlite")  # the demo's own broker/database: outboxes on disk
        if plant.mqtt is None:
            self.mosquitto = await asyncio.to_thread(start_mosquitto, data / "mosquitto")
            plant = plant.model_copy(update={"mqtt": MqttConfig(port=self.mosquitto.port, spool=spool)})
            self.messages.append(f"MQTT broker (Mosquitto, own): mqtt://127.0.0.1:{self.mosquitto.port}")
        if plant.influxdb is None:
            self.influxdb = await asyncio.to_thread(start_influxdb, data / "influxdb")
            plant = plant.model_copy(update={"influxdb": InfluxConfig(url=self.influxdb.url, spool=spool)})
            self.messages.append(f"InfluxDB (own): {self.influxdb.url} database 'ferrogate'")
        if plant.accounting is not None and (plant.compliance is None or plant.compliance.inputs_path is None):
            # the demo keeps its manual compliance inputs (and their audit trail) in its data directory
            section = plant.compliance or ComplianceConfig()
            plant = plant.model_copy(
                update={"compliance": section.model_copy(update={"inputs_path": data / "compliance.sqlite"})}
            )
        self.plant = plant
        # the plant's history runs once the gateway scans (`_release_history`), not while servers start
        self.clock = SimClock(self.options.speed, self.options.history_s, held=True)
        self.simulation = SimulatedPlant(
            plant,
            plant.simulation,
            truth=data / "truth.jsonl",
            clock=self.clock,
            move_taken_ports=self.options.move_taken_ports,
        )
        await self.simulation.start()
        self.plant = plant = self.simulation.bound(plant)  # the ports the simulated devices listen on
        self.messages += [f"simulator: {e}" for e in self.simulation.endpoints()]
        self.messages.append(f"simulator ground truth (heats, taps, hourly generation): {data / 'truth.jsonl'}")
        # an admin key for this run: FERROGATE_DEMO_API_KEY when set (so scripts can call the API)
        self.api_key, stored = new_key("demo-admin", Role.admin, os.environ.get(DEMO_KEY_VARIABLE) or None)
        self.gateway = Gateway(
            plant,
            api_host=self.options.api_host,
            api_port=self.options.api_port,
            gateway_id=demo_gateway_id(data),
            api_keys=[stored],
            on_listen_moved=self._listen_moved if self.options.move_taken_ports else None,
        )
        await self.gateway.start()
        self.options.api_port = self.gateway.api_port  # api_port 0: the port the API was bound to
        await self._release_history()
        self.messages.append(
            f"API: http://127.0.0.1:{self.options.api_port}/api/v1/assets "
            f"(docs: http://127.0.0.1:{self.options.api_port}/docs)"
        )
        self.messages.append(f"API key (admin, send as X-API-Key): {self.api_key}")

    async def _release_history(self, within_s: float = 60.0) -> None:
        """Start the plant's clock once every scanned device has been read once (or `within_s` has
        passed: a device that never answers must not hold the demo), so the whole history is seen."""
        assert self.gateway is not None
        collector = self.gateway.collector
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while collector is not None and loop.time() < deadline:
            if all(s.metrics.scans > 0 for s in collector.scanners):
                break
            await asyncio.sleep(0.05)
        if self.clock is not None:
            self.clock.release()

    def _listen_moved(self, devices: list[str], port: int) -> None:
        """The gateway listens for these HJ 212 devices on `port` instead: their simulated loggers
        connect there from their next attempt, and the demo's plant says so."""
        assert self.simulation is not None
        for device in devices:
            if device in self.simulation.loggers:
                self.simulation.loggers[device].port = port
        moved = [d.model_copy(update={"listen_port": port}) if d.id in devices else d for d in self.plant.devices]
        self.plant = self.plant.model_copy(update={"devices": moved})

    async def run(self) -> None:
        """Run until the duration ends, a role fails, or the task is cancelled (Ctrl-C)."""
        assert self.gateway is not None
        if self.options.duration_s is None:
            await self.gateway.wait()
        else:
            try:
                await asyncio.wait_for(self.gateway.wait(), timeout=self.options.duration_s)
            except TimeoutError:
                pass

    async def stop(self) -> None:
        if self.gateway is not None:
            if self.gateway.publisher is not None:
                try:
                    await asyncio.wait_for(self.gateway.publisher.drain(), timeout=5)
                except TimeoutError:
                    log.warning("stopping with %d batches not yet published", self.gateway.publisher.backlog)
            if self.gateway.ingest is not None:
                try:
                    await asyncio.wait_for(self.gateway.ingest.writer.flush(), timeout=5)
                except TimeoutError:
                    log.warning("stopping with %d lines not yet written", len(self.gateway.ingest.writer.buffer))
            await self.gateway.stop()
        if self.simulation is not None:
            await self.simulation.stop()
        for service in (self.mosquitto, self.influxdb):
            if service is not None:
                await asyncio.to_thread(service.process.stop)

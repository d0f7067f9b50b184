"""Wires the roles together: collect (drivers -> MQTT), ingest (MQTT -> InfluxDB), api (live state).

All roles run in one process by default; any subset can run alone, joined only by MQTT.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferrogate.gateway.alarms import AlarmBook, AlarmEvaluator
from ferrogate.gateway.collect import Collector
from ferrogate.gateway.live import LiveCache
from ferrogate.gateway.mqtt import MqttPublisher, Outbox, follow_telemetry
from ferrogate.gateway.rejections import Rejections
from ferrogate.gateway.rejections import render_prometheus as render_rejections
from ferrogate.gateway.spool_faults import SpoolState
from ferrogate.gateway.spool_faults import render_prometheus as render_spools

# A role's modules are imported when the role starts, so that a process runs only what its roles
# need: `--role collect` never loads the API (fastapi, uvicorn), the books, ingest or the uplink,
# which would be most of its memory (issue 15).
if TYPE_CHECKING:
    from ferrogate.api.config import ApiConfig
    from ferrogate.api.context import ApiContext
    from ferrogate.api.keys import StoredKey
    from ferrogate.gateway.accounting_service import AccountingService
    from ferrogate.gateway.api_server import EmbeddedServer
    from ferrogate.gateway.compliance_service import ComplianceService, ComplianceWatch
    from ferrogate.gateway.cost.demand_watch import DemandWatch
    from ferrogate.gateway.cost.model import CostModel
    from ferrogate.gateway.influx import InfluxV1Client
    from ferrogate.gateway.ingest import IngestWorker
    from ferrogate.gateway.plant_file import PlantFile
    from ferrogate.gateway.uplink.service import UplinkService

log = logging.getLogger(__name__)

ROLES = ("collect", "ingest", "api", "energy", "uplink")


class RoleConfigError(ValueError):
    pass


class RoleTasks:
    """The tasks of a process's roles (a plant gateway's or a group center's), and its API server."""

    def __init__(
        self, roles: tuple[str, ...], api: ApiConfig, api_host: str, api_port: int, gateway_id: str | None
    ) -> None:
        if "api" in roles and api.tls is not None:
            try:
                api.tls.check()
            except ValueError as exc:
                raise RoleConfigError(str(exc)) from None
        self.roles = roles
        self.api_tls = api.tls
        self.api_host, self.api_port = api_host, api_port
        self.gateway_id = gateway_id or socket.gethostname()
        self._tasks: list[asyncio.Task] = []
        self.api_server: EmbeddedServer | None = None

    def _serve_api(self, app: Any) -> None:
        """The API (an ASGI app) in this event loop, over HTTPS where `api.tls` says so."""
        import uvicorn

        from ferrogate.gateway.api_server import EmbeddedServer, listening_socket

        tls = self.api_tls
        config = uvicorn.Config(
            app,
            host=self.api_host,
            port=self.api_port,
            log_level="warning",
            lifespan="off",
            ssl_certfile=tls.cert_file if tls is not None else None,
            ssl_keyfile=tls.key_file if tls is not None else None,
        )
        self.api_server = EmbeddedServer(config)
        listener = None
        if self.api_port == 0:
            # any free port, bound here and read back: no window in which another process can
            # take a port chosen beforehand (tests, the demo); a configured port is uvicorn's to bind
            listener = listening_socket(self.api_host)
            self.api_port = listener.getsockname()[1]
        self._spawn(self.api_server.serve(sockets=[listener] if listener else None), "api")

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))

    async def wait(self) -> None:
        """Return when a role stops by itself (a crash is re-raised so the service manager restarts us)."""
        done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            exc = task.exception()
            if exc is not None:
                raise RuntimeError(f"role task {task.get_name()} failed") from exc
            log.error("role task %s ended", task.get_name())

    async def _stop_tasks(self) -> None:
        """Cancel every role; the API server is asked to finish its requests instead."""
        if self.api_server is not None:
            self.api_server.should_exit = True
        for task in self._tasks:
            if task.get_name() != "api":
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()


class Gateway(RoleTasks):
    def __init__(
        self,
        plant: PlantFile,
        roles: tuple[str, ...] = ROLES,
        api_host: str = "127.0.0.1",
        api_port: int = 8080,
        gateway_id: str | None = None,
        api_keys: list[StoredKey] | None = None,
        plant_file: Path | None = None,
        on_listen_moved: Callable[[list[str], int], None] | None = None,
    ) -> None:
        """`on_listen_moved`: for HJ 212 listen ports a harness chose free; a taken one moves and this
        is told which devices now listen on which port (the demo retargets its simulated loggers)."""
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise RoleConfigError(f"unknown role(s) {sorted(unknown)}; choose from {list(ROLES)}")
        if plant.mqtt is None:
            raise RoleConfigError("the plant file has no 'mqtt' section (every role needs the broker)")
        if "ingest" in roles and plant.influxdb is None:
            raise RoleConfigError("the ingest role needs an 'influxdb' section in the plant file")
        if "uplink" in roles and plant.uplink is not None:
            from ferrogate.gateway.uplink.energy_platform.service import check_credentials

            try:
                for platform in plant.uplink.energy_platforms:
                    check_credentials(platform)
            except ValueError as exc:
                raise RoleConfigError(str(exc)) from None
        super().__init__(roles, plant.api, api_host, api_port, gateway_id)
        self.plant = plant
        self.publisher: MqttPublisher | None = None
        self.collector: Collector | None = None
        self.ingest: IngestWorker | None = None
        self.energy: AccountingService | None = None  # the accounting engine (energy role, plant has `accounting`)
        # HJ 212 to environmental platforms, the books to energy platforms (uplink role, plant has `uplink`)
        self.uplink: UplinkService | None = None
        self.live = LiveCache({d.id: frozenset(p.id for p in d.points) for d in plant.devices})
        self.live_rejections = Rejections("live")
        self.alarms = AlarmBook(plant.alarms.history)
        self.alarm_evaluator = AlarmEvaluator(
            self.alarms,
            list(plant.alarms.limits),
            {d.id: d.scan_interval_s for d in plant.devices},
            plant.api.stale_after_scans,
        )
        # electricity cost: the tariffs, and the live demand alarm of the api role (docs/cost.md)
        self.cost: CostModel | None = None
        self.demand_watch: DemandWatch | None = None
        if plant.cost is not None:
            from ferrogate.gateway.cost.demand_watch import watch_demand
            from ferrogate.gateway.cost.model import resolve_cost

            self.cost = resolve_cost(plant, plant.cost, plant.accounting)[0]
            self.demand_watch = watch_demand(self.cost, self.alarms) if self.cost is not None else None
        self.live_subscribed = asyncio.Event()
        self.api_context: ApiContext | None = None
        self.on_listen_moved = on_listen_moved
        self._influx_probe: InfluxV1Client | None = None
        self.api_keys = api_keys or []
        self.plant_file = plant_file
        self.compliance: ComplianceService | None = None  # with the api role on a plant with accounting
        self.compliance_watch: ComplianceWatch | None = None

    async def start(self) -> None:
        plant, mqtt = self.plant, self.plant.mqtt
        assert mqtt is not None
        if "ingest" in self.roles:
            from ferrogate.gateway.ingest import IngestWorker

            assert plant.influxdb is not None
            self.ingest = IngestWorker(mqtt, plant.influxdb, plant.site.id, self.gateway_id)
            self._spawn(self.ingest.run(), "ingest")
        if "uplink" in self.roles and plant.uplink is not None:
            from ferrogate.gateway.uplink.energy_platform.service import start_energy_platforms
            from ferrogate.gateway.uplink.service import UplinkService

            energy = start_energy_platforms(plant)
            self.uplink = UplinkService(plant.uplink, mqtt, plant.site.id, plant.site.timezone, self.gateway_id, energy)
            self._spawn(self.uplink.run(), "uplink")
        if "energy" in self.roles and plant.accounting is not None:
            from ferrogate.gateway.accounting_service import start_accounting
            from ferrogate.gateway.cost_service import start_cost

            self.energy = start_accounting(plant, self.gateway_id)
            if plant.cost is not None:  # electricity cost priced on the books (docs/cost.md)
                self.energy.extensions.append(start_cost(plant, mqtt.topic_root))
            self._spawn(self.energy.run(), "energy")
        if "api" in self.roles:
            from ferrogate.api.app import create_app
            from ferrogate.gateway.alarm_journal import write_journal
            from ferrogate.gateway.compliance_service import ComplianceWatch
            from ferrogate.gateway.pollution.limits import EmissionLimitEvaluator

            ident = f"{mqtt.client_id_prefix}-live-{self.gateway_id}"
            self.live.listeners.append(lambda batch: self.alarm_evaluator.on_batch(batch, time.time_ns()))
            if plant.pollution is not None:
                emission_limits = EmissionLimitEvaluator(self.alarms, plant.pollution)
                self.live.listeners.append(lambda batch: emission_limits.on_batch(batch, time.time_ns()))
            if self.demand_watch is not None:
                watch = self.demand_watch
                self.live.listeners.append(lambda batch: watch.on_batch(batch, time.time_ns()))
            self._spawn(
                follow_telemetry(
                    mqtt, plant.site.id, ident, self.live.update, self.live_subscribed, rejections=self.live_rejections
                ),
                "live",
            )
            self._spawn(self._watch_staleness(), "stale-watch")
            self.api_context = self._api_context()
            if self._influx_probe is not None:  # the month's alarms outlive the process (the report reads them)
                self._spawn(write_journal(self.alarms, self._influx_probe, plant.site.id), "alarm-journal")
            if self.compliance is not None and self.compliance.influx is not None:
                # the grades also go up the plant's `energy/` tree (a group center stores them)
                grades_out = Outbox(mqtt, f"{mqtt.client_id_prefix}-compliance-out-{self.gateway_id}", latest_only=True)
                self.compliance_watch = ComplianceWatch(
                    self.compliance, self.alarms, time.time_ns, grades_out, mqtt.topic_root
                )
                self.compliance.listeners.append(self.compliance_watch.poke)
                self._spawn(grades_out.run(), "compliance-mqtt-out")
                self._spawn(self.compliance_watch.run(), "compliance-watch")
            self._serve_api(create_app(self.api_context))
        if "collect" in self.roles:
            followers = [self.energy.subscribed] if self.energy is not None else []
            self.publisher = MqttPublisher(mqtt, plant.site.id, self.gateway_id, first_wait_for=followers)
            self.collector = Collector(
                plant,
                self.publisher.submit,
                on_status=self.publisher.set_device_status,
                on_listen_moved=self.on_listen_moved,
            )
            self._spawn(self.publisher.run(), "mqtt-publisher")
            self._spawn(self.collector.run(), "collector")

    def _api_context(self) -> ApiContext:
        from ferrogate.api.context import ApiContext, ReadinessCheck
        from ferrogate.api.keys import KeyStore
        from ferrogate.gateway.compliance.model import build as build_compliance
        from ferrogate.gateway.compliance_inputs import InputStore
        from ferrogate.gateway.compliance_service import ComplianceService
        from ferrogate.gateway.energy.model import resolve
        from ferrogate.gateway.influx import InfluxV1Client

        keys = KeyStore.load(self.plant.api.keys_file, extra=self.api_keys)
        if not len(keys):
            log.warning("no API keys configured: every /api/v1 request will be refused (ferrogate api-key create)")
        readiness: dict[str, ReadinessCheck] = {"mqtt": self._mqtt_ready}
        if self.plant.influxdb is not None:
            self._influx_probe = InfluxV1Client(self.plant.influxdb)
            readiness["influxdb"] = self._influx_ready
        accounting = resolve(self.plant, self.plant.accounting)[0] if self.plant.accounting is not None else None
        if accounting is not None:
            compliance, problems = build_compliance(self.plant, self.plant.compliance, accounting)
            assert compliance is not None, problems  # the plant file was checked when it was loaded
            path = compliance.config.inputs_path
            self.compliance = ComplianceService(compliance, self._influx_probe, InputStore(path) if path else None)
        return ApiContext(
            self.plant,
            self.live,
            keys,
            readiness,
            self._metrics_text,
            self.alarms,
            plant_file=self.plant_file,
            extra_keys=self.api_keys,
            limits_changed=self.alarm_evaluator.set_limits,
            influx=self._influx_probe,
            accounting=accounting,
            recompute=self.energy.recompute if self.energy is not None else None,
            compliance=self.compliance,
            cost=self.cost,
            demand_forecast=self.demand_watch.snapshot if self.demand_watch is not None else None,
        )

    async def _watch_staleness(self) -> None:
        period = min(d.scan_interval_s for d in self.plant.devices)
        while True:
            await asyncio.sleep(period)
            self.alarm_evaluator.check_stale(time.time_ns())

    async def _mqtt_ready(self) -> str | None:
        return None if self.live_subscribed.is_set() else "not connected to the MQTT broker"

    async def _influx_ready(self) -> str | None:
        from ferrogate.gateway.influx import InfluxError

        assert self._influx_probe is not None
        try:
            await self._influx_probe.ping()
        except InfluxError as exc:
            return str(exc)
        return None

    def _metrics_text(self) -> str:
        parts = []
        if self.collector is not None:
            parts.append(self.collector.metrics.render_prometheus())
            from ferrogate.drivers.hj212.server import render_prometheus as render_hj212_metrics

            listeners = {f"{x.host}:{x.port}": x.server.stats for x in self.collector.listeners}
            parts.append(render_hj212_metrics(listeners))
        consumers = [self.live_rejections] if "api" in self.roles else []
        consumers += [worker.rejections for worker in (self.ingest, self.energy, self.uplink) if worker is not None]
        parts.append(render_rejections(consumers))
        parts.append(render_spools(self._spool_states()))
        if self.uplink is not None and self.uplink.energy_platforms:
            from ferrogate.gateway.uplink.energy_platform.service import render_prometheus as render_energy_platforms

            parts.append(render_energy_platforms(self.uplink.energy_platforms))
        return "".join(parts)

    def _spool_states(self) -> list[SpoolState]:
        states = []
        if self.publisher is not None:
            p = self.publisher
            states.append(SpoolState("collect", p.spool, p.overflow.faults.errors, len(p.overflow.held), p.dropped))
        if self.ingest is not None:
            w = self.ingest.writer
            errors = w.faults.errors + w.dead_letters.write_errors
            states.append(SpoolState("ingest", w.spool, errors, w.pending, w.spool.dropped))
        return states

    async def stop_collecting(self) -> int:
        """Stop scanning (the other roles go on) and wait until the broker acknowledged every batch
        collected so far; returns how many were published. For a controlled end of a run: the
        energy books, InfluxDB and the API then hold still."""
        assert self.publisher is not None, "no collect role"
        for task in [t for t in self._tasks if t.get_name() == "collector"]:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            self._tasks.remove(task)
        await self.publisher.drain()
        return self.publisher.published

    async def stop(self) -> None:
        await self._stop_tasks()
        if self.publisher is not None:
            self.publisher.close()
        if self.ingest is not None:
            await self.ingest.aclose()
        if self.energy is not None:
            await self.energy.aclose()
        if self.uplink is not None:
            await self.uplink.aclose()
        if self._influx_probe is not None:
            await self._influx_probe.aclose()
        if self.compliance is not None and self.compliance.store is not None:
            self.compliance.store.close()

"""The group center's roles: `ingest` (the plants' telemetry on the shared subscription, and their
books' derived series, into the center's database) and `api` (the group API). Run any subset per
process, e.g. two or more `ferrogate run --plant center.yaml --role ingest` and one `--role api`."""

from __future__ import annotations

import logging

from ferrogate.api.group_app import create_group_app
from ferrogate.api.group_context import GroupContext
from ferrogate.api.keys import KeyStore, StoredKey
from ferrogate.gateway.center_config import CenterFile
from ferrogate.gateway.center_ingest import DerivedIngest
from ferrogate.gateway.config import InfluxConfig
from ferrogate.gateway.influx import InfluxError, InfluxV1Client
from ferrogate.gateway.ingest import IngestWorker
from ferrogate.gateway.runtime import RoleConfigError, RoleTasks

log = logging.getLogger(__name__)

CENTER_ROLES = ("ingest", "api")


def worker_spool(influx: InfluxConfig, worker_id: str) -> InfluxConfig:
    """Several workers on one box share the center file: each spools to a file of its own
    (`center-spool.sqlite` -> `center-spool-<worker>.sqlite`), as a spool is held by one process."""
    path = influx.spool.path
    if path is None:
        return influx
    own = path.with_name(f"{path.stem}-{worker_id}{path.suffix}")
    return influx.model_copy(update={"spool": influx.spool.model_copy(update={"path": own})})


class Center(RoleTasks):
    def __init__(
        self,
        center: CenterFile,
        roles: tuple[str, ...] = CENTER_ROLES,
        api_host: str = "127.0.0.1",
        api_port: int = 8080,
        gateway_id: str | None = None,
        api_keys: list[StoredKey] | None = None,
    ) -> None:
        unknown = set(roles) - set(CENTER_ROLES)
        if unknown:
            raise RoleConfigError(f"a group center runs {list(CENTER_ROLES)}, not {sorted(unknown)}")
        super().__init__(roles, center.api, api_host, api_port, gateway_id)
        self.center = center
        self.api_keys = api_keys or []
        self.ingest: IngestWorker | None = None
        self.derived: DerivedIngest | None = None
        self.api_context: GroupContext | None = None
        self._influx: InfluxV1Client | None = None

    async def start(self) -> None:
        center = self.center
        sites = center.group.sites
        if "ingest" in self.roles:
            influx = worker_spool(center.influxdb, self.gateway_id)
            self.ingest = IngestWorker(center.mqtt, influx, sites, self.gateway_id)
            self.derived = DerivedIngest(center.mqtt, influx, sites, self.gateway_id)
            self._spawn(self.ingest.run(), "ingest")
            self._spawn(self.derived.run(), "derived-ingest")
        if "api" in self.roles:
            keys = KeyStore.load(center.api.keys_file, extra=self.api_keys)
            if not len(keys):
                log.warning("no API keys configured: every /api/v1 request will be refused (ferrogate api-key create)")
            self._influx = InfluxV1Client(center.influxdb)
            self.api_context = GroupContext(center, keys, self._influx, {"influxdb": self._influx_ready})
            self._serve_api(create_group_app(self.api_context))

    async def _influx_ready(self) -> str | None:
        assert self._influx is not None
        try:
            await self._influx.ping()
        except InfluxError as exc:
            return str(exc)
        return None

    async def stop(self) -> None:
        await self._stop_tasks()
        for worker in (self.ingest, self.derived):
            if worker is not None:
                await worker.aclose()
        if self._influx is not None:
            await self._influx.aclose()

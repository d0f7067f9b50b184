"""One energy platform in the `uplink` role: every `poll_s` the periods that closed (`close_after_s`
past their end) are built from the books stored in InfluxDB, spooled in sending order with the
state that says how far building got, and sent by the sender.

The build state (state.py) is saved after the spool committed the messages: a crash in between
builds those periods again, with the same message ids, so the platform de-duplicates them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from ferrogate.gateway.accounting_service import read_derived
from ferrogate.gateway.config import InfluxConfig
from ferrogate.gateway.energy.model import AccountingModel, resolve
from ferrogate.gateway.influx import InfluxError, InfluxV1Client
from ferrogate.gateway.plant_file import PlantFile
from ferrogate.gateway.spool import Spool, open_spool
from ferrogate.gateway.uplink.energy_platform.builder import MessageBuilder, limit_standards
from ferrogate.gateway.uplink.energy_platform.client import PlatformClient, tls_context
from ferrogate.gateway.uplink.energy_platform.config import EnergyPlatformConfig
from ferrogate.gateway.uplink.energy_platform.mapping import KINDS, PlatformMapping, load_mapping
from ferrogate.gateway.uplink.energy_platform.periods import closable
from ferrogate.gateway.uplink.energy_platform.sender import EnergySender
from ferrogate.gateway.uplink.energy_platform.state import BuildState, build_in_order

log = logging.getLogger(__name__)

BATCH_PERIODS = 200  # periods built per InfluxDB read while catching up (about two days of quarter-hours)


@dataclass
class Counters:
    built: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    failed: dict[str, int] = field(default_factory=dict)  # quality rule -> messages that failed it
    read_errors: int = 0
    last_failure: str = ""


class EnergyPlatform:
    def __init__(
        self,
        config: EnergyPlatformConfig,
        mapping: PlatformMapping,
        model: AccountingModel,
        influx: InfluxConfig,
        zone: str,
        standards: dict[str, str | None] | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.config, self.mapping, self.model = config, mapping, model
        self.zone = ZoneInfo(zone)
        self.builder = MessageBuilder(model, mapping, self.zone, standards)
        self.kinds = tuple(k for k in KINDS if mapping.items_for(k))
        self.influx = InfluxV1Client(influx)
        self.material_units = {m: mat.unit for m, mat in model.materials.items()}
        self.spool = open_spool(config.spool, f"energy_{config.id}")
        self.rejected = Spool(config.spool.path, f"energy_{config.id}_rejected", self.spool.max_bytes)
        self.state_path = state_file(config.spool.path, config.id) if config.spool.path is not None else None
        self.state = BuildState.load(self.state_path)
        client = PlatformClient(
            config.url,
            tls_context(config.ca_file, config.client_cert_file, config.client_key_file),
            config.resolve_token(),
            config.timeout_s,
        )
        self.sender = EnergySender(config.id, client, self.spool, self.rejected, config.retry_max_s)
        self.counters = Counters()
        self.clock_ns = clock_ns

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.sender.run(), name=f"uplink:energy:{self.config.id}:send")
            tg.create_task(self._build_loop(), name=f"uplink:energy:{self.config.id}:build")

    async def _build_loop(self) -> None:
        while True:
            try:
                more = await self.build_due()
            except InfluxError as exc:
                self.counters.read_errors += 1
                log.warning("energy platform %s: cannot read the books (%s); trying again", self.config.id, exc)
                more = False
            if not more:
                await asyncio.sleep(self.config.poll_s)

    async def build_due(self) -> bool:
        """Build and spool the next batch of closed periods; True if more are waiting."""
        horizon = self.clock_ns() - int(self.config.close_after_s * 1e9)
        due = closable(self.kinds, self.state.made_through, self.config.send_from, self.zone, horizon, BATCH_PERIODS)
        if not due:
            return False
        start = min(p.start_ns for p in due)
        end = max(p.end_ns for p in due)
        # records count in the period of their end, (start, end]: read one instant past the end
        records, intervals = await read_derived(
            self.influx, self.model.site, start, end + 1, self.material_units, self.builder.books.interval_ns
        )
        failed = 0
        for p, built in zip(due, build_in_order(self.builder, self.state, due, records, intervals), strict=True):
            self.counters.built[p.kind] += 1
            for f in built.failures:
                self.counters.failed[f.rule] = self.counters.failed.get(f.rule, 0) + 1
            if built.failures:
                failed += 1
                self.counters.last_failure = f"{p.kind} {p.label}: " + "; ".join(f.detail for f in built.failures)
            body = json.dumps(built.message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            self.spool.append(built.message["message_id"], body, len(built.message["items"]))
        self.state.save(self.state_path)
        if failed:  # one line per batch: a backlog of flagged periods must not flood the log
            log.warning(
                "energy platform %s: %d of %d periods built fail a quality rule (sent flagged); last: %s",
                self.config.id,
                failed,
                len(due),
                self.counters.last_failure,
            )
        self.sender.wake()
        return len(due) == BATCH_PERIODS

    async def aclose(self) -> None:
        await self.sender.client.aclose()
        await self.influx.aclose()
        self.spool.close()
        self.rejected.close()


def state_file(spool_path: Path, platform: str) -> Path:
    """Where a platform's build state is kept, next to its spool."""
    return spool_path.with_name(f"{spool_path.name}.energy-{platform}.json")


def check_credentials(config: EnergyPlatformConfig) -> None:
    """ValueError naming the platform and the field when its token or TLS files cannot be used (at
    role start, before anything runs: the plant file may be checked on another machine)."""
    where = f"uplink.energy_platforms[{config.id}]"
    try:
        config.resolve_token()
    except (LookupError, OSError, IndexError) as exc:
        field = "token_env" if config.token_env is not None else "token_file"
        raise ValueError(f"{where}.{field}: {exc}") from None
    try:
        tls_context(config.ca_file, config.client_cert_file, config.client_key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"{where}: ca_file, client_cert_file or client_key_file cannot be used: {exc}") from None


def start_energy_platforms(plant: PlantFile) -> list[EnergyPlatform]:
    """The plant file's energy platforms, ready to run (the file was checked when it was loaded:
    the accounting and influxdb sections exist and every mapping file resolves)."""
    if plant.uplink is None or not plant.uplink.energy_platforms:
        return []
    model = resolve(plant, plant.accounting)[0] if plant.accounting is not None else None
    if model is None or plant.influxdb is None:
        raise ValueError("the energy platforms need the 'accounting' and 'influxdb' sections")
    out = []
    for config in plant.uplink.energy_platforms:
        mapping, problems = load_mapping(config.mapping_file, model)
        if mapping is None:
            raise ValueError(f"{config.mapping_file}: {'; '.join(problems)}")
        standards = limit_standards(plant, model)
        out.append(EnergyPlatform(config, mapping, model, plant.influxdb, plant.site.timezone, standards))
    return out


def render_prometheus(platforms: list[EnergyPlatform]) -> str:
    """Per platform: periods built by kind, quality-rule failures by rule, what was delivered,
    refused, rejected and is waiting."""
    lines = [
        "# HELP ferrogate_energy_platform_periods_built_total platform periods built into messages",
        "# TYPE ferrogate_energy_platform_periods_built_total counter",
        "# HELP ferrogate_energy_platform_quality_failures_total messages sent with a failed quality rule",
        "# TYPE ferrogate_energy_platform_quality_failures_total counter",
        "# HELP ferrogate_energy_platform_messages_total messages by what the platform answered",
        "# TYPE ferrogate_energy_platform_messages_total counter",
        "# HELP ferrogate_energy_platform_read_errors_total polls that could not read the books from InfluxDB",
        "# TYPE ferrogate_energy_platform_read_errors_total counter",
        "# HELP ferrogate_energy_platform_backlog messages waiting in the spool",
        "# TYPE ferrogate_energy_platform_backlog gauge",
    ]
    for p in platforms:
        name = p.config.id
        for kind, n in p.counters.built.items():
            lines.append(f'ferrogate_energy_platform_periods_built_total{{platform="{name}",kind="{kind}"}} {n}')
        for rule, n in sorted(p.counters.failed.items()):
            lines.append(f'ferrogate_energy_platform_quality_failures_total{{platform="{name}",rule="{rule}"}} {n}')
        s = p.sender
        answers = {
            "delivered": s.delivered,
            "duplicate": s.duplicates,
            "refused": s.refused,
            "rejected": s.rejected_count,
        }
        for outcome, n in answers.items():
            lines.append(f'ferrogate_energy_platform_messages_total{{platform="{name}",outcome="{outcome}"}} {n}')
        lines.append(f'ferrogate_energy_platform_read_errors_total{{platform="{name}"}} {p.counters.read_errors}')
        lines.append(f'ferrogate_energy_platform_backlog{{platform="{name}"}} {s.backlog}')
    return "\n".join(lines) + "\n"

"""A small plant whose gateway roles run as separate processes, for the delivery fault tests: two
counting Modbus meters (tests/meters.py), a real Mosquitto and InfluxDB, and `python -m ferrogate run`
with `--role collect`, `--role ingest` and `--role energy,api`, each killable and restartable. Optional
in the way: a TCP proxy between the collector and the broker (tests/tcp_proxy.py: the WAN, cut and
restored) and an HTTP relay in front of InfluxDB that answers 503 while told to.

`verify()` pauses the meters, waits for InfluxDB to hold every reading they served and counts, per
(device, point, meter-clock time), what is missing, doubled, changed or never served.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from ferrogate.gateway.config import InfluxConfig
from ferrogate.gateway.influx import InfluxV1Client
from ferrogate.gateway.plant_file import PlantFile
from ferrogate.gateway.services import LOOPBACK, InfluxDB, Mosquitto, free_port, start_influxdb, start_mosquitto
from tests.conftest import ROOT
from tests.meters import (
    POINTS,
    START_MS,
    CountingMeter,
    Key,
    plant_config,
    plant_doc,
    served,
    start_meters,
    stop_meters,
)
from tests.reliability.books_check import INTERVAL_S, BooksCompared, add_books, books_equal_recompute
from tests.reliability.small_disk import SmallDisks
from tests.tcp_proxy import TcpProxy
from tests.waiting import eventually

SCAN_INTERVAL_S = 1.0  # the plant's scan: one read of each meter a second
# meter-clock time per read: a run of a dozen scans then spans several of the books' one-minute
# buckets (tests/reliability/books_check.py), so the books compared have closed rows
METER_STEP_MS = 30_000
# where the meters' clocks start, behind the wall clock: a run of up to 240 scans stays in the past
METER_CLOCK_BEHIND_MS = 3_600_000
# ingest notices a database outage, and its end, within about a second
# each small disk (tmpfs) under a spool: room for the spool's SQLite files of a short run (a few hundred
# KiB) many times over, small enough to fill in a moment
DISK_BYTES = 8 << 20
FAST_RETRY = {"flush_interval_s": 0.2, "max_retries": 1, "retry_initial_s": 0.2, "retry_max_s": 1.0}


class RoleProcess:
    """One `ferrogate run --role ...` process (behind `prefix`, e.g. nsenter); its output goes to `<name>.log`.
    With the api role, `api_port` serves its /metrics."""

    def __init__(
        self, name: str, plant_file: Path, roles: str, directory: Path, prefix: list[str] | None = None
    ) -> None:
        self.name, self.log = name, directory / f"{name}.log"
        self.api_port = free_port() if "api" in roles.split(",") else None
        extra = ["--api-port", str(self.api_port)] if self.api_port else []
        run = [sys.executable, "-m", "ferrogate", "run", "--plant", str(plant_file), "--role", roles, *extra]
        self.argv = [*(prefix or []), *run]
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.starts += 1

    async def kill(self) -> None:
        """SIGKILL: no cleanup, as a power loss or the OOM killer would."""
        assert self.proc is not None and self.proc.poll() is None, f"{self.name} is not running"
        self.proc.send_signal(signal.SIGKILL)
        assert await asyncio.to_thread(self.proc.wait, 30) == -signal.SIGKILL

    async def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.proc.wait, 30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            await asyncio.to_thread(self.proc.wait)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def metrics(self, prefix: str) -> dict[str, float]:
        """The process's /metrics samples whose name starts with `prefix`, by name and labels."""
        assert self.api_port is not None, f"{self.name} runs no api role"
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(f"http://{LOOPBACK}:{self.api_port}/metrics")
        response.raise_for_status()
        samples = {}
        for line in response.text.splitlines():
            if line.startswith(prefix):
                name, value = line.rsplit(" ", 1)
                samples[name] = float(value)
        return samples

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else "(no log)"
        return f"--- {self.name} ---\n" + "\n".join(text.splitlines()[-lines:])


class FlakyHttp:
    """An HTTP relay in front of InfluxDB that answers every request with 503 while `failing`."""

    def __init__(self, target_port: int) -> None:
        self.port, self.target_port = free_port(), target_port
        self.failing = False
        self.refused = 0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, LOOPBACK, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, OSError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                length = next((int(h.split(":", 1)[1]) for h in lines if h.lower().startswith("content-length:")), 0)
                body = await reader.readexactly(length)
                if self.failing:
                    self.refused += 1
                    writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 11\r\n\r\nunavailable")
                else:
                    kept = [h for h in lines if h and not h.lower().startswith("connection:")]
                    request = ("\r\n".join([*kept, "Connection: close"]) + "\r\n\r\n").encode("latin-1") + body
                    up_reader, up_writer = await asyncio.open_connection(LOOPBACK, self.target_port)
                    up_writer.write(request)
                    answer = await up_reader.read()  # until the database closes: one whole response
                    up_writer.close()
                    writer.write(answer)
                await writer.drain()
        writer.close()


class DeliveryStack:
    """The plant, the services and the three role processes, in `directory`."""

    def __init__(
        self,
        directory: Path,
        site: str,
        *,
        wan_relay: bool = False,
        flaky_database: bool = False,
        small_disks: bool = False,
        held_roles: tuple[str, ...] = (),
    ) -> None:
        self.directory, self.site = directory, site
        self.held_roles = held_roles  # role processes the test starts itself, later
        self.wan_relay, self.flaky_database = wan_relay, flaky_database
        # the collector's and ingest's spools (and dead letters) on small disks that the test fills
        # up (tests/reliability/small_disk.py); those two roles then also serve /metrics (api role)
        self.collector_disk, self.ingest_disk = directory / "collector-disk", directory / "ingest-disk"
        disks = dict.fromkeys((self.collector_disk, self.ingest_disk), DISK_BYTES)
        self.disks = SmallDisks(disks) if small_disks else None
        self.broker: Mosquitto | None = None
        self.database: InfluxDB | None = None
        self.meters: list[CountingMeter] = []
        self.relay: TcpProxy | None = None
        self.flaky: FlakyHttp | None = None
        self.roles: dict[str, RoleProcess] = {}
        self.client: InfluxV1Client | None = None
        self.plant: PlantFile | None = None  # the plant file every role reads
        self.collector_spool = (self.collector_disk if small_disks else directory) / "collector.sqlite"
        self.ingest_spool = (self.ingest_disk if small_disks else directory) / "ingest.sqlite"

    async def start(self, collector_mqtt: dict[str, Any] | None = None) -> None:
        d = self.directory
        prefix = None
        if self.disks is not None:
            await self.disks.start()
            prefix = self.disks.nsenter_argv()
        self.broker = await asyncio.to_thread(start_mosquitto, d / "broker")
        self.database = await asyncio.to_thread(start_influxdb, d / "influxdb")
        self.meters = await start_meters(2, METER_STEP_MS)
        # the meters' clocks start an hour before now (on a bucket boundary), as a real meter's are
        # near the wall clock: inside the span the energy role reads back from InfluxDB when it starts
        behind_ms = time.time_ns() // 1_000_000 - METER_CLOCK_BEHIND_MS - START_MS
        for meter in self.meters:
            meter.offset_ms += behind_ms - behind_ms % (INTERVAL_S * 1000)
        self.client = InfluxV1Client(InfluxConfig(url=self.database.url, database="faults"))
        await self.client.ensure_database()
        broker_port = self.broker.port
        if self.wan_relay:
            self.relay = TcpProxy(broker_port)
            await self.relay.restore()
        database_url = self.database.url
        if self.flaky_database:
            self.flaky = FlakyHttp(self.database.port)
            await self.flaky.start()
            database_url = self.flaky.url
        influx = {"url": database_url, "database": "faults", **FAST_RETRY}
        mqtt = {"port": broker_port, "keepalive_s": 5}
        collect_mqtt = {
            **mqtt,
            "port": self.relay.port if self.relay else broker_port,
            "spool": {"path": str(self.collector_spool)},
            **(collector_mqtt or {}),
        }
        ingest_influx = {**influx, "spool": {"path": str(self.ingest_spool)}}
        if self.disks is not None:
            # these two processes also run the api role (for /metrics): their live view's MQTT client
            # must not take the energy,api process's client id ({prefix}-live-{gateway})
            collect_mqtt["client_id_prefix"] = "fg-collect"
            ingest_mqtt = {**mqtt, "client_id_prefix": "fg-ingest"}
        else:
            ingest_mqtt = mqtt
        files = {}
        roles = (("collect", collect_mqtt, influx), ("ingest", ingest_mqtt, ingest_influx), ("api", mqtt, influx))
        for name, m, i in roles:
            files[name] = d / f"{name}.yaml"
            # every role reads the same plant, with the books' unit (tests/reliability/books_check.py)
            plant = plant_config(add_books(plant_doc(self.site, self.meters, m, i, SCAN_INTERVAL_S)), files[name])
        self.plant = plant
        with_api = ",api" if self.disks is not None else ""
        self.roles = {
            "collect": RoleProcess("collect", files["collect"], "collect" + with_api, d, prefix),
            "ingest": RoleProcess("ingest", files["ingest"], "ingest" + with_api, d, prefix),
            "energy,api": RoleProcess("energy,api", files["api"], "energy,api", d),
        }
        for name, role in self.roles.items():
            if name not in self.held_roles:
                role.start()

    @property
    def collect(self) -> RoleProcess:
        return self.roles["collect"]

    @property
    def ingest(self) -> RoleProcess:
        return self.roles["ingest"]

    async def close(self) -> None:
        for role in self.roles.values():
            await role.stop()
        if self.client is not None:
            await self.client.aclose()
        await stop_meters(self.meters)
        if self.relay is not None:
            await self.relay.cut()
        if self.flaky is not None:
            await self.flaky.close()
        for service in (self.broker, self.database):
            if service is not None:
                await asyncio.to_thread(service.process.stop)
        if self.disks is not None:
            await self.disks.close()

    def logs(self) -> str:
        return "\n".join(role.tail() for role in self.roles.values())

    def scans(self) -> int:
        """Scans the collector made that the meters answered (one Modbus read per scan)."""
        return sum(len(m.server.served) for m in self.meters if m.server is not None)

    async def stored_counts(self) -> Counter[Key]:
        """How often InfluxDB holds each good reading, by (device, point, time) across every series."""
        assert self.client is not None
        series = await self.client.query(f"SELECT quality, device, point FROM reading WHERE {self._metered}")
        counts: Counter[Key] = Counter()
        for s in series:
            for row in s.rows():
                if row["quality"] == "good":
                    counts[(row["device"], row["point"], row["time"])] += 1
        return counts

    @property
    def _metered(self) -> str:
        """The readings the meters serve (not the books' extra view of a counter, OUTPUT_POINT)."""
        return f"site='{self.site}' AND point =~ /^({'|'.join(POINTS)})$/"

    async def stored_values(self) -> dict[Key, float]:
        assert self.client is not None
        series = await self.client.query(f"SELECT value, quality, device, point FROM reading WHERE {self._metered}")
        return {
            (row["device"], row["point"], row["time"]): row["value"]
            for s in series
            for row in s.rows()
            if row["quality"] == "good"
        }

    async def until_flowing(self, readings: int = 12) -> None:
        """Wait until InfluxDB holds at least this many more good readings than now."""
        start = sum((await self.stored_counts()).values())

        async def flowing() -> bool:
            return sum((await self.stored_counts()).values()) >= start + readings

        await eventually(flowing, f"{readings} more readings in InfluxDB", 120)

    async def until_scanned(self, scans: int) -> None:
        """Wait until every meter answered this many more scans (plant time passes: 1 s a scan)."""
        targets = [(m, len(m.server.served) + scans) for m in self.meters if m.server is not None]

        async def scanned() -> bool:
            return all(m.server is not None and len(m.server.served) >= n for m, n in targets)

        await eventually(scanned, f"{scans} more scans", 120)

    async def verify(self, case: str, within_s: float = 180) -> dict[str, int]:
        """Pause the meters, wait (up to `within_s`) for every served reading in InfluxDB, count and print."""
        for meter in self.meters:
            meter.pause()
        expected = served(self.meters)

        async def complete() -> bool:
            return len(set(await self.stored_counts()) & set(expected)) >= len(expected)

        with contextlib.suppress(pytest.fail.Exception):  # the counts below say what is missing
            await eventually(complete, f"all {len(expected)} served readings in InfluxDB", within_s)
        counts = await self.stored_counts()
        values = await self.stored_values()
        figures = {
            "scans": self.scans(),
            "readings_served": len(expected),
            "readings_stored": sum(counts.values()),
            "lost": len(set(expected) - set(counts)),
            "duplicates": sum(n - 1 for n in counts.values() if n > 1),
            "changed": sum(1 for k in expected if k in values and values[k] != expected[k]),
            "never_served": len(set(counts) - set(expected)),
            "batches_replayed": self.replayed_batches(),
        }
        print(f"\n[{case}] " + ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in figures.items()))
        return figures

    async def verify_exactly_once(self, case: str) -> dict[str, int]:
        """`verify`, asserting nothing lost, doubled, changed or invented; then the books against a
        recompute."""
        figures = await self.verify(case)
        assert (figures["lost"], figures["duplicates"], figures["changed"], figures["never_served"]) == (0, 0, 0, 0), (
            f"{case}: {figures}\n{self.logs()}"
        )
        await self.verify_books(case)
        return figures

    async def verify_books(self, case: str) -> BooksCompared:
        """The energy role's books equal a recompute from the readings in InfluxDB (after `verify`)."""
        assert self.database is not None and self.plant is not None
        times = [t for _, _, t in served(self.meters)]
        influx = InfluxConfig(url=self.database.url, database="faults")
        bucket_ns = INTERVAL_S * 1_000_000_000
        # from the bucket of the meters' first reading to the end of the last whole bucket they were
        # read in (tests/reliability/books_check.py). The first bucket counts too: scans published
        # before the energy role's first subscription are read back from InfluxDB (a new session)
        span = (min(times) - min(times) % bucket_ns, max(times) - max(times) % bucket_ns)
        started = time.monotonic()
        compared = await books_equal_recompute(self.plant, influx, span, 90)
        figures = {**compared.figures(), "books_check_s": f"{time.monotonic() - started:.1f}"}
        print(f"[{case}] " + ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in figures.items()))
        if not compared.equal:
            print(f"[{case}] books against the recompute: {compared.differences()}")
        assert compared.equal, (case, compared, self.roles["energy,api"].tail())
        return compared

    def replayed_batches(self) -> int:
        """Batches the collector process(es) sent again after a reconnect or restart (from their log)."""
        text = self.collect.log.read_text(errors="replace") if self.collect.log.exists() else ""
        return sum(int(n) for n in re.findall(r"MQTT connected: replaying (\d+) spooled batches", text))

    def spool_rows(self) -> int:
        """Entries in the collector's spool (batches not yet confirmed durable), read from outside."""
        db = sqlite3.connect(f"file:{self.collector_spool_view}?mode=ro", uri=True)
        try:
            return db.execute("SELECT count(*) FROM mqtt_outbox").fetchone()[0]
        finally:
            db.close()

    @property
    def collector_spool_view(self) -> Path:
        """The collector's spool file as the test reaches it (through the small disk's namespace)."""
        return self.disks.view(self.collector_spool) if self.disks is not None else self.collector_spool

    def resume_meters(self) -> None:
        for meter in self.meters:
            meter.paused = False


async def kill_service(service: Mosquitto | InfluxDB) -> None:
    """SIGKILL a broker or database: nothing flushed, as a power loss or the OOM killer would."""
    proc = service.process.proc
    assert proc is not None and proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    await asyncio.to_thread(proc.wait, 30)

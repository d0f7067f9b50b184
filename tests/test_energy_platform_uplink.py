"""The energy-platform uplink against a platform stub that is a real HTTPS server (uvicorn, its own
test CA, client certificates required, a bearer token checked): November's books are in a real
InfluxDB as the energy role writes them; the uplink builds the quarter-hours and days of 29 and 30
November (and, for a second platform, November's days and the month); the platform answers 503 for
a while, loses one reply after storing the message, goes away (connection refused) while the uplink
process is restarted too, and comes back. Every period must arrive exactly once (by message id), in
sending order, and every item id once.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn
import yaml

from ferrogate.gateway.api_server import EmbeddedServer
from ferrogate.gateway.config import InfluxConfig
from ferrogate.gateway.config_loader import parse_plant
from ferrogate.gateway.energy import wire
from ferrogate.gateway.influx import InfluxV1Client
from ferrogate.gateway.influx_setup import DERIVED_POLICY
from ferrogate.gateway.runtime import Gateway, RoleConfigError
from ferrogate.gateway.services import InfluxDB, Mosquitto, free_port
from ferrogate.gateway.uplink.energy_platform.periods import closable
from ferrogate.gateway.uplink.energy_platform.service import EnergyPlatform, render_prometheus, start_energy_platforms
from tests.energy_platform_cases import CASES, load_intervals, load_records, ns
from tests.tlscerts import make_ca_and_server, make_client_cert
from tests.waiting import eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")

TOKEN = "platform-test-token-7f3a"
BOOKS = CASES / "month_days"  # November 2026, every bucket present
SEND_FROM = date(2026, 11, 29)
NOW_NS = ns("2026-12-01T00:30+08:00")  # with close_after_s 1800: everything up to 2026-12-01 00:00 is due


class PlatformStub:
    """An ASGI app that stores what it takes, keyed by message id, and answers as told."""

    def __init__(self) -> None:
        self.stored: dict[str, dict[str, Any]] = {}  # message id -> message, in order of first arrival
        self.attempts: list[tuple[str, int]] = []
        self.busy = 0  # answer 503 to this many requests
        self.lose_reply: set[str] = set()  # store these, then answer 500 as if the reply was lost

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        headers = dict(scope["headers"])
        message_id = ""
        if headers.get(b"authorization") != f"Bearer {TOKEN}".encode():
            status = 401
        elif self.busy > 0:
            self.busy -= 1
            status = 503
        else:
            doc = json.loads(body)
            message_id = doc["message_id"]
            assert headers[b"idempotency-key"].decode() == message_id
            if message_id in self.stored:
                status = 409  # de-duplicated by message id
            else:
                self.stored[message_id] = doc
                status = 500 if message_id in self.lose_reply else 200
                self.lose_reply.discard(message_id)
        self.attempts.append((message_id, status))
        # no keep-alive: an idle TLS connection would hold the stub's shutdown for asyncio's 30 s TLS close
        headers_out = [(b"content-type", b"text/plain"), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": status, "headers": headers_out})
        await send({"type": "http.response.body", "body": str(status).encode()})


class HttpsPlatform:
    def __init__(self, app: PlatformStub, port: int, certs: Path) -> None:
        self.app, self.port, self.certs = app, port, certs
        self.server: uvicorn.Server | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            ssl_certfile=str(self.certs / "server.crt"),
            ssl_keyfile=str(self.certs / "server.key"),
            ssl_ca_certs=str(self.certs / "ca.crt"),
            ssl_cert_reqs=ssl.CERT_REQUIRED,  # mutual TLS: no client certificate, no connection
        )
        self.server = EmbeddedServer(config)
        self.task = asyncio.create_task(self.server.serve())
        server = self.server

        async def started() -> bool:
            return server.started

        await eventually(started, "the platform stub listening")

    async def stop(self) -> None:
        assert self.server is not None and self.task is not None
        self.server.should_exit = True
        await self.task


async def write_books(influx: InfluxV1Client, site: str) -> None:
    """The books of November as the energy role writes them (energy_interval, production_record)."""
    lines = [wire.interval_line(site, row) for row in load_intervals(BOOKS / "intervals.csv")]
    lines += [wire.record_line(site, rec, {"coke": "t"}) for rec in load_records(BOOKS / "records.csv")]
    for i in range(0, len(lines), 5000):
        await influx.write(lines[i : i + 5000], retention_policy=DERIVED_POLICY)


async def certificates_and_database(tmp: Path, influxdb: InfluxDB, database: str, with_books: bool) -> Path:
    """A test CA with the platform's server certificate and the plant's client certificate (in
    tmp/certs), and the database (with November's books, or empty)."""
    certs = tmp / "certs"
    certs.mkdir()
    make_ca_and_server(certs)
    make_client_cert(certs, "plant")
    influx = InfluxV1Client(InfluxConfig(url=influxdb.url, database=database))
    await influx.ensure_database()
    if with_books:
        await write_books(influx, "golden_ep")
    await influx.aclose()
    return certs


def plant_doc(
    influxdb: InfluxDB, database: str, port: int, certs: Path, tmp: Path, daily: bool = False
) -> dict[str, Any]:
    """The cases' plant reporting to the stub: `province` takes quarter-hours and days from 29
    November; with `daily`, `province_daily` (its own mapping and spool) days and the month of November."""
    doc = yaml.safe_load((CASES / "plant.yaml").read_text(encoding="utf-8"))
    (tmp / "token").write_text(TOKEN + "\n", encoding="utf-8")
    doc["influxdb"] = {"url": influxdb.url, "database": database}
    platform = {
        "id": "province",
        "url": f"https://127.0.0.1:{port}/energy-data",
        "mapping_file": str(CASES / "mapping.yaml"),
        "client_cert_file": str(certs / "plant.crt"),
        "client_key_file": str(certs / "plant.key"),
        "token_file": str(tmp / "token"),
        "ca_file": str(certs / "ca.crt"),
        "send_from": SEND_FROM.isoformat(),
        "close_after_s": 1800,
        "timeout_s": 5,
        "retry_max_s": 0.2,
        "poll_s": 0.2,
        "spool": {"path": str(tmp / "spool" / "uplink.sqlite")},
    }
    platforms = [platform]
    if daily:
        platforms.append(
            platform
            | {
                "id": "province_daily",
                "mapping_file": str(BOOKS / "mapping.yaml"),
                "send_from": "2026-11-01",
                "spool": {"path": str(tmp / "spool" / "uplink-daily.sqlite")},
            }
        )
    doc["uplink"] = {"energy_platforms": platforms}
    return doc


Running = list[tuple[EnergyPlatform, asyncio.Task[None]]]


def start(doc: dict[str, Any], tmp: Path) -> Running:
    plant = parse_plant(yaml.safe_dump(doc, allow_unicode=True), tmp / "plant.yaml")
    out = []
    for platform in start_energy_platforms(plant):
        platform.clock_ns = lambda: NOW_NS  # November is over, 1 December has not begun for the books
        out.append((platform, asyncio.create_task(platform.run())))
    return out


async def stop(running: Running) -> None:
    for platform, task in running:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await platform.aclose()


def sent_by(stub: PlatformStub, enterprise: str) -> list[str]:
    return [m for m in stub.stored if m.startswith(enterprise + ":")]


async def test_every_period_arrives_once_in_order_through_refusals_and_outages(
    influxdb: InfluxDB, fresh_database: str, tmp_path: Path
) -> None:
    certs = await certificates_and_database(tmp_path, influxdb, fresh_database, with_books=True)
    port = free_port()
    stub = PlatformStub()
    https = HttpsPlatform(stub, port, certs)
    await https.start()
    doc = plant_doc(influxdb, fresh_database, port, certs, tmp_path, daily=True)
    running = start(doc, tmp_path)
    (quarterly, _), (daily, _) = running
    zone = ZoneInfo("Asia/Shanghai")
    horizon = NOW_NS - 1800 * 10**9
    expected = [
        quarterly.builder.message_id(p) for p in closable(quarterly.kinds, {}, SEND_FROM, zone, horizon, 10_000)
    ]
    assert len(expected) == 2 * 96 + 2  # quarter-hours and days of 29 and 30 November; no month is due
    expected_daily = [
        daily.builder.message_id(p) for p in closable(daily.kinds, {}, date(2026, 11, 1), zone, horizon, 99)
    ]
    assert len(expected_daily) == 30 + 1 and expected_daily[-1] == "GOLDEN0002:month:2026-11"

    stub.busy = 5  # the platform is busy at first
    stub.lose_reply = {expected[20]}  # stored, but the reply never reaches the uplink
    try:

        async def stored_some() -> bool:
            return len(sent_by(stub, "GOLDEN0001")) >= 60

        await eventually(stored_some, "60 periods taken by the platform", 30)
        await https.stop()  # the platform goes away: connection refused
        refused_before = quarterly.sender.refused

        async def refused() -> bool:
            return quarterly.sender.refused >= refused_before + 3 and "ConnectError" in quarterly.sender.last_error

        await eventually(refused, "the uplink to find the platform away", 30)
        first_counters = [p.counters.built.copy() for p, _ in running]
        duplicates = quarterly.sender.duplicates
        metrics = render_prometheus([p for p, _ in running])
        await stop(running)  # ... and the uplink restarts while it is away: the backlog is on disk
        running = start(doc, tmp_path)
        (quarterly, _), (daily, _) = running

        async def refused_again() -> bool:
            return quarterly.sender.refused >= 2

        await eventually(refused_again, "the restarted uplink to find the platform away", 30)
        assert quarterly.sender.backlog == len(expected) - len(sent_by(stub, "GOLDEN0001"))
        await https.start()  # the platform is back on the same address

        async def all_taken() -> bool:
            return len(stub.stored) == len(expected) + len(expected_daily) and not any(
                p.sender.backlog for p, _ in running
            )

        await eventually(all_taken, "every period taken", 30)
    finally:
        await stop(running)
        if https.task is not None and not https.task.done():
            await https.stop()

    assert sent_by(stub, "GOLDEN0001") == expected  # each period once, in sending order
    assert sent_by(stub, "GOLDEN0002") == expected_daily
    item_ids = [item["id"] for message in stub.stored.values() for item in message["items"]]
    assert len(item_ids) == len(set(item_ids)) == 192 * 4 + 2 * 6 + 30 * 5 + 8
    statuses = [s for _, s in stub.attempts]
    assert statuses.count(503) == 5 and statuses.count(500) == 1
    assert (expected[20], 409) in stub.attempts and duplicates == 1  # the resend after the lost reply
    assert first_counters == [{"quarter": 192, "day": 2, "month": 0}, {"quarter": 0, "day": 30, "month": 1}]
    assert 'ferrogate_energy_platform_periods_built_total{platform="province",kind="quarter"} 192' in metrics
    # nothing was built twice after the restart
    assert [p.counters.built for p, _ in running] == [dict.fromkeys(("quarter", "day", "month"), 0)] * 2
    day = stub.stored["GOLDEN0001:day:2026-11-30"]
    assert day["quality"] == {"passed": True, "failures": []}
    assert {i["code"]: i["value"] for i in day["items"]} == {
        "E01": 59.0901,  # 96 x (2,400 kWh x 0.1229 + 0.33 t coke x 971.4) kgce / 1000
        "E02": 24.0,  # 240,000 kWh in 10^4 kWh
        "E03": 31.68,
        "P01": 57.6,
        "P02": 1025.87,  # 59,090.112 kgce / 57.6 t
        "Q01": 100.0,
    }
    month = stub.stored["GOLDEN0002:month:2026-11"]
    assert month["quality"] == {"passed": True, "failures": []}  # its 30 days as sent add up
    assert {i["code"]: i["value"] for i in month["items"]} == {
        "E01": 1772.703,  # 30 x 59.090112 tce
        "E02": 7200.0,  # MWh
        "E04": 7200000.0,  # kWh purchased
        "E03": 950.4,
        "P01": 1728.0,
        "P02": 1.026,  # tce/t
        "P03": 4000.0,  # kWh/t
        "Q01": 100.0,
    }


async def test_the_platform_stub_refuses_a_client_without_certificate(tmp_path: Path) -> None:
    """The mutual TLS of the test above is real: without the plant's certificate there is no exchange."""
    make_ca_and_server(tmp_path)
    port = free_port()
    https = HttpsPlatform(PlatformStub(), port, tmp_path)
    await https.start()
    try:
        context = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
        async with httpx.AsyncClient(verify=context) as client:
            with pytest.raises(httpx.TransportError):
                await client.post(f"https://127.0.0.1:{port}/energy-data", content=b"{}")
    finally:
        await https.stop()


async def test_the_uplink_role_runs_the_energy_platform_beside_hj212_and_flags_what_the_books_lack(
    mosquitto: Mosquitto, influxdb: InfluxDB, fresh_database: str, tmp_path: Path
) -> None:
    """`run --role uplink` on a plant file with an HJ 212 platform and an energy platform runs both.
    The books hold nothing for the days reported: their periods are still sent, flagged (completeness 0 %),
    with no figures rather than zeros, and the failures show in the metrics."""
    certs = await certificates_and_database(tmp_path, influxdb, fresh_database, with_books=False)
    port = free_port()
    stub = PlatformStub()
    https = HttpsPlatform(stub, port, certs)
    await https.start()
    zone = ZoneInfo("Asia/Shanghai")
    # a day closed whatever the wall clock says: yesterday is built only `close_after_s` (30 min) after
    # local midnight, so a run just after 00:00 in Shanghai would have waited for it in vain
    closed_day = (datetime.fromtimestamp(time.time(), zone) - timedelta(days=2)).date()
    doc = plant_doc(influxdb, fresh_database, port, certs, tmp_path)
    doc["uplink"]["energy_platforms"][0]["send_from"] = closed_day.isoformat()
    doc["uplink"]["platforms"] = [
        {
            "id": "bureau",
            "host": "127.0.0.1",
            "port": free_port(),  # nobody listens: the HJ 212 sender backs off, the energy platform goes on
            "mn": "GOLDENEP0001",
            "password_file": str(tmp_path / "token"),
            "points": [{"code": "e01001", "point": "meters.incomer", "data": ["hour"]}],
        }
    ]
    doc["mqtt"] = {"port": mosquitto.port, "topic_root": f"{fresh_database}/ferrogate/v1"}
    plant = parse_plant(yaml.safe_dump(doc, allow_unicode=True), tmp_path / "plant.yaml")
    gateway = Gateway(plant, roles=("uplink",), gateway_id="ep-test")
    day_id = f"GOLDEN0001:day:{closed_day.isoformat()}"
    try:
        await gateway.start()
        assert gateway.uplink is not None
        assert [p.config.id for p in gateway.uplink.platforms] == ["bureau"]
        assert [p.config.id for p in gateway.uplink.energy_platforms] == ["province"]

        async def day_taken() -> bool:
            return day_id in stub.stored

        await eventually(day_taken, "the closed day's message at the platform", 60)
        metrics = gateway._metrics_text()
    finally:
        await gateway.stop()
        await https.stop()
    day = stub.stored[day_id]
    assert day["completeness_percent"] == 0.0 and day["quality"]["passed"] is False
    assert [f["rule"] for f in day["quality"]["failures"]] == ["completeness"]
    for item in day["items"]:  # no figure where the books have nothing, never 0 in its place
        assert "completeness" in item["flags"]
        if item["code"] == "Q01":
            assert item["value"] == 0.0
        else:
            assert item["value"] is None and item["quality"] == "bad" and "no_data" in item["flags"], item
    first_quarter = f"GOLDEN0001:quarter:{closed_day.isoformat()}T00:00"
    assert next(iter(stub.stored)) == first_quarter  # from 00:00 local of send_from, in order
    assert 'ferrogate_energy_platform_quality_failures_total{platform="province",rule="completeness"}' in metrics


async def test_the_uplink_role_refuses_to_start_with_credentials_it_cannot_read(
    influxdb: InfluxDB, fresh_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unset token variable or a missing certificate file is named at start, not met on the first POST."""
    (tmp_path / "certs").mkdir()
    make_ca_and_server(tmp_path / "certs")
    doc = plant_doc(influxdb, fresh_database, 443, tmp_path / "certs", tmp_path)  # plant.crt is never made
    doc["mqtt"] = {"port": 1883}
    plant = parse_plant(yaml.safe_dump(doc, allow_unicode=True), tmp_path / "plant.yaml")
    with pytest.raises(RoleConfigError, match=r"uplink.energy_platforms\[province\]: ca_file, client_cert_file"):
        Gateway(plant, roles=("uplink",))
    platform = doc["uplink"]["energy_platforms"][0]
    del platform["token_file"], platform["client_cert_file"], platform["client_key_file"]
    platform["token_env"] = "FERROGATE_TEST_UNSET_TOKEN"
    monkeypatch.delenv("FERROGATE_TEST_UNSET_TOKEN", raising=False)
    plant = parse_plant(yaml.safe_dump(doc, allow_unicode=True), tmp_path / "plant.yaml")
    with pytest.raises(RoleConfigError, match=r"token_env: .*FERROGATE_TEST_UNSET_TOKEN is not set"):
        Gateway(plant, roles=("uplink",))

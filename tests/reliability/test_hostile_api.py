"""Hostile requests to the API (uvicorn on a loopback port, the energy routes on a real InfluxDB):
InfluxQL injection in every parameter that reaches a query, huge and impossible time ranges, deep
pagination, and slow clients on the live event stream. Every answer is a 4xx with a reason or a
right answer, never a 5xx; the database is untouched; slow readers lose events, not the gateway."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio
import uvicorn

from ferrogate.api.app import create_app
from ferrogate.api.config import ApiConfig
from ferrogate.api.context import ApiContext
from ferrogate.api.influxql import q
from ferrogate.api.keys import KeyStore, Role, new_key
from ferrogate.gateway.api_server import EmbeddedServer, listening_socket
from ferrogate.gateway.compliance.model import build as build_compliance
from ferrogate.gateway.compliance_service import ComplianceService
from ferrogate.gateway.config import InfluxConfig
from ferrogate.gateway.config_loader import load_plant
from ferrogate.gateway.energy.model import resolve
from ferrogate.gateway.influx import InfluxV1Client
from ferrogate.gateway.influx_setup import DERIVED_POLICY
from ferrogate.gateway.live import LiveCache
from ferrogate.gateway.reading import Reading, ScanBatch
from ferrogate.gateway.services import InfluxDB
from tests.conftest import DEMO_PLANT
from tests.waiting import eventually

KEY, STORED = new_key("hostile", Role.admin)
DATABASE = "hostile_api"
LIVE_QUEUE = 20
T_MARK = 1_795_000_000_000_000_000  # 2026-11-18
MARKER = f'energy_kpi,site=demo,scope=plant,subject=demo,period=day electricity_kwh=123.0,quality="good" {T_MARK}'
INJECTIONS = [
    "' OR 1=1 --",
    "x'; DROP DATABASE \"hostile_api\"; SELECT '",
    'saf1" ; DROP MEASUREMENT energy_kpi ; "',
    "\\' OR ''='",
    "2026-11-01T00:00:00Z; DROP DATABASE hostile_api",
    "saf1\nDROP DATABASE hostile_api",
    "1d) OR (1=1",
    "%27%20OR%201%3D1",
    "Robert'); DROP SERIES FROM /.*/; --",
]
FROM, TO = "2026-11-01T00:00:00Z", "2026-11-30T00:00:00Z"
# every GET with parameters, with valid values; each parameter is replaced in turn
ROUTES: dict[str, dict[str, str]] = {
    "/api/v1/kpi/energy-intensity": {"from": FROM, "to": TO, "plant": "true", "group": "day"},
    "/api/v1/kpi/carbon-intensity": {"from": FROM, "to": TO, "asset": "saf1", "group": "month"},
    "/api/v1/heats": {"from": FROM, "to": TO, "asset": "saf1", "offset": "0", "limit": "10"},
    "/api/v1/balance": {"from": FROM, "to": TO, "group": "day"},
    "/api/v1/reports/monthly": {"month": "2026-11", "format": "json"},
    "/api/v1/alarms": {"state": "all", "offset": "0", "limit": "10"},
    "/api/v1/live": {"asset": "saf1"},
    "/api/v1/assets/saf1/live": {},
}


@dataclass
class Api:
    url: str
    context: ApiContext
    influx: InfluxV1Client

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers={"X-API-Key": KEY}, timeout=30)


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def api(influxdb: InfluxDB) -> AsyncIterator[Api]:
    plant = load_plant(DEMO_PLANT)
    plant = plant.model_copy(update={"api": ApiConfig(live_queue=LIVE_QUEUE, auth_failures_max=10_000)})
    influx = InfluxV1Client(InfluxConfig(url=influxdb.url, database=DATABASE))
    await influx.ensure_database()
    await influx.write([MARKER], retention_policy=DERIVED_POLICY)
    assert plant.accounting is not None
    accounting = resolve(plant, plant.accounting)[0]
    assert accounting is not None
    compliance = build_compliance(plant, plant.compliance, accounting)[0]  # what the monthly report reads
    assert compliance is not None
    context = ApiContext(
        plant,
        LiveCache({d.id: frozenset(p.id for p in d.points) for d in plant.devices}),
        KeyStore([STORED]),
        influx=influx,
        accounting=accounting,
        compliance=ComplianceService(compliance, influx, None),
    )
    listener = listening_socket("127.0.0.1")  # bound here, port read back: nothing can take it first
    port = listener.getsockname()[1]
    config = uvicorn.Config(create_app(context), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = EmbeddedServer(config)
    task = asyncio.create_task(server.serve(sockets=[listener]))
    await eventually(lambda: asyncio.sleep(0, server.started), "the API server to start", within_s=20)
    yield Api(f"http://127.0.0.1:{port}", context, influx)
    server.should_exit = True
    await task
    await influx.aclose()


async def database_state(influx: InfluxV1Client) -> tuple[list, list, list]:
    databases = await influx.query("SHOW DATABASES", db=False)
    measurements = await influx.query("SHOW MEASUREMENTS")
    marker = await influx.query(f'SELECT * FROM "{DERIVED_POLICY}"."energy_kpi"')
    return [s.values for s in databases], [s.values for s in measurements], [s.values for s in marker]


async def test_influxql_injection_in_every_parameter_is_refused_and_changes_nothing(api: Api) -> None:
    before = await database_state(api.influx)
    assert before[2], "the marker row is there"
    answers: list[tuple[str, str, str, int]] = []
    async with api.client() as http:
        for path, params in ROUTES.items():
            for name in params:
                for payload in INJECTIONS:
                    # (the live stream refuses an unknown asset before it starts streaming)
                    response = await http.get(path, params={**params, name: payload})
                    answers.append((path, name, payload, response.status_code))
                    assert 400 <= response.status_code < 500, (path, name, payload, response.text)
                    assert response.json()["detail"], (path, name, payload)
        # the same routes with their valid parameters reach the database and answer
        for path, params in ROUTES.items():
            if path != "/api/v1/live":
                assert (await http.get(path, params=params)).status_code == 200, path
        injected_path = await http.get("/api/v1/assets/saf1' OR '1'='1/live")
        assert injected_path.status_code == 404
    assert await database_state(api.influx) == before
    assert len(answers) == sum(len(p) for p in ROUTES.values()) * len(INJECTIONS)


async def test_string_literals_stay_literals_in_influxdb(api: Api) -> None:
    """Defence in depth: the one quoting function every query uses, against the real InfluxDB."""
    where = f'SELECT * FROM "{DERIVED_POLICY}"."energy_kpi" WHERE subject='
    assert await api.influx.query(where + q("demo"))
    for payload in INJECTIONS:
        assert await api.influx.query(where + q(payload)) == [], payload


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"from": "0001-01-01T00:00:00Z", "to": "9999-12-31T23:59:59Z"}, "time_out_of_range"),
        ({"from": "1970-01-01T00:00:00Z", "to": "2200-01-01T00:00:00Z"}, "range_too_large"),
        ({"from": "9000-01-01T00:00:00Z", "to": "9000-01-02T00:00:00Z"}, "time_out_of_range"),
        ({"from": "2262-04-10T00:00:00Z", "to": "2262-04-12T00:00:00Z"}, "time_out_of_range"),
        ({"from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, "bad_range"),
        ({"from": "2026-11-01T00:00:00", "to": "2026-11-02T00:00:00Z"}, "time_without_zone"),
        ({"from": "2026-11-01T00:00:00+99:00", "to": "2026-11-02T00:00:00Z"}, "bad_time"),
        ({"from": "9" * 5000, "to": "2026-11-02T00:00:00Z"}, "bad_time"),
    ],
)
async def test_huge_and_impossible_ranges_are_refused_with_a_reason(api: Api, params: dict, error: str) -> None:
    async with api.client() as http:
        for path in ("/api/v1/kpi/energy-intensity", "/api/v1/heats", "/api/v1/balance"):
            extra = {"plant": "true"} if "kpi" in path else {}
            response = await http.get(path, params={**params, **extra})
            assert response.status_code == 400, (path, response.text)
            assert response.json()["detail"]["error"] == error


@pytest.mark.parametrize("offset", ["1000000000000", str(2**63), "9" * 400])
async def test_deep_pagination_answers_an_empty_page(api: Api, offset: str) -> None:
    async with api.client() as http:
        for path, params in [("/api/v1/heats", {"from": FROM, "to": TO}), ("/api/v1/alarms", {"state": "all"})]:
            response = await http.get(path, params={**params, "offset": offset})
            assert response.status_code in (200, 422), (path, response.text)
            if response.status_code == 200:
                assert response.json()["items"] == []


async def test_pagination_beyond_the_limits_is_refused(api: Api) -> None:
    async with api.client() as http:
        for params in ({"offset": "-1"}, {"limit": "0"}, {"limit": "1000000"}, {"offset": "9" * 5000}):
            response = await http.get("/api/v1/alarms", params={"state": "all", **params})
            assert response.status_code == 422, (params, response.text)


def scan(seq: int) -> ScanBatch:
    """A large event (about 6 KB), so the slow clients' socket buffers fill quickly."""
    now = time.time_ns()
    readings = [Reading(f"p{i}", float(seq), "kW", now) for i in range(50)]
    return ScanBatch("demo", "saf1_dcs", seq, now, readings, {f"p{i}": "saf1" for i in range(50)})


def slow_reader(port: int) -> socket.socket:
    """A client that asks for the live stream and never reads it (a tiny receive buffer)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET /api/v1/live HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n\r\n".encode())
    return sock


async def test_slow_live_clients_lose_old_events_and_hold_up_nothing(api: Api) -> None:
    live = api.context.live
    port = int(api.url.rsplit(":", 1)[1])
    readers = [slow_reader(port) for _ in range(5)]
    try:
        await eventually(lambda: asyncio.sleep(0, len(live.subscriptions) == len(readers)), "five stream clients")
        async with api.client() as http:
            for seq in range(3000):
                live.update(scan(seq))
                if seq % 100 == 0:
                    await asyncio.sleep(0)  # let the server write what the sockets take
            started = time.monotonic()
            assert (await http.get("/healthz")).status_code == 200
            assert (await http.get("/api/v1/assets/saf1")).status_code == 200
            answered_s = time.monotonic() - started
        subscriptions = list(live.subscriptions)
        assert all(s.queue.qsize() <= LIVE_QUEUE for s in subscriptions)
        assert all(s.skipped > 0 for s in subscriptions), [s.skipped for s in subscriptions]
        assert answered_s < 10, f"other requests waited {answered_s:.1f} s behind the slow clients"
    finally:
        for sock in readers:
            sock.close()
    await eventually(
        lambda: asyncio.sleep(0, not live.subscriptions), "closed clients to leave the stream", within_s=30
    )

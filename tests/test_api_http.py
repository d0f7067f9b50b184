"""The API over real HTTP (uvicorn on a loopback port): keys and roles, errors, live values,
the live event stream, readiness and metrics. Live data is fed into the same LiveCache the
gateway's MQTT follower fills."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest_asyncio
import uvicorn

from ferrogate.api.app import create_app
from ferrogate.api.context import ApiContext
from ferrogate.api.keys import KeyStore, Role, new_key
from ferrogate.gateway.alarms import AlarmBook, AlarmEvaluator, Kind, LimitRule, Severity
from ferrogate.gateway.api_server import EmbeddedServer, listening_socket
from ferrogate.gateway.config_loader import load_plant
from ferrogate.gateway.live import LiveCache
from ferrogate.gateway.reading import Quality, Reading, ScanBatch
from tests.waiting import eventually

PLANT = Path(__file__).parent / "testcases" / "config" / "valid_minimal" / "plant.yaml"
KEYS = {role: new_key(f"test-{role.name}", role) for role in Role}


class Stack:
    def __init__(self) -> None:
        self.live = LiveCache()
        self.mqtt_reason: str | None = None

        async def mqtt_check() -> str | None:
            return self.mqtt_reason

        self.context = ApiContext(
            load_plant(PLANT),
            self.live,
            KeyStore([s for _, s in KEYS.values()]),
            {"mqtt": mqtt_check},
            lambda: "ferrogate_test_metric 1\n",
        )
        # bound here, port read back: no free port chosen first that another process could take
        self.listener = listening_socket("127.0.0.1")
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def feed(self, value: float | None, quality: Quality = Quality.GOOD, seq: int = 1) -> None:
        reason = None if quality is Quality.GOOD else "comm_error: test"
        self.live.update(
            ScanBatch(
                "minimal",
                "meter1",
                seq,
                time.time_ns(),
                [Reading("energy", value, "kWh", 1_795_000_000_000_000_000 + seq, quality, reason)],
                {"energy": "saf1"},
            )
        )


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def stack() -> AsyncIterator[Stack]:
    s = Stack()
    server = EmbeddedServer(
        uvicorn.Config(create_app(s.context), host="127.0.0.1", port=s.port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve(sockets=[s.listener]))
    await eventually(lambda: asyncio.sleep(0, server.started), "the API server to start", within_s=10)
    yield s
    server.should_exit = True
    await task


def key(role: Role) -> dict[str, str]:
    return {"X-API-Key": KEYS[role][0]}


async def test_health_is_open_and_api_needs_a_key(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        missing = await http.get("/api/v1/assets")
        assert missing.status_code == 401 and missing.json()["detail"]["error"] == "unauthorized"
        wrong = await http.get("/api/v1/assets", headers={"X-API-Key": "fgk_nope_nope"})
        assert wrong.status_code == 401 and wrong.json()["detail"]["message"] == "unknown API key"
        bearer = await http.get("/api/v1/assets", headers={"Authorization": f"Bearer {KEYS[Role.viewer][0]}"})
        assert bearer.status_code == 200


async def test_assets_live_values_and_unknown_asset(stack: Stack) -> None:
    stack.feed(1234.5)
    async with httpx.AsyncClient(base_url=stack.url, headers=key(Role.viewer)) as http:
        assets = (await http.get("/api/v1/assets")).json()
        assert [a["id"] for a in assets] == ["saf1"]
        assert assets[0]["meters"] == [
            {"role": "electricity_import", "device": "meter1", "point": "energy", "unit": "kWh"}
        ]
        assert assets[0]["devices"][0]["online"] is True
        live = (await http.get("/api/v1/assets/saf1/live")).json()
        point = live["points"][0]
        assert (point["value"], point["unit"], point["quality"], point["stale"]) == (1234.5, "kWh", "good", False)
        assert live["timezone"] == "Asia/Shanghai"
        unknown = await http.get("/api/v1/assets/nope/live")
        assert unknown.status_code == 404
        assert unknown.json()["detail"] == {"error": "unknown_asset", "message": "no asset 'nope'", "known": ["saf1"]}

        stack.feed(None, Quality.BAD, seq=2)  # a bad reading shows as bad, with its reason, never as 0
        point = (await http.get("/api/v1/assets/saf1/live")).json()["points"][0]
        assert (point["value"], point["quality"], point["reason"]) == (None, "bad", "comm_error: test")
        assert (await http.get("/api/v1/assets/saf1")).json()["devices"][0]["online"] is False


async def test_readiness_reports_the_reason(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url) as http:
        stack.mqtt_reason = None
        ok = await http.get("/readyz")
        assert ok.status_code == 200 and ok.json()["checks"] == {"mqtt": "ok"}
        stack.mqtt_reason = "not connected to the MQTT broker"
        down = await http.get("/readyz")
        assert down.status_code == 503
        assert down.json()["checks"] == {"mqtt": "not connected to the MQTT broker"}
        assert (await http.get("/metrics")).text.startswith("ferrogate_test_metric 1\n")


async def test_live_stream_filters_by_asset(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url, headers=key(Role.viewer), timeout=10) as http:
        assert (await http.get("/api/v1/live", params={"asset": "nope"})).status_code == 404
        async with http.stream("GET", "/api/v1/live", params={"asset": "saf1"}) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            await eventually(lambda: asyncio.sleep(0, bool(stack.live.subscriptions)), "the stream to subscribe")
            stack.feed(99.0, seq=7)
            async for line in stream.aiter_lines():
                if line.startswith("data:"):
                    event = json.loads(line[5:])
                    break
    assert event["device"] == "meter1" and event["seq"] == 7
    assert event["readings"][0]["v"] == 99.0 and event["readings"][0]["asset"] == "saf1"


def test_live_value_follows_the_scans_whatever_the_device_clock_says() -> None:
    """A device clock an hour behind the gateway's: the gateway's comm_error (stamped by the gateway)
    must not hide the device's next good value, nor a clock an hour ahead hide the comm_error; a
    replayed older scan still does not overwrite a newer one."""
    hour = 3600 * 10**9
    for device_offset in (-hour, hour):
        live = LiveCache()
        t_gw = 10 * hour

        def scan(seq: int, reading: Reading, live: LiveCache = live, t_gw: int = t_gw) -> None:
            live.update(ScanBatch("s", "d", seq, t_gw + seq * 10**9, [reading]))

        scan(1, Reading("p", 1.0, "kW", t_gw + 1 * 10**9 + device_offset))
        scan(2, Reading("p", None, "kW", t_gw + 2 * 10**9, Quality.BAD, "comm_error: refused"))
        assert live.get("d", "p")[0].quality is Quality.BAD, device_offset  # type: ignore[index]
        scan(3, Reading("p", 3.0, "kW", t_gw + 3 * 10**9 + device_offset))
        assert live.get("d", "p")[0].value == 3.0, device_offset  # type: ignore[index]
        scan(1, Reading("p", 1.0, "kW", t_gw + 1 * 10**9 + device_offset))  # replayed from a spool
        assert live.get("d", "p")[0].value == 3.0, device_offset  # type: ignore[index]


def test_slow_live_client_loses_oldest_not_the_gateway() -> None:
    live = LiveCache()
    sub = live.subscribe(maxsize=2)
    for seq in range(5):
        live.update(ScanBatch("s", "d", seq, seq, [Reading("p", 1.0, "kW", seq)]))
    assert sub.skipped == 3
    assert [sub.queue.get_nowait().seq for _ in range(2)] == [3, 4]


async def test_alarms_roles_and_acknowledgement(stack: Stack) -> None:
    book = stack.context.alarms
    alarm = book.raise_(
        Kind.limit_exceeded, "meter1.energy", Severity.warning, "test limit", time.time_ns(), 9.0, "kWh"
    )
    async with httpx.AsyncClient(base_url=stack.url) as http:
        page = (await http.get("/api/v1/alarms", params={"state": "active"}, headers=key(Role.viewer))).json()
        assert [a["id"] for a in page["items"]] == [alarm.id] and page["items"][0]["unit"] == "kWh"
        denied = await http.post(f"/api/v1/alarms/{alarm.id}/ack", headers=key(Role.viewer))
        assert denied.status_code == 403 and denied.json()["detail"]["error"] == "forbidden"
        acked = await http.post(f"/api/v1/alarms/{alarm.id}/ack", headers=key(Role.operator))
        assert acked.status_code == 200 and acked.json()["acked_by"] == "test-operator"
        missing = await http.post("/api/v1/alarms/999999/ack", headers=key(Role.admin))
        assert missing.status_code == 404 and missing.json()["detail"]["error"] == "unknown_alarm"
        bad_page = await http.get("/api/v1/alarms", params={"limit": 0}, headers=key(Role.viewer))
        assert bad_page.status_code == 422
        assert (await http.post("/api/v1/admin/reload", headers=key(Role.operator))).status_code == 403
        no_file = await http.post("/api/v1/admin/reload", headers=key(Role.admin))
        assert no_file.status_code == 409 and no_file.json()["detail"]["error"] == "no_plant_file"
    book.clear(Kind.limit_exceeded, "meter1.energy", time.time_ns())


def test_alarm_evaluator_raises_and_clears() -> None:
    book = AlarmBook()
    rule = LimitRule(point="tr1.oil", name="1# transformer oil temperature", high=85.0)
    evaluator = AlarmEvaluator(book, [rule], {"tr1": 1.0}, stale_after_scans=3)
    hot = ScanBatch("s", "tr1", 1, 0, [Reading("oil", 91.5, "degC", 0)])
    evaluator.on_batch(hot, now_ns=1_000_000_000)
    (alarm,) = book.active.values()
    assert (alarm.kind, alarm.source, alarm.value) == (Kind.limit_exceeded, "tr1.oil", 91.5)
    assert alarm.message == "1# transformer oil temperature: 91.5 degC above 85"
    evaluator.on_batch(ScanBatch("s", "tr1", 2, 0, [Reading("oil", 80.0, "degC", 0)]), now_ns=2_000_000_000)
    assert not book.active and book.history[0].cleared_ns == 2_000_000_000
    evaluator.check_stale(now_ns=6_000_000_000)  # 4 s without a scan at 1 s interval, limit 3 scans
    assert list(book.active) == [(Kind.stale_data, "tr1")]
    offline = ScanBatch("s", "tr1", 3, 0, [Reading("oil", None, "degC", 0, Quality.BAD, "comm_error: timeout")])
    evaluator.on_batch(offline, now_ns=7_000_000_000)
    assert set(book.active) == {(Kind.device_offline, "tr1")}

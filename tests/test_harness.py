"""The harness itself: the broker and the database answer, and a failure to start says why."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from ferrogate.gateway import services
from ferrogate.gateway.config import InfluxConfig
from ferrogate.gateway.influx import InfluxV1Client
from ferrogate.gateway.services import InfluxDB, Mosquitto, ServiceError, start_influxdb, start_mosquitto


async def test_broker_round_trip(mosquitto: Mosquitto) -> None:
    async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="harness-sub") as sub:
        await sub.subscribe("harness/#", qos=1)
        async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="harness-pub") as pub:
            await pub.publish("harness/x", b"hello", qos=1)
        message = await asyncio.wait_for(anext(aiter(sub.messages)), timeout=10)
    assert message.payload == b"hello"


async def test_database_round_trip(influxdb: InfluxDB, fresh_database: str) -> None:
    client = InfluxV1Client(InfluxConfig(url=influxdb.url, database=fresh_database))
    try:
        assert (await client.ping()).startswith("1.")
        await client.ensure_database()
        now_ns = time.time_ns()  # inside the default `raw` retention policy
        await client.write([f"harness,tag=a value=1.5 {now_ns}"])
        series = await client.query("SELECT value FROM harness")
    finally:
        await client.aclose()
    assert series[0].rows() == [{"time": now_ns, "value": 1.5}]


def test_broker_that_cannot_start_says_why(tmp_path: Path) -> None:
    with pytest.raises(ServiceError) as info:
        start_mosquitto(tmp_path / "broken", extra_config="no_such_option true\n")
    message = str(info.value)
    assert "mosquitto exited" in message
    assert "no_such_option" in message  # the broker's own complaint is passed on


def test_port_in_use_is_refused(tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB) -> None:
    with pytest.raises(ServiceError, match="already in use"):
        start_mosquitto(tmp_path / "second", port=mosquitto.port)
    with pytest.raises(ServiceError, match="already in use"):
        start_influxdb(tmp_path / "second-db", port=influxdb.port)


def taken_first(taken: list[int]) -> Iterator[int]:
    """`free_port` as on a busy box: the ports it hands out first are taken before the caller binds them."""
    yield from taken
    while True:
        yield socket_port()


def socket_port() -> int:
    with socket.socket() as s:
        s.bind((services.LOOPBACK, 0))
        return s.getsockname()[1]


def test_a_free_port_taken_before_the_start_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The race of free_port(): another process binds the port between choosing and starting. A
    listener that answers (the readiness check would take it for ours) and one that does not (the
    child fails with EADDRINUSE) both make the start try a new port; a fixed port is never moved."""
    with socket.socket() as other:
        other.bind((services.LOOPBACK, 0))
        other.listen()
        busy = other.getsockname()[1]
        ports = taken_first([busy, busy])
        monkeypatch.setattr(services, "free_port", lambda: next(ports))
        broker = start_mosquitto(tmp_path / "broker")
        try:
            assert broker.port != busy and services.port_accepts(broker.port)
        finally:
            broker.process.stop()
        ports = taken_first([busy])
        database = start_influxdb(tmp_path / "db")
        try:
            assert database.port != busy
            assert services._influx_ready(database.port)
        finally:
            database.process.stop()
        monkeypatch.undo()
        with pytest.raises(services.PortTaken):
            start_mosquitto(tmp_path / "fixed", port=busy)


def test_listener_ports_are_the_tcp_listeners() -> None:
    config = "listener 8883 127.0.0.1\ncafile /x\n  listener 9001\nlistener 0 /run/mosquitto.sock\n# listener 7\n"
    assert services.listener_ports(config) == [8883, 9001]


def test_a_broker_with_a_unix_socket_listener_starts(tmp_path: Path) -> None:
    """Readiness waits for every TCP listener the extra configuration adds, and not for a port 0 (a
    unix socket): the start returns with both of them open."""
    tcp = socket_port()
    path = tmp_path / "mqtt.sock"
    broker = start_mosquitto(
        tmp_path / "broker", extra_config=f"listener {tcp} {services.LOOPBACK}\nlistener 0 {path}\n"
    )
    try:
        assert services.port_accepts(tcp)
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(path))
    finally:
        broker.process.stop()

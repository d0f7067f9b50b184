"""The harness itself: the broker and the database answer, and a failure to start says why."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiomqtt
import pytest

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

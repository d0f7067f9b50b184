"""Hostile MQTT input on every topic the gateway subscribes to: random bytes, malformed and hostile
JSON (nesting bombs, integers of 10,000 digits, NaN), other schema versions, oversized messages,
payloads for other sites or devices. Ingest, the live cache and the energy books each reject them,
count them (`ferrogate_mqtt_rejected_total` in /metrics) and go on; a flood of junk does not starve
the real scans: every batch the collector published reaches InfluxDB, the live cache and the books.
The demo plant runs on its simulators with all roles, against the test broker and database."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator

import aiomqtt
import httpx
import pytest
import pytest_asyncio

from ferrogate.gateway.demo import Demo, DemoOptions
from ferrogate.gateway.payload import SCHEMA, status_topic, telemetry_topic
from ferrogate.gateway.services import InfluxDB, Mosquitto
from tests.conftest import DEMO_PLANT, plant_on_free_ports
from tests.waiting import eventually

MAX_BYTES = 64 * 1024  # the plant's mqtt.max_message_bytes here; a demo scan is about 2 KB
FLOOD = 1500
T = 1_795_000_000_000_000_000


def batch(**overrides: object) -> bytes:
    doc: dict[str, object] = {
        "schema": SCHEMA,
        "site": "demo",
        "device": "eaf1_meter",
        "seq": 1,
        "gateway_time_ns": T,
        "readings": [{"point": "power", "v": 1.0, "u": "kW", "q": "good", "t": T}],
    }
    doc.update(overrides)
    return json.dumps(doc).encode()


def undecodable() -> list[bytes]:
    """Messages no consumer can decode (each one is rejected by ingest, live cache and books)."""
    rng = random.Random(14)
    noise = [bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300))) for _ in range(20)]
    return [
        *noise,
        b"",
        b"{",
        b"null",
        b"[1, 2, 3]",
        b"\xff\xfe\x00{}",
        b"[" * 30_000 + b"]" * 30_000,  # nesting bomb under the size limit (json recurses)
        b'{"schema": "ferrogate/1", "seq": ' + b"9" * 10_000 + b"}",  # beyond Python's int digit limit
        batch(schema="ferrogate/2"),
        batch(schema="ferrogate/0"),
        batch(schema=None),
        batch(readings=[{"point": "power", "v": float("nan"), "u": "kW", "q": "good", "t": T}]),
        batch(readings=[{"point": "power", "v": 1.0, "u": "kW", "q": "good", "t": 2**70}]),  # not int64
        batch(readings=[{"point": "power", "v": "1", "u": "kW", "q": "good", "t": T}]),
        batch(readings=[{"point": "power", "v": 1.0, "u": "kW", "q": "excellent", "t": T}]),
        batch(readings="all of them"),
        batch(seq=True),
        batch(device=["eaf1_meter"]),
        batch(readings=[{"point": "p", "v": 1.0, "u": "kW", "q": "good", "t": T}] * 1000, pad="x" * MAX_BYTES),
    ]


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def demo(
    mosquitto: Mosquitto, influxdb: InfluxDB, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Demo]:
    database = "hostile_mqtt"
    plant = plant_on_free_ports(DEMO_PLANT, mosquitto, influxdb, database)
    assert plant.mqtt is not None
    plant = plant.model_copy(update={"mqtt": plant.mqtt.model_copy(update={"max_message_bytes": MAX_BYTES})})
    directory = tmp_path_factory.mktemp("hostile-mqtt")
    running = Demo(plant, DemoOptions(directory, api_port=0, speed=60, history_s=600, move_taken_ports=True))
    await running.start()
    gateway = running.gateway
    assert gateway is not None and gateway.ingest is not None and gateway.energy is not None
    await asyncio.wait_for(gateway.ingest.database_ready.wait(), 60)
    await asyncio.wait_for(gateway.energy.subscribed.wait(), 60)
    yield running
    await running.stop()


def counts(demo: Demo) -> dict[str, int]:
    gateway = demo.gateway
    assert gateway is not None and gateway.ingest is not None and gateway.energy is not None
    return {
        "ingest": gateway.ingest.rejected,
        "live": gateway.live_rejections.count,
        "energy": gateway.energy.rejections.count,
    }


async def publish_all(demo: Demo, messages: list[tuple[str, bytes]], qos: int = 1) -> None:
    assert demo.plant.mqtt is not None
    async with aiomqtt.Client("127.0.0.1", demo.plant.mqtt.port, protocol=aiomqtt.ProtocolVersion.V5) as client:
        for topic, payload in messages:
            await client.publish(topic, payload, qos=qos)


async def test_junk_on_every_subscribed_topic_is_rejected_counted_and_the_stream_goes_on(demo: Demo) -> None:
    mqtt = demo.plant.mqtt
    gateway = demo.gateway
    assert mqtt is not None and gateway is not None and gateway.ingest is not None and gateway.energy is not None
    root = mqtt.topic_root
    telemetry = telemetry_topic(root, "demo", "eaf1_meter")
    junk = undecodable()
    before = counts(demo)
    # telemetry reaches all three consumers; device status only ingest
    unknown_device = batch(device="no_such_device")
    foreign = batch(site="other_site")  # on this site's topic: ingest checks the origin
    status_junk = [b"online", b'{"schema": "ferrogate/1", "status": "maybe"}', *junk[:5]]
    await publish_all(
        demo,
        [(telemetry, m) for m in junk]
        + [(telemetry_topic(root, "demo", "no_such_device"), unknown_device), (telemetry, foreign)]
        + [(status_topic(root, "demo", "eaf1_meter"), m) for m in status_junk],
    )
    expected = {
        "ingest": len(junk) + 1 + len(status_junk),  # the unknown device is stored (ingest has no plant model)
        "live": len(junk) + 1,  # the live cache keeps the plant's devices only
        "energy": len(junk),  # the books ignore devices and points they do not account
    }

    async def all_counted() -> bool:
        now = counts(demo)
        return all(now[k] - before[k] >= expected[k] for k in expected)

    await eventually(all_counted, f"every consumer to reject its junk: {expected}")
    assert {k: counts(demo)[k] - before[k] for k in expected} == expected
    reasons = {
        "ingest": gateway.ingest.rejected_reasons,
        "live": gateway.live_rejections.by_reason,
        "energy": gateway.energy.rejections.by_reason,
    }
    # every one refused by the checks, none by a failure caught at the last resort
    assert not [r for by_reason in reasons.values() for r in by_reason if r.startswith("unexpected")], reasons
    assert not any(device == "no_such_device" for device, _ in gateway.live.latest)

    # the real scans keep coming: the three consumers take every batch published after the junk
    published = gateway.publisher.published if gateway.publisher else 0
    await eventually(lambda: asyncio.sleep(0, gateway.publisher.published >= published + 20), "twenty more scans")
    mark = gateway.publisher.published
    await eventually(
        lambda: asyncio.sleep(0, gateway.ingest.messages >= mark and gateway.energy.batches >= mark),
        "ingest and the books to take every published batch",
    )
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{demo.options.api_port}", timeout=10) as http:
        metrics = (await http.get("/metrics")).text
    for consumer in expected:
        assert f'ferrogate_mqtt_rejected_total{{consumer="{consumer}",reason="not JSON"}}' in metrics


async def test_a_flood_of_junk_does_not_starve_the_real_scans(demo: Demo) -> None:
    gateway = demo.gateway
    mqtt = demo.plant.mqtt
    assert gateway is not None and gateway.publisher is not None and gateway.ingest is not None
    assert mqtt is not None and gateway.energy is not None
    telemetry = telemetry_topic(mqtt.topic_root, "demo", "eaf1_meter")
    junk = undecodable()
    flood = [(telemetry, junk[i % 20]) for i in range(FLOOD)]  # the random-noise messages
    before = counts(demo)
    published_before = gateway.publisher.published
    await asyncio.gather(publish_all(demo, flood[: FLOOD // 2], qos=0), publish_all(demo, flood[FLOOD // 2 :], qos=1))
    await eventually(
        lambda: asyncio.sleep(0, counts(demo)["ingest"] - before["ingest"] >= FLOOD), "ingest to reject the flood"
    )
    during = gateway.publisher.published
    assert during > published_before, "the collector went on publishing during the flood"
    await eventually(
        lambda: asyncio.sleep(
            0, gateway.ingest.messages >= during and gateway.energy.batches >= during and gateway.live.batches >= during
        ),
        "every batch published during the flood to reach ingest, the books and the live cache",
    )
    assert counts(demo)["ingest"] - before["ingest"] == FLOOD  # QoS 0 and 1: the broker dropped none on loopback

"""The shipped broker configuration (deploy/mosquitto) on a real Mosquitto: authentication, the
role ACL (collectors publish only telemetry/status, nobody else writes) and the TLS listener."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from ferrogate.gateway.config import MqttConfig
from ferrogate.gateway.mqtt import make_client
from ferrogate.gateway.services import Mosquitto, free_port, start_mosquitto
from tests.conftest import ROOT
from tests.tlscerts import make_ca_and_server

USERS = {"collector": "c-pw", "ingest": "i-pw", "energy": "e-pw", "api": "a-pw"}
SHIPPED_DIR = "/etc/mosquitto/ferrogate/"


@pytest.fixture(scope="module")
def secured_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Mosquitto, int, Path]]:
    directory = tmp_path_factory.mktemp("secured")
    directory.chmod(0o755)
    etc = directory / "etc"
    etc.mkdir(mode=0o755)
    ca, _, _ = make_ca_and_server(etc)
    (etc / "acl").write_text((ROOT / "deploy/mosquitto/acl").read_text())
    passwd = etc / "passwd"
    for user, password in USERS.items():
        subprocess.run(
            ["mosquitto_passwd", "-b", *(["-c"] if not passwd.exists() else []), str(passwd), user, password],
            check=True,
            capture_output=True,
        )
    passwd.chmod(0o644)
    tls_port = free_port()
    shipped = (ROOT / "deploy/mosquitto/ferrogate.conf").read_text()
    # the shipped file as installed, but on free loopback ports and in the test's directory
    config = shipped.replace(SHIPPED_DIR, f"{etc}/").replace("listener 1883 127.0.0.1\n", "")
    config = config.replace("listener 8883 0.0.0.0", f"listener {tls_port} 127.0.0.1")
    assert f"listener {tls_port}" in config and "allow_anonymous false" in config
    broker = start_mosquitto(directory / "run", extra_config=config, anonymous=False)
    yield broker, tls_port, ca
    broker.process.stop()


def client(
    port: int, user: str | None, ident: str, tls: ssl.SSLContext | None = None, timeout: float = 10
) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1",
        port,
        username=user,
        password=USERS.get(user or ""),
        identifier=ident,
        protocol=aiomqtt.ProtocolVersion.V5,
        tls_context=tls,
        timeout=timeout,
    )


async def received(sub: aiomqtt.Client, marker: bytes) -> list[tuple[str, bytes]]:
    """(topic, payload) received until the marker payload arrives (proof delivery has caught up)."""
    got: list[tuple[str, bytes]] = []
    async with asyncio.timeout(10):
        async for message in sub.messages:
            got.append((str(message.topic), bytes(message.payload)))
            if message.payload == marker:
                break
    return got


async def test_anonymous_and_wrong_password_are_refused(secured_broker: tuple[Mosquitto, int, Path]) -> None:
    broker, _, _ = secured_broker
    with pytest.raises(aiomqtt.MqttError):
        async with client(broker.port, None, "anon"):
            pass
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(
            "127.0.0.1", broker.port, username="collector", password="wrong", identifier="bad-pw"
        ):
            pass


async def test_acl_lets_each_role_do_only_its_job(secured_broker: tuple[Mosquitto, int, Path]) -> None:
    broker, _, _ = secured_broker
    async with (
        client(broker.port, "api", "acl-watch") as watcher,
        client(broker.port, "ingest", "acl-ingest") as ingest,
    ):
        await watcher.subscribe("ferrogate/v1/#", qos=1)
        await ingest.subscribe("$share/ferrogate-ingest/ferrogate/v1/+/telemetry/+", qos=1)
        async with client(broker.port, "collector", "acl-collector") as collector:
            await collector.publish("ferrogate/v1/plant/telemetry/meter1", b"batch", qos=1)  # allowed
            await collector.publish("ferrogate/v1/plant/energy/kpi/day/plant/plant", b"forged", qos=1)  # denied
        async with client(broker.port, "ingest", "acl-ingest-writer") as writer:
            await writer.publish("ferrogate/v1/plant/telemetry/meter1", b"forged", qos=1)  # denied
        async with client(broker.port, "energy", "acl-energy") as energy:
            await energy.publish("ferrogate/v1/plant/energy/kpi/day/plant/plant", b"kpi", qos=1)  # allowed
            await energy.publish("ferrogate/v1/plant/cost/record/saf1", b"cost", qos=1)  # allowed: the cost books
            await energy.publish("ferrogate/v1/plant/status", b"forged", qos=1)  # denied: not energy's
        async with client(broker.port, "api", "acl-api") as api:
            await api.publish("ferrogate/v1/plant/energy/compliance/grade/SiMn", b"grade", qos=1)  # allowed
            await api.publish("ferrogate/v1/plant/energy/kpi/day/plant/plant", b"forged", qos=1)  # denied: the books'
        async with client(broker.port, "collector", "acl-marker") as marker:
            await marker.publish("ferrogate/v1/plant/status", b"marker", qos=1)  # allowed; ends the watch

        seen = await received(watcher, b"marker")
        got = await asyncio.wait_for(anext(aiter(ingest.messages)), timeout=10)
    # a denied publish is silently dropped by Mosquitto: check what subscribers actually got
    assert seen == [
        ("ferrogate/v1/plant/telemetry/meter1", b"batch"),
        ("ferrogate/v1/plant/energy/kpi/day/plant/plant", b"kpi"),
        ("ferrogate/v1/plant/cost/record/saf1", b"cost"),
        ("ferrogate/v1/plant/energy/compliance/grade/SiMn", b"grade"),
        ("ferrogate/v1/plant/status", b"marker"),
    ]
    assert (str(got.topic), got.payload) == ("ferrogate/v1/plant/telemetry/meter1", b"batch")


async def test_tls_listener_serves_with_the_ca(secured_broker: tuple[Mosquitto, int, Path]) -> None:
    _, tls_port, ca = secured_broker
    context = ssl.create_default_context(cafile=str(ca))
    async with client(tls_port, "api", "tls-sub", context) as sub:
        await sub.subscribe("ferrogate/v1/+/telemetry/+", qos=1)
        async with client(tls_port, "collector", "tls-pub", context) as pub:
            await pub.publish("ferrogate/v1/plant/telemetry/m", b"over tls", qos=1)
        message = await asyncio.wait_for(anext(aiter(sub.messages)), timeout=10)
    assert message.payload == b"over tls"
    with pytest.raises(aiomqtt.MqttError):  # plain MQTT on the TLS port fails
        async with client(tls_port, "api", "tls-plain", timeout=2):
            pass


async def test_gateway_client_reaches_the_tls_listener_from_its_plant_config(
    secured_broker: tuple[Mosquitto, int, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A remote collector's `mqtt.tls.ca_file` (deploy/README.md step 5): the gateway's own client
    verifies the broker against the site CA; without the CA it refuses the broker's certificate."""
    _, tls_port, ca = secured_broker
    monkeypatch.setenv("COLLECTOR_MQTT_PASSWORD", USERS["collector"])
    remote = {"host": "127.0.0.1", "port": tls_port, "username": "collector", "password_env": "COLLECTOR_MQTT_PASSWORD"}
    config = MqttConfig.model_validate({**remote, "tls": {"ca_file": str(ca)}})
    async with client(tls_port, "api", "tls-watch", ssl.create_default_context(cafile=str(ca))) as sub:
        await sub.subscribe("ferrogate/v1/+/telemetry/+", qos=1)
        async with make_client(config, "remote-collector") as pub:
            await pub.publish("ferrogate/v1/plant/telemetry/meter", b"from the edge box", qos=1)
        message = await asyncio.wait_for(anext(aiter(sub.messages)), timeout=10)
    assert message.payload == b"from the edge box"
    other_ca, _, _ = make_ca_and_server(tmp_path)  # some other site's CA
    untrusting = MqttConfig.model_validate({**remote, "tls": {"ca_file": str(other_ca)}})
    with pytest.raises(aiomqtt.MqttError, match="CERTIFICATE_VERIFY_FAILED"):
        async with make_client(untrusting, "remote-collector-no-ca"):
            pass


def test_tls_client_certificate_needs_its_key() -> None:
    with pytest.raises(ValueError, match="cert_file and key_file go together"):
        MqttConfig.model_validate({"tls": {"ca_file": "/etc/ca.crt", "cert_file": "/etc/client.crt"}})

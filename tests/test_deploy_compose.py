"""deploy/compose.yaml cannot run here (no container engine): lint it and check that its services,
ports, volumes and environment agree with the files it mounts; run its broker configuration and
the secrets script on a real Mosquitto."""

from __future__ import annotations

import asyncio
import os
import re
import ssl
import subprocess
from pathlib import Path

import aiomqtt
import yaml

from ferrogate.cli import _parser
from ferrogate.gateway.config_loader import load_plant
from ferrogate.gateway.services import free_port, start_mosquitto
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]


def test_yaml_lint_passes_for_every_deploy_file() -> None:
    result = subprocess.run(
        [str(ROOT / ".venv/bin/yamllint"), "-c", str(ROOT / ".yamllint.yaml"), "-f", "parsable", "deploy"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def bind_mounts(service: str) -> list[tuple[str, str]]:
    mounts = []
    for volume in SERVICES[service].get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            mounts.append((source, target))
    return mounts


def test_bind_mounted_files_exist_or_are_made_by_the_secrets_script() -> None:
    script = (DEPLOY / "make-broker-secrets.sh").read_text()
    for service in SERVICES:
        for source, _ in bind_mounts(service):
            if source.startswith("./secrets/"):
                assert "make-broker-secrets.sh secrets/mosquitto" in (DEPLOY / "compose.yaml").read_text()
                continue
            assert (DEPLOY / source).exists(), f"{service}: {source} is not in deploy/"
    # what the broker config reads from the secrets mount is what the script writes
    conf = (DEPLOY / "mosquitto/compose.conf").read_text()
    for name in re.findall(r"/etc/mosquitto/ferrogate/(\S+)", conf):
        if name != "acl":
            assert f'"$out/{name}"' in script or f"$out/{name}" in script, name
    assert ("./mosquitto/acl", "/etc/mosquitto/ferrogate/acl") in bind_mounts("mosquitto")


def test_ports_agree_with_broker_database_and_plant() -> None:
    conf = (DEPLOY / "mosquitto/compose.conf").read_text()
    listeners = {int(p) for p in re.findall(r"^listener (\d+)", conf, re.M)}
    plant = load_plant(DEPLOY / "compose/plant.yaml")
    assert plant.mqtt is not None and plant.influxdb is not None
    assert plant.mqtt.host == "mosquitto" and plant.mqtt.port in listeners
    published = {int(p.split(":")[-1]) for p in SERVICES["mosquitto"]["ports"]}
    assert published <= listeners and 8883 in published
    assert plant.influxdb.url == "http://influxdb:8086"
    assert any(p.endswith(":8086") for p in SERVICES["influxdb"]["ports"])
    assert SERVICES["grafana"]["environment"]["GRAFANA_INFLUX_URL"] == plant.influxdb.url
    # the same ACL and authentication as the Debian install
    shipped = (DEPLOY / "mosquitto/ferrogate.conf").read_text()
    for line in (
        "allow_anonymous false",
        "password_file /etc/mosquitto/ferrogate/passwd",
        "acl_file /etc/mosquitto/ferrogate/acl",
    ):
        assert line in conf and line in shipped


def test_environment_is_complete() -> None:
    example = dict(
        line.split("=", 1)
        for line in (DEPLOY / "compose.env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    text = (DEPLOY / "compose.yaml").read_text()
    for variable in re.findall(r"\$\{(\w+):\?", text):
        assert variable in example, f"{variable} is used by compose.yaml but not in compose.env.example"
    plant = load_plant(DEPLOY / "compose/plant.yaml")
    secrets = {plant.mqtt.password_env, plant.influxdb.password_env}
    assert secrets <= set(SERVICES["ferrogate"]["environment"])
    assert plant.influxdb.password_env in SERVICES["db-init"]["environment"]
    grafana_env = SERVICES["grafana"]["environment"]
    datasource = (DEPLOY / "grafana/provisioning/datasources/ferrogate.yaml").read_text()
    provider = (DEPLOY / "grafana/provisioning/dashboards/ferrogate.yaml").read_text()
    for variable in re.findall(r"\$\{(\w+)\}", datasource + provider):
        assert variable in grafana_env, f"grafana provisioning needs {variable}"
    dashboards_target = dict((t, s) for s, t in bind_mounts("grafana"))[grafana_env["FERROGATE_DASHBOARDS"]]
    assert dashboards_target == "./grafana/dashboards"


def test_commands_are_valid_ferrogate_command_lines() -> None:
    parser = _parser()
    for service in ("ferrogate", "db-init"):
        args = parser.parse_args(SERVICES[service]["command"])
        assert args.plant == Path("/opt/ferrogate/deploy/compose/plant.yaml")
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    for package_dir in ("ferrogate", "gateway", "drivers", "simulators", "api", "deploy"):
        assert f"COPY {package_dir} {package_dir}" in dockerfile


def make_secrets(out: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DEPLOY / "make-broker-secrets.sh"), str(out)], env=env, capture_output=True, text=True, timeout=120
    )


async def test_secrets_script_and_compose_broker_config_on_a_real_broker(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    env = {**os.environ, "FERROGATE_MQTT_PASSWORD": "pw-1", "API_MQTT_PASSWORD": "pw-2", "BROKER_HOSTNAME": "edge1"}
    made = await asyncio.to_thread(make_secrets, secrets, env)
    assert made.returncode == 0, made.stderr
    assert "passwd (2 users)" in made.stdout
    (secrets / "acl").write_text((DEPLOY / "mosquitto/acl").read_text())
    plain, tls = free_port(), free_port()
    conf = (DEPLOY / "mosquitto/compose.conf").read_text().replace("/etc/mosquitto/ferrogate/", f"{secrets}/")
    conf = conf.replace("persistence_location /mosquitto/data/\n", "")
    conf = conf.replace("listener 1883 0.0.0.0", "").replace("listener 8883 0.0.0.0", f"listener {tls} 127.0.0.1")
    broker = start_mosquitto(tmp_path / "run", port=plain, extra_config=conf, anonymous=False)
    try:
        context = ssl.create_default_context(cafile=str(secrets / "ca.crt"))
        async with aiomqtt.Client(
            "127.0.0.1", tls, username="api", password="pw-2", tls_context=context, identifier="c-sub"
        ) as sub:
            await sub.subscribe("ferrogate/v1/#", qos=1)
            async with aiomqtt.Client(
                "127.0.0.1", tls, username="ferrogate", password="pw-1", tls_context=context, identifier="c-pub"
            ) as pub:
                await pub.publish("ferrogate/v1/site/telemetry/dev", b"x", qos=1)
            message = await asyncio.wait_for(anext(aiter(sub.messages)), timeout=10)
        assert message.payload == b"x"
        # a second run keeps the CA and certificate (remote collectors already trust them)
        ca_before = (secrets / "ca.crt").read_bytes()
        again = await asyncio.to_thread(make_secrets, secrets, env)
        assert again.returncode == 0 and (secrets / "ca.crt").read_bytes() == ca_before
    finally:
        broker.process.stop()


def test_secrets_script_refuses_to_make_an_empty_password_file(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_MQTT_PASSWORD")}
    result = subprocess.run(
        [str(DEPLOY / "make-broker-secrets.sh"), str(tmp_path / "s")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and "accept nobody" in result.stderr

"""Secrets never reach a log line or an error message. The commands run as an operator runs them
(subprocesses, debug logging on) against a broker with passwords, an InfluxDB with authentication
and an OPC UA server that asks for a username and password: once with the right secrets, once with
wrong ones (so every failure path logs), and the API is called with a good and a wrong key. Then
every line they printed, and every API error body, is searched for every secret used."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote_plus

import httpx
import pytest
import pytest_asyncio
import yaml
from asyncua import ua
from asyncua.crypto.permission_rules import User, UserRole

from ferrogate.gateway.redact import MASK, RedactingFormatter, redact, remember
from ferrogate.gateway.services import InfluxDB, Mosquitto, free_port, start_influxdb, start_mosquitto
from ferrogate.simulators.opcua_server import AddressSpace, SimulatedOpcUaDevice, Variable
from tests.conftest import ROOT
from tests.field_devices import node, start_opcua
from tests.waiting import eventually

SPACE = AddressSpace("secured_meter", (Variable("P_kW", "power", "kW"), Variable("E_kWh", "energy", "kWh")))
OPCUA_USER = "gateway"
# distinctive values, so a hit in the output can only be the secret itself
RIGHT = {
    "SEC_MQTT_PASSWORD": "mqtt-Pw-5f1c7a",
    "SEC_INFLUX_PASSWORD": "influx-Pw-77a2e9",
    "SEC_INFLUX_ADMIN": "admin-Pw-0b9e31",
    "SEC_GRAFANA_PASSWORD": "grafana-Pw-c3d4f0",
    "SEC_OPCUA_PASSWORD": "opcua-Pw-9e8d2b",
}
WRONG = {
    "SEC_MQTT_PASSWORD": "wrong-mqtt-Pw-1d2e",
    "SEC_INFLUX_PASSWORD": "wrong-influx-Pw-3f4a",
    "SEC_OPCUA_PASSWORD": "wrong-opcua-Pw-5b6c",
}
WRONG_API_KEY = "fgk_0badc0de_wrong-Key-7e8f9a0b1c2d3e4f"


class OneUser:
    """The OPC UA server accepts one username with the right password."""

    def get_user(self, iserver, username=None, password=None, certificate=None) -> User | None:
        if (username, password) == (OPCUA_USER, RIGHT["SEC_OPCUA_PASSWORD"]):
            return User(role=UserRole.User, name=username)
        return None


@dataclass
class Site:
    plant: Path
    broker: Mosquitto
    influx: InfluxDB
    opcua: SimulatedOpcUaDevice
    keys_file: Path


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    base = tmp_path_factory.mktemp("secrets")
    passwd = base / "mosquitto.passwd"
    await asyncio.to_thread(
        subprocess.run, ["mosquitto_passwd", "-c", "-b", str(passwd), "gateway", RIGHT["SEC_MQTT_PASSWORD"]], check=True
    )
    passwd.chmod(0o644)
    broker = await asyncio.to_thread(
        start_mosquitto, base / "mosquitto", extra_config=f"password_file {passwd}\n", anonymous=False
    )
    influx = await asyncio.to_thread(start_influxdb, base / "influxdb", auth_enabled=True)

    async def ask_for_a_password(sim: SimulatedOpcUaDevice) -> None:
        sim.server.set_identity_tokens([ua.UserNameIdentityToken])
        sim.server.iserver.set_user_manager(OneUser())

    opcua = await start_opcua(SPACE, {"power": 4200.0, "energy": 99.5}, configure=ask_for_a_password)
    await opcua.publish(1_795_000_000_000_000_000)
    keys_file = base / "api-keys.jsonl"
    doc = {
        "site": {"id": "secrets", "name": "secrets test"},
        "mqtt": {"port": broker.port, "username": "gateway", "password_env": "SEC_MQTT_PASSWORD"},
        "influxdb": {
            "url": influx.url,
            "database": "secrets",
            "username": "ferrogate",
            "password_env": "SEC_INFLUX_PASSWORD",
            "flush_interval_s": 0.2,
            "max_retries": 0,
        },
        "devices": [
            {
                "id": "plc",
                "protocol": "opcua",
                "endpoint": opcua.endpoint,
                "username": OPCUA_USER,
                "password_env": "SEC_OPCUA_PASSWORD",
                "scan_interval_s": 0.5,
                "timeout_s": 5,
                "reconnect_max_s": 1,
                "points": [
                    {"id": "power", "node": node("DEV", "P_kW"), "unit": "kW"},
                    {"id": "energy", "node": node("DEV", "E_kWh"), "unit": "kWh"},
                ],
            }
        ],
        "assets": [
            {"id": "whg1", "type": "waste_heat_generator", "name": "WHG", "meters": {"generation_power": "plc.power"}}
        ],
        "api": {"keys_file": str(keys_file)},
    }
    plant = base / "plant.yaml"
    plant.write_text(yaml.safe_dump(doc))
    yield Site(plant, broker, influx, opcua, keys_file)
    await opcua.stop()
    await asyncio.to_thread(influx.process.stop)
    await asyncio.to_thread(broker.process.stop)


def environment(secrets: dict[str, str]) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": "", **RIGHT, **secrets}


async def ferrogate(*args: str, secrets: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """One command to its end; in a thread, so the OPC UA server in this event loop can answer it."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "ferrogate", "-v", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env=environment(secrets or {}),
    )


class Running:
    """`ferrogate -v run` in the background, its output (stdout and stderr) collected in a file."""

    def __init__(self, plant: Path, log: Path, api_port: int, secrets: dict[str, str]) -> None:
        self.log = log
        self._out = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ferrogate", "-v", "run", "--plant", str(plant), "--api-port", str(api_port)],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=environment(secrets),
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def until_logged(self, *texts: str) -> None:
        async def logged() -> bool:
            assert self.process.poll() is None, f"ferrogate run ended early:\n{self.output()[-3000:]}"
            return all(t in self.output() for t in texts)

        await eventually(logged, f"the run to log {texts}", within_s=90)

    def stop(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self._out.close()
        return self.output()


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for run in started:
        if run.process.poll() is None:
            run.stop()


async def good_readings(site: Site) -> int:
    async with httpx.AsyncClient(base_url=site.influx.url, auth=("admin", RIGHT["SEC_INFLUX_ADMIN"])) as http:
        answer = await http.get(
            "/query", params={"db": "secrets", "q": "SELECT count(value) FROM reading WHERE quality = 'good'"}
        )
    series = answer.json()["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


async def test_no_secret_in_any_log_line_or_error_message(site: Site, runs: list[Running], tmp_path: Path) -> None:
    outputs: dict[str, str] = {}
    init = await ferrogate(
        "db-init",
        "--plant",
        str(site.plant),
        "--admin-password-env",
        "SEC_INFLUX_ADMIN",
        "--grafana-password-env",
        "SEC_GRAFANA_PASSWORD",
    )
    assert init.returncode == 0, init.stderr
    outputs["db-init"] = init.stdout + init.stderr
    made = await ferrogate("api-key", "create", "--name", "ops", "--role", "viewer", "--file", str(site.keys_file))
    assert made.returncode == 0, made.stderr
    # the one place a key is shown, by design: printed once when it is made
    api_key = next(line.split()[-1] for line in made.stdout.splitlines() if "fgk_" in line)
    outputs["api-key create (stderr)"] = made.stderr

    # 1. everything right: readings reach InfluxDB; the API answers a good key and refuses a wrong one
    port = free_port()
    right = Running(site.plant, tmp_path / "right.log", port, {})
    runs.append(right)

    async def stored() -> bool:
        assert right.process.poll() is None, right.output()[-3000:]
        return await good_readings(site) == 2  # both points (one source time: the server publishes once)

    await eventually(stored, "good readings in InfluxDB", within_s=90)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as api:
        good = await api.get("/api/v1/assets/whg1/live", headers={"X-API-Key": api_key})
        assert good.status_code == 200 and good.json()["points"][0]["quality"] == "good"
        wrong = await api.get("/api/v1/assets/whg1/live", headers={"X-API-Key": WRONG_API_KEY})
        bearer = await api.get("/api/v1/assets", headers={"Authorization": f"Bearer {WRONG_API_KEY}"})
    assert (wrong.status_code, bearer.status_code) == (401, 401)
    outputs["API error bodies"] = wrong.text + bearer.text
    outputs["run, right secrets"] = right.stop()

    assert MASK in outputs["run, right secrets"]  # asyncua logs the plain-text password it sends: masked

    # 2. every password wrong: the broker, the database and the device refuse, and each says so
    wrong = Running(site.plant, tmp_path / "wrong.log", free_port(), WRONG)
    runs.append(wrong)
    await wrong.until_logged("Not authorized", "BadUserAccessDenied", '"HTTP/1.1 401 Unauthorized"')
    outputs["run, wrong passwords"] = wrong.stop()

    probe = await ferrogate("probe", "--plant", str(site.plant), "--device", "plc", secrets=WRONG)
    assert probe.returncode == 1 and "BadUserAccessDenied" in probe.stdout + probe.stderr
    outputs["probe, wrong OPC UA password"] = probe.stdout + probe.stderr

    # the key, and its secret part alone (fgk_<id>_<secret>; the secret may itself hold "_")
    secrets = {*RIGHT.values(), *WRONG.values(), api_key, WRONG_API_KEY, api_key.split("_", 2)[2]}
    leaks = [
        f"{where}: {line.strip()}"
        for where, text in outputs.items()
        for line in text.splitlines()
        if any(secret in line for secret in secrets)
    ]
    assert not leaks, "secrets in the output:\n" + "\n".join(leaks)
    assert sum(len(text.splitlines()) for text in outputs.values()) > 100  # debug logging did run


def test_the_log_formatter_masks_a_secret_in_each_form_it_takes() -> None:
    secret = "pä ss'w0rd/1"
    remember(secret)
    record = logging.LogRecord(
        "test", logging.INFO, __file__, 1, "sent %r to %s", (secret.encode(), f"/q?p={quote_plus(secret)}"), None
    )
    line = RedactingFormatter("%(message)s").format(record)
    assert line == f'sent b"{MASK}" to /q?p={MASK}'  # the apostrophe makes Python quote bytes with "
    remember("abc")  # too short to mask without masking innocent text
    assert redact("abc") == "abc"

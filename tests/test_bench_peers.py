"""The bench's peer plumbing, without the peers themselves (they are installed only by
`python -m bench --peers`): CPU time counts a contender's children, the Node-RED flow sends the
planned reads, the ThingsBoard connector reads the same blocks, and its telemetry is counted per
device scan."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.harness import cpu_times
from bench.peers.node_red import flow
from bench.peers.thingsboard import count_tb_gateway, modbus_connector
from bench.peers.toolchain import Unavailable, run_step
from bench.workloads import find

CHILD_CPU_S = 0.3


def test_cpu_time_counts_a_childs_cpu() -> None:
    # the parent spends almost nothing itself; its child burns CHILD_CPU_S and is reaped
    burn = f"import time\nwhile time.process_time() < {CHILD_CPU_S}: pass"
    parent_code = (
        "import subprocess, sys\n"
        f"subprocess.run([sys.executable, '-c', {burn!r}], check=True)\n"
        "print('done', flush=True)\n"
        "sys.stdin.readline()\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None and parent.stdout.readline() == "done\n"
        user, system = cpu_times(parent.pid)
        assert user + system >= CHILD_CPU_S - 0.02  # clock ticks are 10 ms
    finally:
        parent.communicate("\n", timeout=30)


def test_node_red_flow_reads_each_device_as_planned() -> None:
    workload = find("plant10x100", "smoke")
    endpoints = [(5000 + i, 1) for i in range(workload.devices)]
    nodes = flow(workload, endpoints, broker_port=1883)
    reads = [n for n in nodes if n["type"] == "modbus-read"]
    planned = workload.requests()
    assert len(reads) == workload.devices * len(planned)
    first = [n for n in reads if n["id"].startswith("d000-")]
    assert [(int(n["adr"]), int(n["quantity"])) for n in first] == [(r["start"], r["count"]) for r in planned]
    assert all(n["wires"] == [["d000-shape"], []] for n in first)
    assert len([n for n in nodes if n["type"] == "modbus-client"]) == workload.devices  # a port each
    shape = next(n for n in nodes if n["id"] == "d000-shape")
    assert shape["wires"] == [["out"]] and "nodered/d000" in shape["func"]


def test_node_red_units_share_one_client() -> None:
    workload = find("units10x100", "smoke")
    endpoints = [(5020, unit) for unit in range(1, workload.devices + 1)]
    nodes = flow(workload, endpoints, broker_port=1883)
    clients = [n for n in nodes if n["type"] == "modbus-client"]
    assert len(clients) == 1 and clients[0]["parallelUnitIdsAllowed"] is False
    units = sorted(int(n["unitid"]) for n in nodes if n["type"] == "modbus-read")
    assert units == list(range(1, workload.devices + 1))


def test_tb_connector_reads_the_whole_block_per_device() -> None:
    workload = find("units20x100f")
    config = modbus_connector(workload, [(5020, unit) for unit in range(1, 21)])
    slaves = config["master"]["slaves"]  # type: ignore[index]
    assert [s["unitId"] for s in slaves] == list(range(1, 21))
    (series,) = slaves[0]["timeseries"]
    assert series["address"] == "0-199" and series["objectsCount"] == 2 and series["type"] == "32float"
    # 200 registers in reads of at most 100: the two reads the planner makes too
    assert -(-200 // series["maxRegistersPerRequest"]) == len(workload.requests()) == 2


def test_tb_telemetry_counts_each_device_scan() -> None:
    payload = json.dumps(
        {
            "d000": [{"ts": 1, "values": {"p0": 1.5, "p2": None}}, {"ts": 2, "values": {"p0": 2.5, "p2": 3.5}}],
            "d001": [{"ts": 1, "values": {"p0": 7}}],
        }
    ).encode()
    assert sorted(count_tb_gateway(payload)) == [("d000", 2, 0, None), ("d000", 2, 1, None), ("d001", 1, 0, None)]


def test_a_failed_install_step_says_why(tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match=r"npm install of Node-RED failed with exit code 3 \(see .*install.log\)"):
        fails = [sys.executable, "-c", "print('no registry'); raise SystemExit(3)"]
        run_step(fails, tmp_path, "npm install of Node-RED")
    assert "no registry" in (tmp_path / "install.log").read_text()

"""OPC UA collection end to end: every contender collects the farm's Double nodes (all changing once
a second, bench/opcua_farm.py) by subscription or by polling and publishes with QoS 1 to the bench's
Mosquitto; an MQTT subscriber counts the distinct changes that arrive.

Contenders, each in `subscribe` and in `poll` mode:
- `ferrogate`: the real `python -m ferrogate run --role collect` process with a plant file as a site
  writes it (disk spool, QoS 1, waiting for a consumer), a device per server, 1 s scans;
- `floor`: bench/floor_opcua.py, asyncua's high-level subscription (or one Read per second) feeding
  paho, without features.

A change is one node's value of one second: the farm's values say which (node, second) they are, so
repeats (a subscribed point whose notification has not come yet is published with its last value)
are not counted twice, and `lost` is every (node, second) the farm wrote in the window that never
arrived (counted after a grace period).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import (
    ROOT,
    Scan,
    Subscriber,
    child_env,
    peak_rss_mb,
    py_spy,
    settle,
    snapshot,
    spawn_farm,
    stop_process,
    until_delivering,
    window_figures,
)
from bench.modbus_e2e import INTERVAL_S, Timing, site_plant
from bench.opcua_farm import which_change
from ferrogate.gateway.payload import decode_batch

GRACE_S = 3.0  # after the window: the window's last changes are still on their way (next scan + publish)
MODES = ("subscribe", "poll")


@dataclass(frozen=True)
class OpcUaWorkload:
    name: str
    nodes: int
    servers: int  # the nodes split evenly over this many server processes (one asyncua server is too slow)

    def split(self) -> list[tuple[int, int]]:
        """(first node index, nodes) of each server."""
        per, extra = divmod(self.nodes, self.servers)
        out, first = [], 0
        for k in range(self.servers):
            n = per + (k < extra)
            out.append((first, n))
            first += n
        return out


WORKLOADS = {
    "smoke": [OpcUaWorkload("opcua200", 200, 1)],
    # opcua2k: the size of the first OPC UA measurement, which one server process keeps up with
    "quick": [OpcUaWorkload("opcua2k", 2_000, 1), OpcUaWorkload("opcua10k", 10_000, 4)],
    "full": [OpcUaWorkload("opcua2k", 2_000, 1), OpcUaWorkload("opcua10k", 10_000, 4)],
}


class OpcUaFarm:
    """The server processes of a workload (bench/opcua_farm.py), started side by side."""

    def __init__(self, workload: OpcUaWorkload, log: Path, timeout_s: float = 600) -> None:
        self.workload = workload
        self.log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.procs = [
            spawn_farm(["bench.opcua_farm", str(n), "--first", str(first)], self.log) for first, n in workload.split()
        ]
        self.servers: list[dict[str, object]] = []
        for proc in self.procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()  # a few seconds per 1,000 nodes: asyncua builds them one by one
            if not line:
                self.stop()
                raise RuntimeError(f"an OPC UA farm server of {workload.name} did not start (see {log})")
            self.servers.append(json.loads(line))

    def figures(self) -> dict[str, object]:
        """The servers' writing: cycles skipped and late and CPU seconds so far, the seconds written
        since the last call."""
        out: dict[str, object] = {"skipped": 0, "late": 0, "max_write_s": 0.0, "cpu_s": 0.0, "seconds": Counter()}
        for proc in self.procs:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write("\n")
            proc.stdin.flush()
            f = json.loads(proc.stdout.readline())
            out["skipped"] += f["skipped"]
            out["late"] += f["late"]
            out["max_write_s"] = max(out["max_write_s"], f["max_write_s"])
            out["cpu_s"] += f["cpu_s"]
            out["seconds"].update({s: len(self.servers[self.procs.index(proc)]["nodes"]) for s in f["seconds"]})
        return out

    def stop(self) -> None:
        for proc in self.procs:
            stop_process(proc)
        self.log.close()


@dataclass
class Changes:
    """Distinct (node, second) changes seen at the subscriber, filled in paho's thread."""

    changes: int = 0
    points: int = 0  # values arrived, repeats included
    last: dict[int, int] = field(default_factory=dict)  # node -> latest second seen
    by_second: Counter[int] = field(default_factory=Counter)

    def add(self, values: list[float]) -> None:
        last, by_second = self.last, self.by_second
        self.points += len(values)
        for value in values:
            node, second = which_change(value)
            if second > last.get(node, 0):
                last[node] = second
                by_second[second] += 1
                self.changes += 1

    def ferrogate(self, payload: bytes) -> Iterable[Scan]:
        batch = decode_batch(payload)
        values = [r.value for r in batch.readings if r.value is not None]
        self.add(values)
        return ((None, len(batch.readings), len(batch.readings) - len(values), batch.gateway_time_ns),)

    def floor(self, payload: bytes) -> Iterable[Scan]:
        values = json.loads(payload)
        good = [v for v in values if v is not None]
        self.add(good)
        return ((None, len(values), len(values) - len(good), None),)


BASELINE = "FERROGATE_BENCH_BASELINE"  # a PYTHONPATH under which `ferrogate` is another version


class Contender:
    def __init__(self, name: str, mode: str) -> None:
        self.name, self.mode = name, mode
        self.prefix = "floor/" if name == "floor" else "ferrogate/v1/bench/telemetry/"

    def env(self) -> dict[str, str]:
        env = child_env()
        if self.name == "baseline":  # the other version first, `bench` still importable
            env["PYTHONPATH"] = os.pathsep.join([os.environ[BASELINE], str(ROOT)])
        return env

    def command(self, farm: OpcUaFarm, broker_port: int, work: Path) -> list[str]:
        timeout_s = 30.0  # creating thousands of monitored items on an asyncua server takes seconds
        if self.name != "floor":
            devices = [
                {
                    "id": f"plc{k}",
                    "protocol": "opcua",
                    "endpoint": server["endpoint"],
                    "mode": self.mode,
                    "scan_interval_s": INTERVAL_S,
                    "timeout_s": timeout_s,
                    "points": [
                        {"id": f"n{first + n}", "node": node, "unit": "kW"} for n, node in enumerate(server["nodes"])
                    ],
                }
                for k, (server, (first, _)) in enumerate(zip(farm.servers, farm.workload.split(), strict=True))
            ]
            plant = site_plant(devices, broker_port, work)
            return [sys.executable, "-m", "ferrogate", "run", "--plant", str(plant), "--role", "collect"]
        config = {
            "broker_port": broker_port,
            "interval_s": INTERVAL_S,
            "mode": self.mode,
            "timeout_s": timeout_s,
            "servers": farm.servers,
        }
        path = work / "floor-opcua.json"
        path.write_text(json.dumps(config))
        return [sys.executable, "-m", "bench.floor_opcua", str(path)]


def contenders() -> list[Contender]:
    """ferrogate and the floor in each mode; with FERROGATE_BENCH_BASELINE set, also `baseline`:
    ferrogate as imported under that PYTHONPATH (before/after a change, in one run)."""
    names = ("ferrogate", "baseline", "floor") if os.environ.get(BASELINE) else ("ferrogate", "floor")
    return [Contender(name, mode) for mode in MODES for name in names]


def measure(
    contender: Contender,
    farm: OpcUaFarm,
    subscriber: Subscriber,
    broker_port: int,
    work: Path,
    t: Timing,
    profile_to: Path | None = None,
) -> dict[str, object]:
    work.mkdir(parents=True, exist_ok=True)
    changes = Changes()
    counts = subscriber.watch(contender.prefix, changes.floor if contender.name == "floor" else changes.ferrogate)
    log = open(work / f"{contender.name}.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        contender.command(farm, broker_port, work),
        cwd=ROOT,
        env=contender.env(),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    servers = len(farm.servers)
    try:
        until_delivering(
            proc,
            lambda: len(counts.devices) >= servers and changes.changes > 0,
            t.start_timeout_s,
            f"{contender.name} ({contender.mode}): changes from all {servers} servers",
            work / f"{contender.name}.log",
        )
        settle(t.warmup_s)
        start = farm.figures()  # the servers' writing from here on
        before = _snapshot(proc.pid, changes, len(counts.latencies_s))
        sampler = py_spy(proc.pid, profile_to, t.window_s) if profile_to is not None else None
        time.sleep(t.window_s - (time.time() - before["wall"]))
        after = _snapshot(proc.pid, changes, len(counts.latencies_s))
        written = farm.figures()
        peak = peak_rss_mb(proc.pid)
        time.sleep(GRACE_S)  # the window's last changes arrive
        lost = sum(max(0, n - changes.by_second[s]) for s, n in written["seconds"].items())
        if sampler is not None:
            sampler.wait(timeout=60)
        latencies = counts.latencies_s[before["latency_index"] : after["latency_index"]]
    finally:
        stop_process(proc)
        log.close()
        subscriber.prefixes.pop(contender.prefix, None)
    figures = window_figures(before, after, latencies)
    wall, cpu = after["wall"] - before["wall"], figures["cpu_s"]
    n = after["changes"] - before["changes"]
    return {
        "contender": contender.name,
        "mode": contender.mode,
        "workload": farm.workload.name,
        "nodes": farm.workload.nodes,
        "servers": servers,
        **figures,
        "changes": n,
        "changes_per_s": n / wall,
        "points_per_s": (after["points"] - before["points"]) / wall,
        "changes_per_cpu_s": n / cpu if cpu else None,
        "changes_written": sum(written["seconds"].values()),
        "changes_lost": lost,
        # the servers' writing kept up? (nodes x seconds due; cycles skipped or late in the window)
        "changes_due": farm.workload.nodes * round(wall / INTERVAL_S),
        "server_cycles_skipped": written["skipped"] - start["skipped"],
        "server_cycles_late": written["late"] - start["late"],
        "server_cpu_share": (written["cpu_s"] - start["cpu_s"]) / wall,  # the farm's processes together
        "bad_points": counts.bad,
        "undecodable": counts.undecodable,
        "peak_rss_mb": peak,
    }


def _snapshot(pid: int, changes: Changes, latency_index: int) -> dict[str, float]:
    return snapshot(pid, changes=changes.changes, points=changes.points, latency_index=latency_index)

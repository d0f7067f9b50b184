"""Modbus collection end to end: each contender polls the workload's simulator farm at 1 s scans and
publishes with QoS 1 to the bench's Mosquitto; an MQTT subscriber counts the points that arrive.

Contenders:
- `ferrogate`: the real `python -m ferrogate run --role collect` process, configured as a site is
  (deploy/plants/site-template.yaml): disk spool, QoS 1, waiting for a consumer (the bench's
  subscriber answers the ingest probe), payload as it ships;
- `floor`: bench/floor_modbus.py, the same libraries without features;
- peers (bench/peers.py) when installed, in the quick and full profiles.

Each is measured the same way, one after the other on the same farm: started, left to warm up, then
over a window aligned half a scan past a wall-clock second (so whole scans fall inside): points
arrived, CPU seconds of its process (user + sys), simulator requests, scans that never arrived.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import yaml

from bench.harness import (
    ROOT,
    Counter,
    Counts,
    Farm,
    Subscriber,
    child_env,
    count_ferrogate,
    count_json_array,
    cpu_times,
    peak_rss_mb,
    percentile,
    stop_process,
    wait_for,
)
from bench.workloads import Workload

INTERVAL_S = 1.0
SITE = "bench"
TOPIC_ROOT = "ferrogate/v1"


@dataclass(frozen=True)
class Timing:
    warmup_s: float
    window_s: int
    start_timeout_s: float = 90.0


class Contender:
    name = ""
    prefix = ""

    def command(self, workload: Workload, farm: Farm, broker_port: int, work: Path) -> list[str]:
        raise NotImplementedError

    def counter(self) -> Counter:
        return count_json_array


class Ferrogate(Contender):
    name = "ferrogate"
    prefix = f"{TOPIC_ROOT}/{SITE}/telemetry/"

    def command(self, workload: Workload, farm: Farm, broker_port: int, work: Path) -> list[str]:
        plant = {
            "site": {"id": SITE, "name": "bench", "timezone": "UTC"},
            "mqtt": {
                "host": "127.0.0.1",
                "port": broker_port,
                "topic_root": TOPIC_ROOT,
                "spool": {"path": str(work / "mqtt-spool.sqlite"), "max_mib": 512},
            },
            "devices": [
                {
                    "id": f"d{i:03d}",
                    "protocol": "modbus",
                    "host": "127.0.0.1",
                    "port": port,
                    "unit": unit,
                    "scan_interval_s": INTERVAL_S,
                    "points": workload.plant_points(),
                }
                for i, (port, unit) in enumerate(farm.endpoints)
            ],
        }
        path = work / "plant.yaml"
        # block-style YAML as a site writes it (PyYAML reads a one-line flow document far slower)
        path.write_text(yaml.safe_dump(plant, sort_keys=False))
        return [sys.executable, "-m", "ferrogate", "run", "--plant", str(path), "--role", "collect"]

    def counter(self) -> Counter:
        return count_ferrogate


class Floor(Contender):
    name = "floor"
    prefix = "floor/"

    def command(self, workload: Workload, farm: Farm, broker_port: int, work: Path) -> list[str]:
        requests = workload.requests()
        links: dict[int, list[dict[str, object]]] = {}
        for i, (port, unit) in enumerate(farm.endpoints):
            links.setdefault(port, []).append({"id": f"d{i:03d}", "unit": unit, "requests": requests})
        config = {
            "broker_port": broker_port,
            "topic_root": "floor",
            "interval_s": INTERVAL_S,
            "links": [{"port": port, "devices": devices} for port, devices in links.items()],
        }
        path = work / "floor.json"
        path.write_text(json.dumps(config))
        return [sys.executable, "-m", "bench.floor_modbus", str(path)]


def start(
    contender: Contender, workload: Workload, farm: Farm, broker_port: int, work: Path, log: IO[bytes]
) -> subprocess.Popen:
    """The contender's process on the workload's farm, its output into `log`."""
    return subprocess.Popen(
        contender.command(workload, farm, broker_port, work),
        cwd=ROOT,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def measure(
    contender: Contender,
    workload: Workload,
    farm: Farm,
    subscriber: Subscriber,
    broker_port: int,
    work: Path,
    t: Timing,
    profile_to: Path | None = None,
) -> dict[str, object]:
    """One contender on one workload; `profile_to`: also sample its stacks over the window with
    py-spy (collapsed stacks, for the profile summary), which costs the box a little CPU."""
    work.mkdir(parents=True, exist_ok=True)
    counts = subscriber.watch(contender.prefix, contender.counter())
    log = open(work / f"{contender.name}.log", "ab")  # noqa: SIM115 - closed below
    proc = start(contender, workload, farm, broker_port, work, log)
    try:
        wait_for(
            lambda: len(counts.devices) >= workload.devices or proc.poll() is not None,
            t.start_timeout_s,
            f"{contender.name}: data from all {workload.devices} devices",
        )
        if proc.poll() is not None:
            raise RuntimeError(f"{contender.name} exited with {proc.returncode}: see {work / contender.name}.log")
        time.sleep(t.warmup_s)
        time.sleep(1.5 - time.time() % 1.0)  # half a scan past a wall-clock second
        before = _snapshot(proc.pid, counts, farm)
        sampler = _py_spy(proc.pid, t.window_s, profile_to) if profile_to is not None else None
        time.sleep(t.window_s - (time.time() - before["wall"]))
        after = _snapshot(proc.pid, counts, farm)
        peak = peak_rss_mb(proc.pid)
        if sampler is not None:
            sampler.wait(timeout=60)
        latencies = counts.latencies_s[before["latency_index"] : after["latency_index"]]
    finally:
        stop_process(proc)
        log.close()
        subscriber.prefixes.pop(contender.prefix, None)
    wall = after["wall"] - before["wall"]
    user, system = after["user"] - before["user"], after["sys"] - before["sys"]
    cpu = user + system
    points = after["points"] - before["points"]
    messages = after["messages"] - before["messages"]
    expected_scans = workload.devices * round(wall / INTERVAL_S)
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    return {
        "contender": contender.name,
        "workload": workload.name,
        "window_s": round(wall, 3),
        "points_per_s": points / wall,
        "cpu_s": cpu,
        "user_cpu_s": user,
        "sys_cpu_s": system,
        "cpu_share": cpu / wall,
        "sys_share": system / cpu if cpu else None,  # of the process's CPU time: the kernel's part
        "points_per_cpu_s": points / cpu if cpu else None,
        "requests_per_scan": (after["requests"] - before["requests"]) / messages if messages else None,
        "missed_scans": max(0, expected_scans - messages),
        "expected_scans": expected_scans,
        "bad_points": after["bad"] - before["bad"],
        "undecodable": counts.undecodable,
        "peak_rss_mb": peak,
        "latency_p50_ms": None if p50 is None else 1000 * p50,
        "latency_p99_ms": None if p99 is None else 1000 * p99,
    }


def _snapshot(pid: int, counts: Counts, farm: Farm) -> dict[str, float]:
    user, system = cpu_times(pid)
    return {
        "wall": time.time(),
        "user": user,
        "sys": system,
        "points": counts.points,
        "messages": counts.messages,
        "bad": counts.bad,
        "requests": farm.requests(),
        "latency_index": len(counts.latencies_s),
    }


def _py_spy(pid: int, seconds: int, out: Path) -> subprocess.Popen:
    py_spy = Path(sys.executable).with_name("py-spy")
    if not py_spy.exists():
        raise RuntimeError("--py-spy needs py-spy in the virtualenv: .venv/bin/pip install py-spy==0.4.3")
    out.parent.mkdir(parents=True, exist_ok=True)
    sample = ["--duration", str(seconds), "--rate", "200", "--nonblocking", "--format", "raw", "--output", str(out)]
    return subprocess.Popen(
        [str(py_spy), "record", "--pid", str(pid), *sample],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

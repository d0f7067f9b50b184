"""Modbus collection end to end: each contender polls the workload's simulator farm at 1 s scans and
publishes with QoS 1 to the bench's Mosquitto; an MQTT subscriber counts the points that arrive.

Contenders:
- `ferrogate`: the real `python -m ferrogate run --role collect` process, configured as a site is
  (deploy/plants/site-template.yaml): disk spool, QoS 1, waiting for a consumer (the bench's
  subscriber answers the ingest probe), payload as it ships;
- `floor`: bench/floor_modbus.py, the same libraries without features;
- peers (bench/peers/: Node-RED, ThingsBoard IoT Gateway) with `--peers`.

Each is measured the same way, one after the other on the same farm: started, left to warm up, then
over a window aligned half a scan past a wall-clock second (so whole scans fall inside): points
arrived, CPU seconds of its process (user + sys), simulator requests, scans that never arrived.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from contextlib import AbstractContextManager, nullcontext
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
    peak_rss_mb,
    py_spy,
    settle,
    snapshot,
    stop_process,
    until_delivering,
    window_figures,
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
    label = ""  # its column in the table: "x <label>", ferrogate's ratio to it (peers only)
    prefix = ""

    def command(self, workload: Workload, farm: Farm, broker_port: int, work: Path) -> list[str]:
        raise NotImplementedError

    def counter(self) -> Counter:
        return count_json_array

    def supports(self, workload: Workload) -> str | None:
        """None, or why this contender cannot be configured for `workload` (it is then skipped)."""
        return None

    def cwd(self, work: Path) -> Path:
        return ROOT

    def env(self, work: Path) -> dict[str, str]:
        return child_env()

    def beside(self, broker_port: int) -> AbstractContextManager[object]:
        """What the contender needs from the other side while it runs (in the bench's process, so
        its CPU is not the contender's): nothing, unless a peer expects its platform to answer."""
        return nullcontext()


class Ferrogate(Contender):
    name = "ferrogate"
    prefix = f"{TOPIC_ROOT}/{SITE}/telemetry/"

    def command(self, workload: Workload, farm: Farm, broker_port: int, work: Path) -> list[str]:
        devices = [
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
        ]
        path = site_plant(devices, broker_port, work)
        return [sys.executable, "-m", "ferrogate", "run", "--plant", str(path), "--role", "collect"]

    def counter(self) -> Counter:
        return count_ferrogate


def site_plant(devices: list[dict[str, object]], broker_port: int, work: Path) -> Path:
    """A plant file as a site writes it (deploy/plants/site-template.yaml): disk spool, QoS 1 to the
    bench's broker; `work/plant.yaml`."""
    plant = {
        "site": {"id": SITE, "name": "bench", "timezone": "UTC"},
        "mqtt": {
            "host": "127.0.0.1",
            "port": broker_port,
            "topic_root": TOPIC_ROOT,
            "spool": {"path": str(work / "mqtt-spool.sqlite"), "max_mib": 512},
        },
        "devices": devices,
    }
    path = work / "plant.yaml"
    # block-style YAML as a site writes it (PyYAML reads a one-line flow document far slower)
    path.write_text(yaml.safe_dump(plant, sort_keys=False))
    return path


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
        cwd=contender.cwd(work),
        env=contender.env(work),
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
    platform = contender.beside(broker_port)
    platform.__enter__()
    proc = start(contender, workload, farm, broker_port, work, log)
    try:
        until_delivering(
            proc,
            lambda: len(counts.devices) >= workload.devices,
            t.start_timeout_s,
            f"{contender.name}: data from all {workload.devices} devices",
            work / f"{contender.name}.log",
        )
        settle(t.warmup_s)
        before = _snapshot(proc.pid, counts, farm)
        sampler = py_spy(proc.pid, profile_to, t.window_s) if profile_to is not None else None
        time.sleep(t.window_s - (time.time() - before["wall"]))
        after = _snapshot(proc.pid, counts, farm)
        peak = peak_rss_mb(proc.pid)
        if sampler is not None:
            sampler.wait(timeout=60)
        latencies = counts.latencies_s[before["latency_index"] : after["latency_index"]]
    finally:
        stop_process(proc)
        platform.__exit__(None, None, None)
        log.close()
        subscriber.prefixes.pop(contender.prefix, None)
    figures = window_figures(before, after, latencies)
    wall, cpu = after["wall"] - before["wall"], figures["cpu_s"]
    points = after["points"] - before["points"]
    messages = after["messages"] - before["messages"]
    expected_scans = workload.devices * round(wall / INTERVAL_S)
    return {
        "contender": contender.name,
        "workload": workload.name,
        **figures,
        "points_per_s": points / wall,
        "points_per_cpu_s": points / cpu if cpu else None,
        "requests_per_scan": (after["requests"] - before["requests"]) / messages if messages else None,
        "missed_scans": max(0, expected_scans - messages),
        "expected_scans": expected_scans,
        "bad_points": after["bad"] - before["bad"],
        "undecodable": counts.undecodable,
        "peak_rss_mb": peak,
    }


def _snapshot(pid: int, counts: Counts, farm: Farm) -> dict[str, float]:
    return snapshot(
        pid,
        points=counts.points,
        messages=counts.messages,
        bad=counts.bad,
        requests=farm.requests(),
        latency_index=len(counts.latencies_s),
    )

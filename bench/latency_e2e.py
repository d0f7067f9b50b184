"""Latency end to end: a value changes in a simulator; when is it on MQTT, queryable in InfluxDB, and
in the API's live stream? With the plant's whole load running (plant100x100: 10,000 points/s).

The real processes: the simulator farm (bench/farm.py) in its own process, Mosquitto, InfluxDB, and
`python -m ferrogate run` with its default roles (collect, ingest, api) in one process, as a site
runs it: disk spool, QoS 1, acknowledgement only once durable, 1 s scans.

Point p001 (uint32) of every device is a clock: it changes every CLOCK_PERIOD_S, each device at
its own phase, and its value is the time of its last change (ms mod 2**32), so each observer knows
when the simulator changed what it sees (bench/farm.py, `change_time_ms`). Observers, in the bench's
process:
- MQTT: a subscriber on the telemetry topics; the first arrival of each new value;
- InfluxDB: `SELECT last(value)` of every device's p001 every POLL_S (so the figure includes up to
  POLL_S of polling plus the query's own time);
- API: the Server-Sent Events stream `/api/v1/live` (an asset per device holding its p001; the stream
  asks for those assets only), read as it arrives.
The 1 s scan is part of every figure: a change waits for the next scan (half a scan on average).

Sustained rate: the points the subscriber counted minus the points InfluxDB holds, at the window's
start and end: a backlog that grows means ingest does not keep up with 10,000 points/s.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable
from pathlib import Path

import httpx
import yaml

from bench.farm import change_time_ms
from bench.harness import (
    ROOT,
    Farm,
    Scan,
    Subscriber,
    child_env,
    count_ferrogate,
    cpu_times,
    peak_rss_mb,
    percentile,
    stop_process,
    wait_for,
)
from bench.workloads import Workload, find
from ferrogate.api.keys import Role, append_key, new_key
from ferrogate.gateway.payload import decode_batch
from ferrogate.gateway.ports import free_port

SITE = "bench"
ROOT_TOPIC = "ferrogate/v1"
CLOCK_POINT = "p001"  # uint32 in the plant layout (bench/workloads.py)
CLOCK_PERIOD_S = 1.3  # not a multiple of the 1 s scan: each device's change drifts over the scan's phase
POLL_S = 0.1
DATABASE = "latency"
QUANTILES = (0.5, 0.95, 0.99)


class Latencies:
    """First sighting of each (device, value) by one observer: seconds after the simulator's change."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}
        self.samples: list[tuple[float, float]] = []  # (when observed, latency s)
        self.lock = threading.Lock()

    def observe(self, device: str, value: float | None, now: float) -> None:
        if value is None:
            return
        key = int(value)
        with self.lock:
            if self.seen.get(device) == key:
                return
            first = device not in self.seen
            self.seen[device] = key
        if not first:  # the first value seen may have changed long before the observer started
            self.samples.append((now, now - change_time_ms(key, round(now * 1000)) / 1000))

    def window(self, start: float, end: float) -> list[float]:
        return [latency for when, latency in self.samples if start <= when < end]


def plant(work: Path, workload: Workload, farm: Farm, broker_port: int, influx_port: int, keys_file: Path) -> Path:
    devices = [f"d{i:03d}" for i in range(len(farm.endpoints))]
    doc = {
        "site": {"id": SITE, "name": "bench", "timezone": "UTC"},
        "mqtt": {
            "port": broker_port,
            "topic_root": ROOT_TOPIC,
            "spool": {"path": str(work / "mqtt-spool.sqlite"), "max_mib": 512},
        },
        "influxdb": {
            "url": f"http://127.0.0.1:{influx_port}",
            "database": DATABASE,
            "spool": {"path": str(work / "influx-spool.sqlite"), "max_mib": 512},
            "dead_letter_path": str(work / "influx-dead-letter.jsonl"),
        },
        "api": {"keys_file": str(keys_file)},
        "devices": [
            {
                "id": device,
                "protocol": "modbus",
                "host": "127.0.0.1",
                "port": port,
                "unit": unit,
                "scan_interval_s": 1.0,
                "points": workload.plant_points(),
            }
            for device, (port, unit) in zip(devices, farm.endpoints, strict=True)
        ],
        "assets": [
            {
                "id": f"a{device}",
                "type": "auxiliary",
                "name": device,
                "meters": {"active_power": f"{device}.{CLOCK_POINT}"},
            }
            for device in devices
        ],
    }
    path = work / "plant.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def influx_query(port: int, query: str) -> list[dict]:
    params = urllib.parse.urlencode({"db": DATABASE, "q": query})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/query?{params}", timeout=30) as resp:
        return json.loads(resp.read())["results"][0].get("series", [])


def influx_points(port: int) -> int:
    series = influx_query(port, "SELECT count(quality) FROM reading")
    return series[0]["values"][0][1] if series else 0


def poll_influx(port: int, out: Latencies, stop: threading.Event, cycles: list[tuple[float, float]]) -> None:
    """`cycles`: (asked, seconds since the previous ask): how much of InfluxDB's figure is the polling."""
    query = f"SELECT last(value) FROM reading WHERE point = '{CLOCK_POINT}' AND time > now() - 1m GROUP BY device"
    previous = None
    while not stop.wait(POLL_S):
        asked = time.time()
        if previous is not None:
            cycles.append((asked, asked - previous))
        previous = asked
        try:
            series = influx_query(port, query)
        except OSError:
            continue
        for s in series:
            out.observe(s["tags"]["device"], s["values"][0][1], asked)


def read_stream(api_port: int, key: str, assets: list[str], out: Latencies, stop: threading.Event) -> None:
    """The live stream of the clock points' assets only: the whole plant's readings as JSON would
    cost the API, and this process, more than what is measured."""
    url = f"http://127.0.0.1:{api_port}/api/v1/live"
    params = [("asset", asset) for asset in assets]
    with httpx.stream("GET", url, params=params, headers={"X-API-Key": key}, timeout=None) as resp:
        for line in resp.iter_lines():
            if stop.is_set():
                return
            if not line.startswith("data:"):
                continue
            now = time.time()
            event = json.loads(line[5:])
            for reading in event["readings"]:
                if reading["point"] == CLOCK_POINT:
                    out.observe(event["device"], reading["v"], now)


def measure(
    work: Path, workload_name: str, broker_port: int, influx_port: int, warmup_s: float, window_s: float
) -> dict[str, object]:
    """`workload_name`: a `plant` layout of bench/workloads.py (plant100x100: 10,000 points/s)."""
    work.mkdir(parents=True, exist_ok=True)
    workload = find(workload_name)
    clock = ("--clock-point", CLOCK_POINT, "--clock-period", str(CLOCK_PERIOD_S))
    farm = Farm(workload.name, "quick", work / "farm.log", clock)
    keys_file = work / "api-keys.jsonl"
    key, stored = new_key("bench", Role.viewer)
    append_key(keys_file, stored)
    api_port = free_port()
    plant_file = plant(work, workload, farm, broker_port, influx_port, keys_file)
    command = [sys.executable, "-m", "ferrogate", "run", "--plant", str(plant_file), "--api-port", str(api_port)]
    observers = {"mqtt": Latencies(), "influxdb": Latencies(), "api": Latencies()}
    poll_cycles: list[tuple[float, float]] = []
    mqtt_latencies = observers["mqtt"]
    subscriber = Subscriber(broker_port, "")
    prefix = f"{ROOT_TOPIC}/{SITE}/telemetry/"

    def count_and_observe(payload: bytes) -> Iterable[Scan]:
        batch = decode_batch(payload)
        now = time.time()
        for r in batch.readings:
            if r.point == CLOCK_POINT:
                mqtt_latencies.observe(batch.device, r.value, now)
        return count_ferrogate(payload)

    counts = subscriber.watch(prefix, count_and_observe)
    log = open(work / "ferrogate.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(command, cwd=ROOT, env=child_env(), stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        devices = len(farm.endpoints)
        # a plant file of 10,000 points takes a while to load on a busy box
        wait_for(lambda: len(counts.devices) >= devices or proc.poll() is not None, 300, "data from every device")
        if proc.poll() is not None:
            raise RuntimeError(f"ferrogate exited with {proc.returncode}: see {work / 'ferrogate.log'}")
        wait_for(lambda: _api_up(api_port), 60, "the API")
        assets = [f"a{device}" for device in sorted(counts.devices)]
        threads = [
            threading.Thread(
                target=poll_influx, args=(influx_port, observers["influxdb"], stop, poll_cycles), daemon=True
            ),
            threading.Thread(target=read_stream, args=(api_port, key, assets, observers["api"], stop), daemon=True),
        ]
        for thread in threads:
            thread.start()
        time.sleep(warmup_s)
        start, user0, sys0 = time.time(), *cpu_times(proc.pid)
        points0 = counts.points
        backlog_start = _backlog(points0, influx_port)
        time.sleep(window_s)
        end, user1, sys1 = time.time(), *cpu_times(proc.pid)
        points1 = counts.points
        backlog_end = _backlog(points1, influx_port)
        peak = peak_rss_mb(proc.pid)
    finally:
        stop.set()
        stop_process(proc)
        log.close()
        subscriber.close()
        farm.stop()
    result: dict[str, object] = {
        "workload": workload.name,
        "window_s": round(end - start, 3),
        "points_per_s": (points1 - points0) / (end - start),
        "cpu_share": (user1 - user0 + sys1 - sys0) / (end - start),
        "peak_rss_mb": peak,
        "backlog_start_points": backlog_start,
        "backlog_end_points": backlog_end,
        "poll_s": POLL_S,
    }
    cycles = [cycle for asked, cycle in poll_cycles if start <= asked < end]
    for q in QUANTILES:  # the poll's own cycle (POLL_S + the query), part of InfluxDB's figure
        value = percentile(cycles, q)
        result[f"influxdb_poll_cycle_p{round(q * 100)}_ms"] = None if value is None else 1000 * value
    for name, latencies in observers.items():
        values = latencies.window(start, end)
        result[f"{name}_changes"] = len(values)
        for q in QUANTILES:
            value = percentile(values, q)
            result[f"{name}_p{round(q * 100)}_ms"] = None if value is None else 1000 * value
    return result


def _backlog(arrived: int, influx_port: int) -> int:
    """Points the subscriber has seen on MQTT that InfluxDB does not hold yet (both count from the
    start: the database is this run's own). Up to a scan or two is in flight at any time."""
    return arrived - influx_points(influx_port)


def _api_up(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False

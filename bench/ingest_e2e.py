"""Ingest end to end: a burst of telemetry on the bench's Mosquitto, taken by each contender into a
real InfluxDB (gateway/services.py), for a sweep of batch sizes.

- `ferrogate`: `python -m ferrogate run --role ingest` as a site configures it (shared subscription,
  acknowledgement only once the points are durable, disk spool and dead-letter file configured);
- `floor`: bench/floor_ingest.py (paho -> line protocol -> /write; acknowledged on receipt);
- `baseline` (with `--baseline TREE`): the same ferrogate command, run from another source tree (e.g.
  main's, `git archive main | tar -x -C TREE`), to measure a change before and after in one run.

The bench publishes the burst (ferrogate/2 batches of 100 readings, QoS 1) once the contender is
subscribed, and measures from the burst's first message until InfluxDB counts every point: the
contender's CPU (user + sys from /proc), its peak RSS, and the wall time.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import yaml

from bench.harness import ROOT, child_env, cpu_times, peak_rss_mb, py_spy, stop_process, stop_sampler, wait_for
from ferrogate.gateway.payload import SCHEMA_V2, encode_batch, ingest_probe_topic, telemetry_topic
from ferrogate.gateway.reading import Reading, ScanBatch

SITE = "bench"
POINTS_PER_BATCH = 100
NO_MATCHING_SUBSCRIBERS = 16
T0 = (time.time_ns() // 86_400_000_000_000 - 1) * 86_400_000_000_000  # yesterday 00:00 UTC: within retention


def burst(root: str, total_points: int, devices: int = 100) -> list[tuple[str, bytes]]:
    """Pre-encoded messages: `devices` devices, one scan per second each, 100 float readings."""
    out = []
    for n in range(total_points // POINTS_PER_BATCH):
        device, second = f"d{n % devices:03d}", n // devices
        t = T0 + second * 1_000_000_000
        readings = [Reading(f"p{i:03d}", 1000.0 + n + i / 8, "kW", t) for i in range(POINTS_PER_BATCH)]
        payload = encode_batch(ScanBatch(SITE, device, n, t, readings), SCHEMA_V2)
        out.append((telemetry_topic(root, SITE, device), payload))
    return out


def influx_count(port: int, database: str) -> int:
    query = urllib.parse.urlencode({"db": database, "q": "SELECT count(quality) FROM reading"})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/query?{query}", timeout=30) as resp:
        doc = json.loads(resp.read())
    series = doc["results"][0].get("series")
    return series[0]["values"][0][1] if series else 0


def create_database(port: int, database: str) -> None:
    data = urllib.parse.urlencode({"q": f'CREATE DATABASE "{database}"'}).encode()
    urllib.request.urlopen(f"http://127.0.0.1:{port}/query", data=data, timeout=30).read()


class Publisher:
    """A QoS 1 MQTT v5 publisher in the bench's process; knows the PUBACK reason of each message."""

    def __init__(self, broker_port: int) -> None:
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{time.time_ns()}", protocol=mqtt.MQTTv5
        )
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.reasons: dict[int, int] = {}
        self.client.on_publish = lambda c, u, mid, reason, props: self.reasons.__setitem__(mid, reason.value)
        self.client.connect("127.0.0.1", broker_port)
        self.client.loop_start()

    def subscribed(self, topic: str) -> bool:
        """True when the broker has a subscriber for `topic` (MQTT v5 PUBACK reason)."""
        info = self.client.publish(topic, b"probe", qos=1)
        wait_for(lambda: info.mid in self.reasons, 10, "PUBACK of the probe")
        return self.reasons.pop(info.mid) != NO_MATCHING_SUBSCRIBERS

    def publish(self, messages: list[tuple[str, bytes]]) -> None:
        for topic, payload in messages:
            self.client.publish(topic, payload, qos=1)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def ferrogate_command(work: Path, root: str, broker_port: int, influx_port: int, database: str, batch: int) -> list:
    plant = {
        "site": {"id": SITE, "name": "bench", "timezone": "UTC"},
        "mqtt": {"port": broker_port, "topic_root": root, "client_id_prefix": root.replace("/", "-")},
        "influxdb": {
            "url": f"http://127.0.0.1:{influx_port}",
            "database": database,
            "batch_size": batch,
            "spool": {"path": str(work / "influx-spool.sqlite"), "max_mib": 512},
            "dead_letter_path": str(work / "influx-dead-letter.jsonl"),
        },
        "devices": [
            {
                "id": "d000",
                "protocol": "modbus",
                "host": "127.0.0.1",
                "port": 1,
                "points": [{"id": "p000", "address": 0, "unit": "kW"}],
            }
        ],
    }
    path = work / "plant.yaml"
    path.write_text(yaml.safe_dump(plant, sort_keys=False))
    return [sys.executable, "-m", "ferrogate", "run", "--plant", str(path), "--role", "ingest"]


def floor_command(work: Path, root: str, broker_port: int, influx_port: int, database: str, batch: int) -> list:
    config = {
        "broker_port": broker_port,
        "topic_root": root,
        "influx_port": influx_port,
        "database": database,
        "batch_size": batch,
    }
    path = work / "floor-ingest.json"
    path.write_text(json.dumps(config))
    return [sys.executable, "-m", "bench.floor_ingest", str(path)]


COMMANDS = {"ferrogate": ferrogate_command, "floor": floor_command, "baseline": ferrogate_command}


def contender_env(contender: str, baseline: Path | None) -> tuple[dict[str, str], Path]:
    """The environment and working directory of a contender's process: the baseline imports every
    ferrogate module from its own tree (the shared venv's editable install follows FERROGATE_WORKTREE)."""
    env = child_env()
    if contender != "baseline":
        return env, ROOT
    if baseline is None:
        raise RuntimeError("the baseline contender needs a source tree (--baseline TREE)")
    env["FERROGATE_WORKTREE"] = env["PYTHONPATH"] = str(baseline)
    return env, baseline


@contextlib.contextmanager
def running(
    contender: str,
    batch: int,
    broker_port: int,
    influx_port: int,
    work: Path,
    root: str,
    database: str,
    baseline: Path | None = None,
) -> Iterator[tuple[subprocess.Popen, Publisher]]:
    """The contender's process, subscribed (its probe answered), and a publisher beside it."""
    work.mkdir(parents=True, exist_ok=True)
    create_database(influx_port, database)
    env, cwd = contender_env(contender, baseline)
    log = open(work / f"{contender}.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        COMMANDS[contender](work, root, broker_port, influx_port, database, batch),
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    publisher = Publisher(broker_port)
    try:
        probe = ingest_probe_topic(root, SITE)
        wait_for(lambda: proc.poll() is not None or publisher.subscribed(probe), 90, f"{contender} to subscribe")
        if proc.poll() is not None:
            raise RuntimeError(f"{contender} exited with {proc.returncode}: see {work / contender}.log")
        time.sleep(1.0)  # let it settle after subscribing
        yield proc, publisher
    finally:
        publisher.close()
        stop_process(proc)
        log.close()


def measure(
    contender: str,
    batch: int,
    total_points: int,
    broker_port: int,
    influx_port: int,
    work: Path,
    run: int,
    profile_to: Path | None = None,
    baseline: Path | None = None,
) -> dict[str, object]:
    """One contender, one batch size; `profile_to`: also sample it with py-spy over the burst;
    `baseline`: the source tree the `baseline` contender runs from."""
    root = f"ingest{run}/ferrogate/v1"  # a topic root per run: no earlier session shares its messages
    database = f"bench_{contender}_{run}"
    messages = burst(root, total_points)
    with running(contender, batch, broker_port, influx_port, work, root, database, baseline) as (proc, publisher):
        user0, sys0 = cpu_times(proc.pid)
        wall0 = time.monotonic()
        sampler = py_spy(proc.pid, profile_to) if profile_to is not None else None
        publisher.publish(messages)
        wait_for(lambda: influx_count(influx_port, database) >= total_points, 600, f"{contender}: every point stored")
        wall = time.monotonic() - wall0
        user, system = cpu_times(proc.pid)
        peak = peak_rss_mb(proc.pid)
        if sampler is not None:
            stop_sampler(sampler)
    cpu = user - user0 + system - sys0
    return {
        "contender": contender,
        "batch_size": batch,
        "points": total_points,
        "wall_s": wall,
        "points_per_s": total_points / wall,
        "cpu_s": cpu,
        "user_s": user - user0,
        "sys_s": system - sys0,
        "points_per_cpu_s": total_points / cpu if cpu else None,
        "peak_rss_mb": peak,
    }


def sustained(rate: int, seconds: int, broker_port: int, influx_port: int, work: Path) -> dict[str, object]:
    """ferrogate's ingest (default batch size) fed `rate` points/s, paced, for `seconds`: the backlog
    (points published minus points InfluxDB holds) sampled every second; a backlog that grows over
    the run is a rate ingest does not sustain."""
    root, database, batch = "sustained/ferrogate/v1", "bench_sustained", 5000
    messages = burst(root, rate * seconds)
    per_second = rate // POINTS_PER_BATCH
    backlog: list[int] = []
    with running("ferrogate", batch, broker_port, influx_port, work, root, database) as (proc, publisher):
        user0, sys0 = cpu_times(proc.pid)
        start = time.monotonic()
        for second in range(seconds):
            publisher.publish(messages[second * per_second : (second + 1) * per_second])
            published = (second + 1) * per_second * POINTS_PER_BATCH
            time.sleep(max(0.0, start + second + 1 - time.monotonic()))
            backlog.append(published - influx_count(influx_port, database))
        wall = time.monotonic() - start
        user, system = cpu_times(proc.pid)
        peak = peak_rss_mb(proc.pid)
    half = len(backlog) // 2
    # the second half's median against the first's (their middles `half` seconds apart): ~0 when it keeps up
    growth = (statistics.median(backlog[half:]) - statistics.median(backlog[:half])) / half if half else None
    return {
        "rate_points_s": rate,
        "seconds": seconds,
        "cpu_share": (user - user0 + system - sys0) / wall,
        "backlog_points": backlog,
        "backlog_growth_points_s": growth,
        "peak_rss_mb": peak,
    }

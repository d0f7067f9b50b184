"""Group center load: many plants' telemetry into the center's broker, 1, 2 and 4 ingest workers on
the shared subscription, one InfluxDB; all on this machine (started here in a temporary directory).

    .venv/bin/python bench/bench_group.py [--plants 20] [--points 2000] [--devices 20] [--seconds 20]
                                          [--workers 1,2,4] [--json]

The plants are a load generator, not 20 gateways: every second it publishes, for each plant, one
scan batch per device (`--points` / `--devices` readings each) in the real payload format
(the schema a collector publishes by default, `mqtt.payload_schema`: gateway/payload.py encode_batch,
encoded once and restamped each second) on the
plant's own topic, QoS 1, one MQTT connection per plant (as each plant's bridge has one). The
workers are real processes: `python -m ferrogate run --plant center.yaml --role ingest --worker-id wN`.

Figures per worker count (nothing is asserted):
- offered points/s over the measured window (after `--warmup` s), stored points/s (every point of
  the window over its seconds, or until the last of them is answered by InfluxDB if later), and how long
  after the load stopped the last point was stored;
- end-to-end lag: for each second of data, from when its batches began to be published until
  InfluxDB answers every point of it (polled every 0.25 s, which adds InfluxDB CPU): p50, p99, max;
- CPU at the center per 10,000 points/s stored: CPU-seconds of the workers, Mosquitto and InfluxDB
  (from /proc) over the window, divided by the window and by (stored points/s / 10,000), i.e. cores.
The load generator and this poller run on the same cores: the box's total is what limits here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bench.harness import cpu_times
from ferrogate.gateway.config import InfluxConfig, MqttConfig
from ferrogate.gateway.influx import InfluxV1Client
from ferrogate.gateway.mqtt import has_subscribers, make_client
from ferrogate.gateway.payload import encode_batch, ingest_probe_topic, telemetry_topic
from ferrogate.gateway.reading import Reading, ScanBatch
from ferrogate.gateway.services import InfluxDB, Mosquitto, start_influxdb, start_mosquitto

NS = 1_000_000_000


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children (the other suites' reading)."""
    return sum(cpu_times(pid))


def pid_of(service: Mosquitto | InfluxDB) -> int:
    assert service.process.proc is not None
    return service.process.proc.pid


STAMP = 1_000_000_000_000_000_000  # a 19-digit placeholder time, replaced by each second's (same length)
# what a plant's collector publishes unless its file says otherwise
PLANT_SCHEMA = MqttConfig.model_fields["payload_schema"].default


def plant_templates(root: str, plant: int, devices: int, per_device: int) -> list[tuple[str, bytes]]:
    """One encoded scan batch per device of a plant, stamped `STAMP`: each second restamps them (the
    generator must not spend the box's CPU re-encoding JSON; the values repeat from second to second)."""
    site = f"plant{plant:03d}"
    out = []
    for d in range(devices):
        device = f"dev{d:03d}"
        readings = [Reading(f"p{i:04d}", 1000.0 + d + i / 8, "kWh", STAMP) for i in range(per_device)]
        batch = ScanBatch(site, device, 0, STAMP, readings, {})
        out.append((telemetry_topic(root, site, device), encode_batch(batch, PLANT_SCHEMA)))
    return out


class Run:
    def __init__(self, args: argparse.Namespace, broker: Mosquitto, database: InfluxDB, directory: Path, workers: int):
        self.args = args
        self.broker = broker
        self.database = database
        self.workers = workers
        self.name = f"bench_w{workers}"
        self.center_file = directory / f"{self.name}.yaml"
        self.expected_per_second = args.plants * args.points
        self.slices: dict[int, float | None] = {}  # second (ns) -> wall time its last point was stored
        self.publishing: dict[int, float] = {}  # second (ns) -> wall time its batches began to be published
        self.root = f"{self.name}/ferrogate/v1"  # a topic root per run: earlier runs' sessions take no share

    def write_center(self) -> None:
        doc = {
            "site": {"id": "center", "name": "bench center"},
            "mqtt": {"port": self.broker.port, "topic_root": self.root},
            "influxdb": {"url": self.database.url, "database": self.name, "batch_size": 5000},
            "group": {"plants": [{"site": f"plant{p:03d}", "name": f"plant {p}"} for p in range(self.args.plants)]},
        }
        self.center_file.write_text(yaml.safe_dump(doc))

    def spawn_workers(self) -> list[subprocess.Popen]:
        procs = []
        for i in range(self.workers):
            argv = ["run", "--plant", str(self.center_file), "--role", "ingest", "--worker-id", f"w{i}"]
            with open(self.center_file.with_suffix(f".w{i}.log"), "w") as log:
                procs.append(subprocess.Popen([sys.executable, "-m", "ferrogate", *argv], stdout=log, stderr=log))
        return procs

    async def start_workers(self) -> list[subprocess.Popen]:
        procs = await asyncio.to_thread(self.spawn_workers)
        probe = ingest_probe_topic(self.root, "plant000")
        async with make_client(MqttConfig(port=self.broker.port, clean_start=True), f"{self.name}-probe") as client:
            for _ in range(120):  # a worker subscribed (Mosquitto answers "no subscribers" before)
                if await has_subscribers(client, probe):
                    break
                await asyncio.sleep(0.5)
            else:
                raise RuntimeError(f"no ingest worker subscribed; see {self.center_file.parent}/*.log")
        await asyncio.sleep(2)  # the other workers' subscriptions (a bench, not a test: settling is fine)
        return procs

    async def load(self, seconds: int) -> None:
        clients = [
            make_client(MqttConfig(port=self.broker.port, clean_start=True), f"{self.name}-plant{p}")
            for p in range(self.args.plants)
        ]
        per_device = self.args.points // self.args.devices
        templates = [plant_templates(self.root, p, self.args.devices, per_device) for p in range(self.args.plants)]
        stamp = str(STAMP).encode()
        for c in clients:
            await c.__aenter__()
        try:
            start = (time.time_ns() // NS + 1) * NS
            for seq in range(seconds):
                t_ns = start + seq * NS
                await asyncio.sleep(max(0.0, (t_ns - time.time_ns()) / NS))
                self.slices[t_ns] = None
                self.publishing[t_ns] = time.time()
                now = str(t_ns).encode()
                sends = [
                    client.publish(topic, payload.replace(stamp, now), qos=1)
                    for client, batches in zip(clients, templates, strict=True)
                    for topic, payload in batches
                ]
                await asyncio.gather(*sends)
                behind = (time.time_ns() - t_ns) / NS - 1
                if behind > 0:  # the generator itself cannot keep up: say so (offered drops below nominal)
                    print(f"load generator {behind:.1f} s behind at second {seq}", file=sys.stderr)
        finally:
            for c in clients:
                await c.__aexit__(None, None, None)

    async def poll(self, stop: asyncio.Event) -> None:
        client = InfluxV1Client(InfluxConfig(url=self.database.url, database=self.name))
        try:
            while not (stop.is_set() and all(v is not None for v in self.slices.values())):
                open_slices = sorted(t for t, done in self.slices.items() if done is None)
                if open_slices:
                    lo, hi = open_slices[0], open_slices[-1] + NS
                    try:
                        series = await client.query(
                            f'SELECT count("value") FROM reading WHERE time >= {lo} AND time < {hi} GROUP BY time(1s)'
                        )
                    except Exception:  # the database may not exist yet
                        series = []
                    now = time.time()
                    for s in series:
                        for t, n in s.values:
                            if t in self.slices and self.slices[t] is None and n >= self.expected_per_second:
                                self.slices[t] = now
                await asyncio.sleep(0.25)
        finally:
            await client.aclose()

    async def measure(self) -> dict[str, float]:
        self.write_center()
        procs = await self.start_workers()
        try:
            pids = {
                "workers": [p.pid for p in procs],
                "mosquitto": [pid_of(self.broker)],
                "influxdb": [pid_of(self.database)],
            }
            stop = asyncio.Event()
            poller = asyncio.create_task(self.poll(stop))
            await self.load(self.args.warmup)
            cpu0 = {k: sum(cpu_seconds(pid) for pid in v) for k, v in pids.items()}
            wall0 = time.monotonic()
            window_start = max(self.slices) + NS
            await self.load(self.args.seconds)
            wall1 = time.monotonic()
            cpu1 = {k: sum(cpu_seconds(pid) for pid in v) for k, v in pids.items()}
            stop.set()
            load_end = time.time()
            await asyncio.wait_for(poller, timeout=600)
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(30)
        window_s = wall1 - wall0
        window = {t: done for t, done in self.slices.items() if t >= window_start}
        assert all(done is not None for done in window.values())
        last_stored = max(window.values())  # type: ignore[type-var]
        lags = sorted(done - self.publishing[t] for t, done in window.items())  # type: ignore[operator]
        offered = len(window) * self.expected_per_second / window_s
        # every point of the window, over its seconds or until the last of them is stored if later
        span_s = max(last_stored - window_start / NS, float(len(window)))
        stored_rate = len(window) * self.expected_per_second / span_s
        per_10k = stored_rate / 10_000
        cpu = {f"cpu_{k}_cores_per_10k": (cpu1[k] - cpu0[k]) / window_s / per_10k for k in cpu0}
        drained_s = last_stored - load_end
        return {
            "workers": self.workers,
            "offered_points_per_s": offered,
            "stored_points_per_s": stored_rate,
            "backlog_drain_s_after_load": max(0.0, drained_s),
            "lag_p50_s": statistics.median(lags),
            "lag_p99_s": lags[min(len(lags) - 1, int(0.99 * len(lags)))],
            "lag_max_s": lags[-1],
            **cpu,
            "cpu_center_cores_per_10k": sum(cpu.values()),
        }


async def main_async(args: argparse.Namespace, directory: Path) -> list[dict[str, float]]:
    broker = await asyncio.to_thread(start_mosquitto, directory / "mosquitto")
    database = await asyncio.to_thread(start_influxdb, directory / "influxdb")
    try:
        return [await Run(args, broker, database, directory, n).measure() for n in args.workers]
    finally:
        await asyncio.to_thread(broker.process.stop)
        await asyncio.to_thread(database.process.stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plants", type=int, default=20)
    parser.add_argument("--points", type=int, default=2000, help="points per plant, each read once a second")
    parser.add_argument("--devices", type=int, default=20, help="devices (scan batches) per plant")
    parser.add_argument("--seconds", type=int, default=20, help="measured window")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    # aiomqtt warns about every publish awaiting its PUBACK beyond 10; a load generator has hundreds
    logging.getLogger("mqtt").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="ferrogate-bench-group-") as tmp:
        results = asyncio.run(main_async(args, Path(tmp)))
    if args.json:
        print(json.dumps(results))
        return
    print(f"group center: {args.plants} plants x {args.points} points at 1 s ({os.cpu_count()} cores on this box)")
    for r in results:
        print(
            f"  {r['workers']} ingest worker(s): offered {r['offered_points_per_s']:.0f} points/s, "
            f"stored {r['stored_points_per_s']:.0f} points/s, "
            f"backlog drained {r['backlog_drain_s_after_load']:.1f} s after the load; "
            f"lag p50 {r['lag_p50_s']:.2f} s, p99 {r['lag_p99_s']:.2f} s, max {r['lag_max_s']:.2f} s; "
            f"CPU per 10,000 points/s: workers {r['cpu_workers_cores_per_10k']:.2f}, "
            f"Mosquitto {r['cpu_mosquitto_cores_per_10k']:.2f}, InfluxDB {r['cpu_influxdb_cores_per_10k']:.2f}, "
            f"center {r['cpu_center_cores_per_10k']:.2f} cores"
        )


if __name__ == "__main__":
    main()

"""What the durable acknowledgement costs the collector: points per CPU-second of the collect side
with and without it, in the same run, through a real Mosquitto and InfluxDB (started here).

    .venv/bin/python bench/bench_durable_ack.py [--points 100] [--rate 200] [--seconds 10] [--json]

This process is the collector (MqttPublisher with its SQLite spool); the ingest worker runs as its
own process (`ferrogate run --role ingest`), so this process's CPU time (time.process_time) is the
collect side alone: encode + spool commit of each batch, the QoS 1 publish, and, with the durable
acknowledgement, the delivery tag of each message and the pruning of the spool on ingest's marks.
`--rate` batches of `--points` readings a second are submitted for `--seconds`, then the spool is
drained (PUBACK: broker has them; durable: ingest's mark passed them). Each mode gets its own site
and spool. Figures only, nothing asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from ferrogate.gateway.config import InfluxConfig, MqttConfig
from ferrogate.gateway.influx import InfluxV1Client
from ferrogate.gateway.model_base import SpoolConfig
from ferrogate.gateway.mqtt import MqttPublisher
from ferrogate.gateway.reading import Quality, Reading, ScanBatch
from ferrogate.gateway.services import start_influxdb, start_mosquitto

ROOT = Path(__file__).resolve().parent.parent
T0 = (time.time_ns() // 86_400_000_000_000 - 1) * 86_400_000_000_000  # yesterday 00:00 UTC: within retention


def make_batch(site: str, seq: int, points: int) -> ScanBatch:
    t = T0 + seq * 1_000_000_000
    readings = [Reading(f"p{i}", 1000.0 + seq + i / 8, "kWh", t) for i in range(points)]
    readings[0] = Reading("p0", None, "kW", t, Quality.BAD, "comm_error: timeout")
    return ScanBatch(site, "meter", seq, t, readings, {f"p{i}": "eaf1" for i in range(points)})


def ingest_plant(site: str, broker_port: int, database_url: str, directory: Path) -> Path:
    """A plant file for the ingest process (one device, never scanned: the role only ingests)."""
    doc = {
        "site": {"id": site, "name": site},
        "mqtt": {"port": broker_port},
        "influxdb": {"url": database_url, "database": "bench", "spool": {"path": str(directory / f"{site}.sqlite")}},
        "devices": [
            {
                "id": "meter",
                "protocol": "modbus",
                "host": "127.0.0.1",
                "port": 1,
                "unit": 1,
                "points": [{"id": "p0", "address": 0, "type": "uint16", "unit": "1"}],
            }
        ],
    }
    path = directory / f"{site}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def start_ingest(plant: Path, log_path: Path) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "ferrogate", "run", "--plant", str(plant), "--role", "ingest"],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


async def run_mode(durable: bool, args: argparse.Namespace, broker_port: int, database_url: str, d: Path) -> dict:
    site = "bench_durable" if durable else "bench_puback"
    plant = ingest_plant(site, broker_port, database_url, d)
    ingest = start_ingest(plant, d / f"{site}.log")
    mqtt = MqttConfig(port=broker_port, ack_from_ingest=durable, spool=SpoolConfig(path=d / f"{site}-collector.sqlite"))
    publisher = MqttPublisher(mqtt, site, f"bench-{site}")
    task = asyncio.create_task(publisher.run())
    try:
        batches = int(args.rate * args.seconds)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        loop = asyncio.get_running_loop()
        start = loop.time()
        for seq in range(batches):
            # a steady plant: batch `seq` is due at start + seq / rate
            delay = start + seq / args.rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            publisher.submit(make_batch(site, seq, args.points))
        await asyncio.wait_for(publisher.drain(), 300)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        points = batches * args.points
        return {
            "mode": "durable ack" if durable else "PUBACK",
            "batches": batches,
            "points": points,
            "collect_cpu_s": cpu,
            "points_per_cpu_s": points / cpu,
            "wall_s": wall,
            "marks_received": publisher.acks,
            "sends": publisher.published,
        }
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        publisher.close()
        ingest.send_signal(signal.SIGTERM)
        await asyncio.to_thread(ingest.wait, 30)


async def run(args: argparse.Namespace, d: Path) -> list[dict]:
    broker = await asyncio.to_thread(start_mosquitto, d / "mosquitto")
    database = await asyncio.to_thread(start_influxdb, d / "influxdb")
    client = InfluxV1Client(InfluxConfig(url=database.url, database="bench"))
    try:
        await client.ensure_database()
        out = []
        for durable in (False, True) * args.rounds:
            out.append(await run_mode(durable, args, broker.port, database.url, d))
        return out
    finally:
        await client.aclose()
        await asyncio.to_thread(broker.process.stop)
        await asyncio.to_thread(database.process.stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100, help="readings per batch (device scan)")
    parser.add_argument("--rate", type=float, default=200, help="batches submitted per second")
    parser.add_argument("--seconds", type=float, default=10, help="how long batches are submitted, per mode")
    parser.add_argument("--rounds", type=int, default=2, help="PUBACK, durable, PUBACK, durable, ...")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    with tempfile.TemporaryDirectory(prefix="ferrogate-bench-") as tmp:
        results = asyncio.run(run(args, Path(tmp)))
    if args.json:
        print(json.dumps(results))
        return
    for r in results:
        print(
            f"collect, {r['mode']:>11}: {r['points']} points ({r['batches']} batches of {args.points}) in "
            f"{r['collect_cpu_s']:.2f} CPU-s = {r['points_per_cpu_s']:,.0f} points per CPU-second "
            f"({r['sends']} sends, drained after {r['wall_s']:.1f} s, {r['marks_received']} durable marks received)"
        )


if __name__ == "__main__":
    main()

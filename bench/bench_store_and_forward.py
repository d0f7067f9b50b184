"""Store-and-forward cost and speed: CPU per point on the hot paths, and how fast a spooled backlog
drains through a real Mosquitto and InfluxDB (both started here in a temporary directory).

    .venv/bin/python bench/bench_store_and_forward.py [--points 100] [--backlog 2000] [--json]

Figures (nothing is asserted):
- collect side, per batch of `--points` readings: encode the MQTT payload + commit it to the SQLite
  spool (sync normal = survives a killed process, full = also a power cut), in microseconds;
- ingest side, per point: decode the payload + build line protocol, in microseconds;
- replay: `--backlog` spooled batches published to Mosquitto (QoS 1, window of 100), taken by an
  ingest worker and written to InfluxDB, in points per second from the publisher's start to the
  last point stored.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ferrogate.gateway.config import InfluxConfig, MqttConfig
from ferrogate.gateway.influx import InfluxV1Client
from ferrogate.gateway.ingest import IngestWorker
from ferrogate.gateway.lineprotocol import batch_lines
from ferrogate.gateway.model_base import SpoolConfig
from ferrogate.gateway.mqtt import MqttPublisher
from ferrogate.gateway.payload import decode_batch, encode_batch
from ferrogate.gateway.reading import Quality, Reading, ScanBatch
from ferrogate.gateway.services import start_influxdb, start_mosquitto
from ferrogate.gateway.spool import Spool

T0 = (time.time_ns() // 86_400_000_000_000 - 1) * 86_400_000_000_000  # yesterday 00:00 UTC: within retention


def make_batch(seq: int, points: int) -> ScanBatch:
    t = T0 + seq * 1_000_000_000
    readings = [Reading(f"p{i}", 1000.0 + seq + i / 8, "kWh", t) for i in range(points)]
    readings[0] = Reading("p0", None, "kW", t, Quality.BAD, "comm_error: timeout")
    return ScanBatch("bench", "meter", seq, t, readings, {f"p{i}": "eaf1" for i in range(points)})


def per_call_us(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def cpu_figures(points: int, directory: Path) -> dict[str, float]:
    batch = make_batch(1, points)
    payload = encode_batch(batch)
    out = {}
    for sync in ("normal", "full"):
        spool = Spool(directory / f"{sync}.sqlite", "outbox", max_bytes=1 << 34, sync=sync)
        n = 2000 if sync == "normal" else 200
        out[f"collect_batch_us_sync_{sync}"] = per_call_us(
            lambda spool=spool: spool.append("t", encode_batch(batch), points), n
        )
        spool.close()
    out["ingest_point_us"] = per_call_us(lambda: batch_lines(decode_batch(payload)), 2000) / points
    out["line_protocol_point_us"] = per_call_us(lambda: batch_lines(batch), 2000) / points
    return out


async def replay_figures(points: int, backlog: int, directory: Path) -> dict[str, float]:
    broker = await asyncio.to_thread(start_mosquitto, directory / "mosquitto")
    database = await asyncio.to_thread(start_influxdb, directory / "influxdb")
    mqtt = MqttConfig(port=broker.port, spool=SpoolConfig(path=directory / "spool.sqlite"))
    influx = InfluxConfig(url=database.url, database="bench")
    client = InfluxV1Client(influx)
    publisher = MqttPublisher(mqtt, "bench", "bench")
    worker = IngestWorker(mqtt, influx, "bench", "bench")
    tasks = []
    try:
        await client.ensure_database()
        for seq in range(backlog):
            publisher.submit(make_batch(seq, points))
        tasks.append(asyncio.create_task(worker.run()))
        await asyncio.wait_for(worker.subscribed.wait(), 30)
        start = time.perf_counter()
        tasks.append(asyncio.create_task(publisher.run()))
        await publisher.drain()
        published_s = time.perf_counter() - start
        while worker.messages < backlog:  # noqa: ASYNC110 - a bench polls; the worker offers no event
            await asyncio.sleep(0.05)
        await worker.writer.flush()
        stored_s = time.perf_counter() - start
        series = await client.query("SELECT count(quality) FROM reading")
        stored = series[0].values[0][1]
        return {
            "replay_batches": backlog,
            "replay_points_stored": stored,
            "replay_publish_batches_per_s": backlog / published_s,
            "replay_points_per_s": stored / stored_s,
        }
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        publisher.close()
        await worker.aclose()
        await client.aclose()
        await asyncio.to_thread(broker.process.stop)
        await asyncio.to_thread(database.process.stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100, help="readings per batch (device scan)")
    parser.add_argument("--backlog", type=int, default=2000, help="spooled batches to replay")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ferrogate-bench-") as tmp:
        directory = Path(tmp)
        figures = cpu_figures(args.points, directory)
        figures.update(asyncio.run(replay_figures(args.points, args.backlog, directory)))
    if args.json:
        print(json.dumps(figures))
        return
    print(
        f"collect: encode + spool one {args.points}-point batch: "
        f"{figures['collect_batch_us_sync_normal']:.0f} us (sync normal), "
        f"{figures['collect_batch_us_sync_full']:.0f} us (sync full)\n"
        f"ingest: decode + line protocol: {figures['ingest_point_us']:.2f} us/point "
        f"(line protocol alone {figures['line_protocol_point_us']:.2f} us/point)\n"
        f"replay: {figures['replay_batches']} batches / {figures['replay_points_stored']} points: "
        f"published at {figures['replay_publish_batches_per_s']:.0f} batches/s, "
        f"stored at {figures['replay_points_per_s']:.0f} points/s end to end"
    )


if __name__ == "__main__":
    main()

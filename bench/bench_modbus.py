"""Modbus collection cost: points per CPU-second of the gateway process and scan latency.

The simulated devices run in their own process (tests/modbus_farm.py); this process runs only the
collector (drivers, decoding, scan scheduling, batches) with a sink that encodes each batch as the
MQTT payload, so the figure is what the gateway spends per point.

    .venv/bin/python bench/bench_modbus.py [--devices 50] [--points 100] [--interval 0.2] [--seconds 10]

Prints one line of figures (and JSON with --json). Not a test: nothing is asserted. "Scan done" is
the time from a scan slot's start to its batch being handed to the sink (all devices of one
interval start together, so it includes waiting for the others' work in the one event loop).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.modbus_farm


async def measure(devices: int, points: int, interval: float, seconds: float) -> dict[str, float]:
    from ferrogate.gateway.collect import Collector
    from ferrogate.gateway.config import PlantConfig
    from ferrogate.gateway.payload import encode_batch
    from ferrogate.gateway.reading import Quality, ScanBatch

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the farm always runs this tree's simulators
    farm = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.modbus_farm",
        "--devices",
        str(devices),
        "--points",
        str(points),
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert farm.stdout is not None and farm.stdin is not None
    try:
        ready = json.loads(await asyncio.wait_for(farm.stdout.readline(), timeout=120))
        plant = PlantConfig.model_validate(
            {
                "site": {"id": "bench", "name": "bench"},
                "devices": [
                    {
                        "id": f"meter{i:03d}",
                        "protocol": "modbus",
                        "host": "127.0.0.1",
                        "port": port,
                        "scan_interval_s": interval,
                        "points": ready["points"],
                    }
                    for i, port in enumerate(ready["ports"])
                ],
            }
        )
        counts = {"readings": 0, "bad": 0, "bytes": 0}
        delays: list[float] = []  # per batch: seconds from its slot's start to the batch being ready
        slot_ns = round(interval * 1e9)

        def sink(batch: ScanBatch) -> None:
            counts["bytes"] += len(encode_batch(batch))
            counts["readings"] += len(batch.readings)
            counts["bad"] += sum(r.quality is not Quality.GOOD for r in batch.readings)
            delays.append((batch.gateway_time_ns % slot_ns) / 1e9)

        collector = Collector(plant, sink)
        task = asyncio.create_task(collector.run())
        await asyncio.sleep(interval * 3)  # connect and settle
        start = {**counts}
        delays.clear()
        cpu0, wall0 = time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        done = {k: counts[k] - start[k] for k in counts}
        measured = sorted(delays)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        farm.stdin.close()
        await asyncio.wait_for(farm.wait(), timeout=60)
    stats = [s.stats for s in collector.scanners]
    return {
        "devices": devices,
        "points_per_device": points,
        "interval_s": interval,
        "points_per_s": done["readings"] / wall,
        "bad_readings": done["bad"],
        "gateway_cpu_share": cpu / wall,
        "points_per_cpu_s": done["readings"] / cpu if cpu else float("inf"),
        "scan_done_ms_mean": 1000 * sum(measured) / len(measured),
        "scan_done_ms_p99": 1000 * measured[int(0.99 * (len(measured) - 1))],
        "scan_done_ms_max": 1000 * measured[-1],
        "overruns": sum(st.overruns for st in stats),
        "payload_bytes_per_point": done["bytes"] / done["readings"] if done["readings"] else 0.0,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--points", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.2)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    r = asyncio.run(measure(args.devices, args.points, args.interval, args.seconds))
    print(
        f"modbus: {r['devices']} devices x {r['points_per_device']} points every {r['interval_s']:g} s: "
        f"{r['points_per_s']:,.0f} points/s, gateway CPU {r['gateway_cpu_share']:.0%} of one core, "
        f"{r['points_per_cpu_s']:,.0f} points per CPU-second; scan done after its slot start: mean "
        f"{r['scan_done_ms_mean']:.1f} ms, p99 {r['scan_done_ms_p99']:.1f} ms, max {r['scan_done_ms_max']:.1f} ms; "
        f"overruns {r['overruns']:.0f}, bad {r['bad_readings']:.0f}"
    )
    if args.json:
        print(json.dumps(r))


if __name__ == "__main__":
    main()

"""HJ 212 receive cost: frames per CPU-second parsed, turned into readings and acknowledged, with
200 data loggers connected at once.

The loggers run in their own process (this script with --loggers): each keeps one TCP connection
and sends real-time data (2011, seven flue-gas factors, about 390 bytes a frame) asking for a 9014,
waiting for each reply before its next frame, as a data logger does. This process runs only the
platform side: the HJ 212 server (framing, CRC, data segment, MN and password, CP, split joining,
9014 replies) and, per message, the driver's mapping to `Reading`s and the MQTT payload encoding
the collector publishes. CPU time is the OS's account of this process (user + system,
`time.process_time`).

    .venv/bin/python bench/bench_hj212.py [--loggers 200] [--seconds 10] [--window 1]

Prints one line of figures (and JSON with --json). Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parent.parent
ZONE = ZoneInfo("Asia/Shanghai")
FACTORS = ("a00000", "a19001", "a01012", "a21026", "a21002", "a34013", "a05001")


def mn_of(i: int) -> str:
    return f"BENCH{i:09d}"


def frames_of(i: int, count: int) -> list[bytes]:
    from ferrogate.drivers.hj212.protocol.frame import encode_frame

    out = []
    for n in range(count):
        second = n % 60
        cp = f"DataTime=20260105083{n // 60 % 10}{second:02d};" + ";".join(
            f"{code}-Rtd={12.3456 + n % 7:.4f},{code}-Flag=N" for code in FACTORS
        )
        qn = f"20260105083000{n % 1000:03d}"
        out.append(encode_frame(f"QN={qn};ST=31;CN=2011;PW=123456;MN={mn_of(i)};Flag=5;CP=&&{cp}&&"))
    return out


async def run_loggers(port: int, loggers: int, window: int) -> None:
    """The load: each logger sends `window` frames, waits for their replies, and so on (1: a logger
    waiting for each reply; more: a logger backfilling after an outage), until stdin closes."""

    async def one(i: int) -> None:
        frames = frames_of(i, 200)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        n = 0
        while True:
            writer.write(b"".join(frames[(n + k) % len(frames)] for k in range(window)))
            n += window
            for _ in range(window):
                await reader.readuntil(b"\r\n")

    tasks = [asyncio.create_task(one(i)) for i in range(loggers)]
    print("connected", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def measure(loggers: int, seconds: float, window: int) -> dict[str, float]:
    from ferrogate.drivers.hj212.protocol.message import Message
    from ferrogate.drivers.hj212.readings import PointBinding, PointMap
    from ferrogate.drivers.hj212.receiver import LoggerAccount
    from ferrogate.drivers.hj212.server import Hj212Server
    from ferrogate.gateway.payload import encode_batch
    from ferrogate.gateway.reading import ScanBatch

    points = PointMap(PointBinding(f"{code}_rtd", "2011", code, "Rtd", "x") for code in FACTORS)
    accounts = {mn_of(i): LoggerAccount(mn_of(i), "123456", f"logger{i:03d}", ZONE) for i in range(loggers)}
    counts = {"readings": 0, "bytes": 0}

    def sink(account: LoggerAccount, message: Message) -> None:
        batch = ScanBatch("bench", account.device, 0, time.time_ns(), points.readings(message))
        counts["readings"] += len(batch.readings)
        counts["bytes"] += len(encode_batch(batch))

    server = Hj212Server(accounts, sink)
    await server.start("127.0.0.1", 0)
    load = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        "--loggers-only",
        "--port",
        str(server.port),
        "--loggers",
        str(loggers),
        "--window",
        str(window),
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert load.stdout is not None and load.stdin is not None
    try:
        await asyncio.wait_for(load.stdout.readline(), timeout=120)
        while server.stats.connections_open < loggers:  # noqa: ASYNC110 (a benchmark's start, not a test)
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # settle
        stats = server.stats
        frames0, replies0, readings0 = stats.frames, stats.replies, counts["readings"]
        cpu0, wall0 = time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        frames, replies = stats.frames - frames0, stats.replies - replies0
        open_during = stats.connections_open
        readings = counts["readings"] - readings0
    finally:
        load.stdin.close()
        await asyncio.wait_for(load.wait(), timeout=60)
        await server.stop()
    return {
        "loggers": loggers,
        "window": window,
        "connections_open": open_during,
        "frames_per_s": frames / wall,
        "replies_per_s": replies / wall,
        "readings_per_s": readings / wall,
        "gateway_cpu_share": cpu / wall,
        "frames_per_cpu_s": frames / cpu if cpu else float("inf"),
        "cpu_us_per_frame": 1e6 * cpu / frames if frames else float("inf"),
        "errors": sum(stats.errors.values()),
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loggers", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--window", type=int, default=1, help="frames a logger sends before awaiting replies")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--loggers-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loggers_only:
        asyncio.run(run_loggers(args.port, args.loggers, args.window))
        return
    r = asyncio.run(measure(args.loggers, args.seconds, args.window))
    print(
        f"hj212: {r['loggers']} loggers connected, {r['window']} frame(s) in flight each: "
        f"{r['frames_per_s']:,.0f} frames/s parsed and acknowledged "
        f"({r['readings_per_s']:,.0f} readings/s), gateway CPU {r['gateway_cpu_share']:.0%} of one core, "
        f"{r['frames_per_cpu_s']:,.0f} frames per CPU-second ({r['cpu_us_per_frame']:.0f} us each); errors "
        f"{r['errors']:.0f}"
    )
    if args.json:
        print(json.dumps(r))


if __name__ == "__main__":
    main()

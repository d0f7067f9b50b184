"""Accounting recompute end to end: the books of `hours` hours of 1-second readings of 10 assets,
re-derived from InfluxDB by the real process, through the API as an operator asks for it.

The bench writes the raw readings into a real influxd (gateway/services.py) as ingest would have
(measurement `reading`, one series per meter point), starts `python -m ferrogate run --role
energy,api` on that database, and times `POST /api/v1/admin/recompute` over the whole span: the
process reads every reading back (InfluxQL), derives the 15-minute buckets, allocations, units'
figures and balances, deletes what was derived there before, writes the new rows and sums every
period it touched (gateway/accounting_service.py, `recompute`).

The plant (a site of electrolytic manganese cell lines): an incomer, eight cell lines and the
plant's auxiliaries (10 assets), each with an energy counter (kWh) read every second; each line
also has a product counter, read every minute. Figures: the span's raw readings, the wall
seconds of the request, the process's CPU seconds over it (user + system, /proc), readings per
second of each, and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import yaml

from bench.harness import (
    ROOT,
    child_env,
    cpu_times,
    load_average,
    peak_rss_mb,
    py_spy,
    stop_process,
    stop_sampler,
    wait_for,
)
from ferrogate.api.keys import Role, append_key, new_key
from ferrogate.gateway.config import InfluxConfig
from ferrogate.gateway.influx import InfluxV1Client
from ferrogate.gateway.ports import free_port
from ferrogate.gateway.services import start_influxdb, start_mosquitto
from ferrogate.gateway.timeutil import iso_utc

SITE = "bench"
DATABASE = "books"
LINES = 8
PRODUCT_EVERY_S = 60
DAY_S = 86_400
CHUNK_LINES = 50_000
LINE_KW = 3_000.0  # each cell line's draw
AUX_KW = 400.0
LOSS = 0.01  # the incomer meters 1 % more than its members


def cell_lines_plant(site: str, lines: list[str], influx_url: str, database: str) -> dict[str, object]:
    """A plant file of electrolytic cell lines behind one incomer, with auxiliaries split pro rata:
    a kWh counter per line, the incomer and the auxiliaries, and a product counter (t) per line, all
    on one Modbus device `meters` (recomputes read them from InfluxDB; nothing polls the device)."""
    points = [{"id": "incomer", "address": 0, "type": "uint32", "unit": "kWh"}]
    points += [{"id": "aux", "address": 2, "type": "uint32", "unit": "kWh"}]
    points += [
        {"id": f"e_{line}", "address": 4 + 4 * n, "type": "uint32", "unit": "kWh"} for n, line in enumerate(lines)
    ]
    points += [
        {"id": f"p_{line}", "address": 6 + 4 * n, "type": "float32", "unit": "t"} for n, line in enumerate(lines)
    ]
    assets = [
        {
            "id": "incomer",
            "type": "main_incomer",
            "name": "incomer",
            "meters": {"electricity_import": "meters.incomer"},
        },
        {"id": "aux", "type": "auxiliary", "name": "auxiliaries", "meters": {"electricity_import": "meters.aux"}},
    ]
    assets += [
        {
            "id": line,
            "type": "electrolytic_cells",
            "name": line,
            "product": "EMM",
            "meters": {"electricity_import": f"meters.e_{line}", "product_counter": f"meters.p_{line}"},
        }
        for line in lines
    ]
    return {
        "site": {"id": site, "name": site, "timezone": "UTC"},
        "mqtt": {"port": 1883, "topic_root": f"{site}/ferrogate/v1"},
        "influxdb": {"url": influx_url, "database": database},
        "devices": [{"id": "meters", "protocol": "modbus", "host": "127.0.0.1", "points": points}],
        "assets": assets,
        "accounting": {
            "interval_s": 900,
            "incomer": "incomer",
            "products": [{"id": "EMM", "carbon_fixed": "none"}],
            "units": [{"asset": line, "production": "product_counter"} for line in lines],
            "allocations": [{"id": "auxiliaries", "meter": "aux", "rule": "pro_rata_remainder", "targets": lines}],
            "balances": [{"id": "plant", "main": "incomer", "members": ["aux", *lines], "max_loss_percent": 2}],
        },
    }


def plant(influx_port: int, broker_port: int, keys_file: Path) -> dict[str, object]:
    doc = cell_lines_plant(
        SITE, [f"cells{n}" for n in range(1, LINES + 1)], f"http://127.0.0.1:{influx_port}", DATABASE
    )
    doc["mqtt"] = {"port": broker_port, "topic_root": "books/ferrogate/v1"}
    doc["api"] = {"keys_file": str(keys_file)}
    return doc


def raw_bodies(start_s: int, seconds: int) -> Iterator[tuple[int, bytes]]:
    """The span's readings as line protocol (second precision), in bodies of about CHUNK_LINES lines
    with their counts: made as they are written, so a month never sits in memory at once."""
    series = {
        name: f"reading,site={SITE},device=meters,point={name},unit={unit} value="
        for name, unit in [("incomer", "kWh"), ("aux", "kWh")]
        + [(f"e_cells{n}", "kWh") for n in range(1, LINES + 1)]
        + [(f"p_cells{n}", "t") for n in range(1, LINES + 1)]
    }
    total_kw = (LINES * LINE_KW + AUX_KW) * (1 + LOSS)
    lines: list[str] = []
    for k in range(seconds):
        t = start_s + k
        hours = k / 3600
        tail = f',quality="good" {t}'
        lines.append(f"{series['incomer']}{round(total_kw * hours, 3)!r}{tail}")
        lines.append(f"{series['aux']}{round(AUX_KW * hours, 3)!r}{tail}")
        for n in range(1, LINES + 1):
            lines.append(f"{series[f'e_cells{n}']}{round(LINE_KW * hours, 3)!r}{tail}")
            if k % PRODUCT_EVERY_S == 0:
                lines.append(f"{series[f'p_cells{n}']}{round(0.4 * hours, 4)!r}{tail}")  # 0.4 t/h
        if len(lines) >= CHUNK_LINES:
            yield len(lines), "\n".join(lines).encode()
            lines = []
    if lines:
        yield len(lines), "\n".join(lines).encode()


async def _create_database(config: InfluxConfig) -> None:
    client = InfluxV1Client(config)
    try:
        await client.ensure_database()
    finally:
        await client.aclose()


def write_raw(influx_port: int, start_s: int, seconds: int) -> int:
    """The span's readings into the database as the gateway creates it (`raw`, the default policy,
    and `long`); returns how many were written."""
    asyncio.run(_create_database(InfluxConfig(url=f"http://127.0.0.1:{influx_port}", database=DATABASE)))
    url = f"http://127.0.0.1:{influx_port}/write?db={DATABASE}&precision=s"
    written = 0
    with httpx.Client(timeout=300) as client:
        for count, body in raw_bodies(start_s, seconds):
            resp = client.post(url, content=body)
            if resp.status_code != 204:
                raise RuntimeError(f"InfluxDB refused the raw readings: {resp.status_code} {resp.text}")
            written += count
    return written


def span(hours: int, now_s: float | None = None) -> tuple[int, int]:
    """`hours` ending at yesterday's midnight UTC (so no "now" inside the span), in epoch seconds."""
    end_s = int(time.time() if now_s is None else now_s) // DAY_S * DAY_S - DAY_S
    return end_s - hours * 3600, end_s


def measure(
    work: Path, broker_port: int, influx_port: int, hours: int, influx_pid: int | None = None
) -> dict[str, object]:
    """Write `hours` of readings (the issue's month: 720), then time their recompute."""
    start_s, end_s = span(hours)
    generated = time.monotonic()
    readings = write_raw(influx_port, start_s, end_s - start_s)
    written_s = time.monotonic() - generated
    figures = recompute(work, broker_port, influx_port, start_s, end_s, influx_pid)
    return {"hours": hours, "assets": LINES + 2, "readings": readings, "write_s": written_s, **figures}


def recompute(
    work: Path,
    broker_port: int,
    influx_port: int,
    start_s: int,
    end_s: int,
    influx_pid: int | None = None,
    spy: Path | None = None,
) -> dict[str, object]:
    """Start the energy role on the database and time `POST /api/v1/admin/recompute` over
    [start_s, end_s): wall seconds, the role's CPU seconds and peak RSS, and influxd's CPU seconds
    over the request when its pid is known. `spy`: sample the role with py-spy into that file."""
    work.mkdir(parents=True, exist_ok=True)
    keys_file = work / "api-keys.jsonl"
    key, stored = new_key("bench", Role.admin)
    append_key(keys_file, stored)
    path = work / "plant.yaml"
    path.write_text(yaml.safe_dump(plant(influx_port, broker_port, keys_file), sort_keys=False))
    api_port = free_port()
    command = [sys.executable, "-m", "ferrogate", "run", "--plant", str(path), "--role", "energy,api"]
    log = open(work / "ferrogate.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([*command, "--api-port", str(api_port)], cwd=ROOT, env=child_env(), stdout=log, stderr=log)
    sampler = None
    try:
        wait_for(lambda: proc.poll() is not None or _ready(api_port), 120, "the energy role's API")
        if proc.poll() is not None:
            raise RuntimeError(f"ferrogate exited with {proc.returncode}: see {work / 'ferrogate.log'}")
        time.sleep(2.0)  # let the role's start-up (loading its recent state) settle
        if spy is not None:
            sampler = py_spy(proc.pid, spy)
        user0, sys0 = cpu_times(proc.pid)
        influx0 = sum(cpu_times(influx_pid)) if influx_pid is not None else 0.0
        wall0 = time.monotonic()
        resp = httpx.post(
            f"http://127.0.0.1:{api_port}/api/v1/admin/recompute",
            params={"from": iso_utc(start_s * 1_000_000_000), "to": iso_utc(end_s * 1_000_000_000)},
            headers={"X-API-Key": key},
            timeout=3 * 3600,
        )
        wall = time.monotonic() - wall0
        user1, sys1 = cpu_times(proc.pid)
        influx1 = sum(cpu_times(influx_pid)) if influx_pid is not None else 0.0
        peak = peak_rss_mb(proc.pid)
        if resp.status_code != 200:
            raise RuntimeError(f"recompute answered {resp.status_code}: {resp.text}")
    finally:
        if sampler is not None:
            stop_sampler(sampler)
        stop_process(proc)
        log.close()
    cpu = user1 - user0 + sys1 - sys0
    readings = (end_s - start_s) * (LINES + 2) + -(-(end_s - start_s) // PRODUCT_EVERY_S) * LINES
    return {
        "recompute_s": wall,
        "cpu_s": cpu,
        "influxd_cpu_s": influx1 - influx0 if influx_pid is not None else None,
        "readings_per_s": readings / wall,
        "readings_per_cpu_s": readings / cpu if cpu else None,
        "peak_rss_mb": peak,
    }


def main() -> None:
    """Standalone: keep one influxd's data between runs (writing a month takes a while) and recompute
    it again, e.g. before and after a change, or under py-spy."""
    parser = argparse.ArgumentParser(description="accounting recompute on a kept database")
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--dir", type=Path, required=True, help="where influxd keeps its data between runs")
    parser.add_argument("--py-spy", type=Path, help="raw py-spy stacks of the energy role into this file")
    parser.add_argument("--write-only", action="store_true", help="write the readings, do not recompute")
    args = parser.parse_args()
    marker = args.dir / f"written-{args.hours}h.json"
    broker = start_mosquitto(args.dir / "mosquitto")
    database = start_influxdb(args.dir / "influxdb")
    try:
        influx_pid = database.process.proc.pid if database.process.proc is not None else None
        written: dict[str, object] = json.loads(marker.read_text()) if marker.exists() else {}
        if not written:
            start_s, end_s = span(args.hours)
            began = time.monotonic()
            readings = write_raw(database.port, start_s, end_s - start_s)
            written = {"start_s": start_s, "end_s": end_s, "readings": readings, "write_s": time.monotonic() - began}
            marker.write_text(json.dumps(written))
        if args.write_only:
            print(json.dumps(written))
            return
        start_s, end_s = int(written["start_s"]), int(written["end_s"])  # type: ignore[call-overload]
        figures = recompute(args.dir / "run", broker.port, database.port, start_s, end_s, influx_pid, args.py_spy)
        print(json.dumps({"hours": args.hours, **written, **figures, "load_average": load_average()}, indent=1))
    finally:
        broker.process.stop()
        database.process.stop()


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()

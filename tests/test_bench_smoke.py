"""The benchmark suite keeps working: its smoke profile runs end to end (real collect, ingest, api
and energy roles, the floors, simulator farms for Modbus and OPC UA, Mosquitto, InfluxDB) and writes
every figure.
Timing is not asserted: that is the bench's job."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from bench.workloads import workloads
from tests.conftest import ROOT


async def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m bench ARGS` in its own process; it must succeed."""
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,  # a ceiling for a loaded 2-core box; typically a few minutes
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


async def _smoke(suite: str, table_mark: str, tmp_path: Path) -> dict:
    """One suite in the smoke profile, in its own process (each with its own ceiling on a loaded box);
    `table_mark` is a column of the table it prints."""
    out = tmp_path / f"{suite}.json"
    done = await _bench("--suite", suite, "--profile", "smoke", "--out", str(out))
    assert table_mark in done.stdout, done.stdout
    report = json.loads(out.read_text())
    assert report["profile"] == "smoke"
    assert report["machine"]["cores"] >= 1 and len(report["load_average_before"]) == 3
    return report


async def test_modbus_smoke_writes_every_figure(tmp_path: Path) -> None:
    report = await _smoke("modbus", "points/CPU-s", tmp_path)
    rows = {(r["workload"], r["contender"]): r for r in report["modbus"]["summary"]}
    for workload in workloads("smoke"):
        for contender in ("ferrogate", "floor"):
            row = rows[(workload.name, contender)]
            assert row["points_per_s"] > 0, row
            assert row["points_per_cpu_s"] > 0, row
            assert row["peak_rss_mb"] > 10, row  # a Python process with its libraries: tens of MiB
            # both send the planned reads per scan; the window's edges may cut a scan on a busy box
            assert 0.5 * len(workload.requests()) <= row["requests_per_scan"] <= 1.5 * len(workload.requests()), row
            assert row["missed_scans"] is not None
        assert rows[(workload.name, "ferrogate")]["ratio_to_floor"] > 0
        assert rows[(workload.name, "ferrogate")]["latency_p99_ms"] is not None
    for run in report["modbus"]["runs"]:
        assert "error" not in run, run
        assert run["bad_points"] == 0 and run["undecodable"] == 0, run


async def test_opcua_smoke_writes_every_figure(tmp_path: Path) -> None:
    report = await _smoke("opcua", "changes/CPU-s", tmp_path)
    # ferrogate and the floor, by subscription and by polling, each got the farm's changes
    opcua = {(r["mode"], r["contender"]): r for r in report["opcua"]["summary"]}
    assert set(opcua) == {(mode, name) for mode in ("subscribe", "poll") for name in ("ferrogate", "floor")}
    for row in opcua.values():
        assert row["changes_per_s"] > 0 and row["peak_rss_mb"] > 10, row
        assert 0 <= row["changes_lost"] <= row["changes_written"], row
    for run in report["opcua"]["runs"]:
        assert "error" not in run, run
        assert run["bad_points"] == 0 and run["undecodable"] == 0, run


async def test_ingest_smoke_writes_every_figure(tmp_path: Path) -> None:
    report = await _smoke("ingest", "points/CPU-s", tmp_path)
    # every point of the burst counted in InfluxDB for ferrogate and the floor
    ingest = {r["contender"]: r for r in report["ingest"]["runs"]}
    assert set(ingest) == {"ferrogate", "floor"}
    for run in ingest.values():
        assert "error" not in run, run
        assert run["points"] == report["ingest"]["points_per_burst"] > 0
        assert run["points_per_cpu_s"] > 0 and run["peak_rss_mb"] > 10 and run["wall_s"] > 0, run
    assert ingest["ferrogate"]["ratio_to_floor"] > 0
    # sustained rate: ingest fed at a steady rate, its backlog sampled every second
    (held,) = report["ingest"]["sustained"]
    assert "error" not in held, held
    assert len(held["backlog_points"]) == held["seconds"] > 0 and held["backlog_growth_points_s"] is not None, held


async def test_latency_smoke_writes_every_figure(tmp_path: Path) -> None:
    report = await _smoke("latency", "Latency, a value's change", tmp_path)
    # the simulator's changes were seen on MQTT, in InfluxDB and on the API's live stream
    (latency,) = report["latency"]["runs"]
    assert "error" not in latency, latency
    assert latency["points_per_s"] > 0 and latency["backlog_end_points"] is not None, latency
    for to in ("mqtt", "influxdb", "api"):
        assert latency[f"{to}_changes"] > 0 and latency[f"{to}_p99_ms"] >= latency[f"{to}_p50_ms"] > 0, latency


async def test_accounting_smoke_writes_every_figure(tmp_path: Path) -> None:
    report = await _smoke("accounting", "readings/CPU-s", tmp_path)
    # the span's readings were written and recomputed through the API
    (books,) = report["accounting"]["runs"]
    assert "error" not in books, books
    assert books["readings"] > 0 and books["recompute_s"] > 0 and books["readings_per_s"] > 0, books


async def test_memory_soak_smoke_samples_rss_over_time(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    done = await _bench("--suite", "memory", "--profile", "smoke", "--out", str(out))
    assert "growth MiB/10 min" in done.stdout  # the table
    report = json.loads(out.read_text())
    assert report["modbus"]["runs"] == [] and report["ingest"]["runs"] == []  # only the suite asked for
    [run] = report["memory"]["runs"]
    assert "error" not in run, run
    assert run["duration_s"] >= 19 and len(run["samples"]) >= 10, run  # 20 s, a sample a second
    assert all(rss > 10 for _, rss in run["samples"]), run  # a Python process with its libraries
    assert run["peak_rss_mb"] >= run["rss_max_mb"] - 1, run  # VmHWM is at least every sample (kB rounding)
    assert run["growth_mb_per_10min"] is not None and run["points_per_s"] > 0, run

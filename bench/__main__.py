"""The benchmark suite: one command, a table on stdout, the figures as JSON in bench/results/.

    .venv/bin/python -m bench [--profile smoke|quick|full] [--only WORKLOAD ...] [--suite SUITE ...] [--peers]
    .venv/bin/python -m bench --suite memory [--profile ...]   # the collect role's RSS over time

Profiles: `smoke` (seconds; CI runs it so the suite keeps working: tiny workloads, one short
window), `quick` (the real workloads, 20 s windows, each contender twice, medians), `full` (60 s
windows, three times); the memory soak (`--suite memory`, not run unless asked) lasts 20 s, 3 min
and 30 min in them. `--peers` adds Node-RED and ThingsBoard IoT Gateway (bench/peers/, installed
on first use into a cache). Nothing is asserted: these are measurements. bench/README.md says what each
figure means.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from bench import accounting_e2e, ingest_e2e, latency_e2e, memory_soak, opcua_e2e, peers
from bench.harness import ROOT, Farm, Subscriber, alternating, load_average, machine
from bench.modbus_e2e import Contender, Ferrogate, Floor, Timing, measure
from bench.workloads import workloads
from ferrogate.gateway.services import InfluxDB, Mosquitto, start_influxdb, start_mosquitto

RESULTS = ROOT / "bench" / "results"


@dataclass(frozen=True)
class Profile:
    timing: Timing
    repeats: int
    ingest_points: int
    ingest_batch_sizes: tuple[int, ...]
    latency_workload: str  # a plant layout (bench/workloads.py); plant100x100 is 10,000 points/s
    latency_timing: Timing
    accounting_hours: int  # of 1-second readings of 10 assets; the issue asks for a month (720)
    sustained: tuple[int, int]  # ingest fed this many points/s for this many seconds
    soak: memory_soak.SoakTiming


PROFILES = {
    "smoke": Profile(
        Timing(1.0, 3),
        1,
        20_000,
        (5000,),
        "plant10x100",
        Timing(3.0, 5),
        2,
        (2000, 4),
        memory_soak.SoakTiming(2.0, 20.0, 1.0),
    ),
    "quick": Profile(
        Timing(5.0, 20),
        2,
        500_000,
        (1000, 5000, 20_000),
        "plant100x100",
        Timing(10.0, 60),
        24,
        (10_000, 60),
        memory_soak.SoakTiming(10.0, 180.0, 2.0),
    ),
    "full": Profile(
        Timing(10.0, 60),
        3,
        500_000,
        (1000, 5000, 20_000),
        "plant100x100",
        Timing(30.0, 300),
        720,
        (10_000, 300),
        memory_soak.SoakTiming(30.0, 1800.0, 5.0),
    ),
}
SUITES = ("modbus", "opcua", "ingest", "latency", "accounting", "memory")
# what `--suite` runs when not given: the soak takes half an hour in the full profile, so it is asked for
DEFAULT_SUITES = ("modbus", "opcua", "ingest", "latency", "accounting")
MEDIAN_FIELDS = (
    "points_per_s",
    "cpu_share",
    "sys_share",
    "points_per_cpu_s",
    "requests_per_scan",
    "missed_scans",
    "peak_rss_mb",
    "latency_p50_ms",
    "latency_p99_ms",
)


def run_modbus(
    profile_name: str, only: list[str], work: Path, py_spy: Path | None = None, peers: list[Contender] | None = None
) -> list[dict[str, object]]:
    profile = PROFILES[profile_name]
    contenders: list[Contender] = [Ferrogate(), Floor(), *(peers or [])]
    broker = start_mosquitto(work / "mosquitto")
    subscriber = Subscriber(broker.port, "")
    runs: list[dict[str, object]] = []
    try:
        for workload in workloads(profile_name):
            if only and workload.name not in only:
                continue
            try:
                farm = Farm(workload.name, profile_name, work / f"farm-{workload.name}.log")
            except RuntimeError as exc:
                print(f"  {workload.name}: FAILED: {exc}", flush=True)
                runs.append({"workload": workload.name, "contender": "-", "error": str(exc)})
                continue
            try:
                able = []
                for contender in contenders:
                    reason = contender.supports(workload)
                    if reason is None:
                        able.append(contender)
                        continue
                    print(f"  {workload.name} {contender.name}: skipped: {reason}", flush=True)
                    runs.append({"workload": workload.name, "contender": contender.name, "skipped": reason})
                for repeat, contender in alternating(able, profile.repeats):
                    where = work / f"{workload.name}-{contender.name}-{repeat}"
                    stacks = py_spy / f"{workload.name}-{contender.name}-{repeat}.txt" if py_spy else None
                    try:
                        run = measure(contender, workload, farm, subscriber, broker.port, where, profile.timing, stacks)
                    except (RuntimeError, TimeoutError) as exc:  # one failed measurement: the others still count
                        print(f"  {workload.name} {contender.name} #{repeat}: FAILED: {exc}", flush=True)
                        runs.append({"workload": workload.name, "contender": contender.name, "error": str(exc)})
                        continue
                    run["repeat"] = repeat
                    run["load_average"] = load_average()
                    runs.append(run)
                    print(_progress(run), flush=True)
            finally:
                farm.stop()
    finally:
        subscriber.close()
        broker.process.stop()
    return runs


def run_opcua(profile_name: str, only: list[str], work: Path, py_spy: Path | None = None) -> list[dict[str, object]]:
    profile = PROFILES[profile_name]
    # a collector connecting to servers of thousands of nodes reads them all and creates as many
    # monitored items before its first scan: a minute or more on a busy box
    timing = replace(profile.timing, start_timeout_s=max(profile.timing.start_timeout_s, 300.0))
    broker = start_mosquitto(work / "opcua-mosquitto")
    subscriber = Subscriber(broker.port, "")
    runs: list[dict[str, object]] = []
    try:
        for workload in opcua_e2e.WORKLOADS[profile_name]:
            if only and workload.name not in only:
                continue
            try:
                farm = opcua_e2e.OpcUaFarm(workload, work / f"farm-{workload.name}.log")
            except RuntimeError as exc:
                print(f"  {workload.name}: FAILED: {exc}", flush=True)
                runs.append({"workload": workload.name, "contender": "-", "error": str(exc)})
                continue
            try:
                for repeat, contender in alternating(opcua_e2e.contenders(), profile.repeats):
                    label = f"{workload.name}-{contender.name}-{contender.mode}-{repeat}"
                    stacks = py_spy / f"{label}.txt" if py_spy else None
                    try:
                        run = opcua_e2e.measure(contender, farm, subscriber, broker.port, work / label, timing, stacks)
                    except (RuntimeError, TimeoutError) as exc:
                        print(f"  {label}: FAILED: {exc}", flush=True)
                        runs.append(
                            {"workload": workload.name, "contender": contender.name, "mode": contender.mode}
                            | {"error": str(exc)}
                        )
                        continue
                    _record(
                        runs,
                        run,
                        repeat,
                        f"  {label}: {_fmt(run['changes_per_cpu_s'], ',.0f')} changes/CPU-s, "
                        f"{run['changes_per_s']:,.0f} changes/s, lost {run['changes_lost']}, "
                        f"{run['peak_rss_mb']:.0f} MiB",
                    )
            finally:
                farm.stop()
    finally:
        subscriber.close()
        broker.process.stop()
    return runs


OPCUA_MEDIANS = (
    "changes_per_s",
    "cpu_share",
    "changes_per_cpu_s",
    "changes_lost",
    "changes_written",
    "peak_rss_mb",
    "server_cpu_share",
    "server_cycles_late",
    "latency_p99_ms",
)


def summarise_opcua(runs: list[dict[str, object]]) -> list[dict[str, object]]:
    """Medians over the repeats of each (workload, mode, contender); ferrogate's ratio to the floor
    in the same mode."""
    keys = list(dict.fromkeys((r["workload"], r.get("mode"), r["contender"]) for r in runs))
    rows = []
    for workload, mode, contender in keys:
        mine = [
            r
            for r in runs
            if (r["workload"], r.get("mode"), r["contender"]) == (workload, mode, contender) and "error" not in r
        ]
        if not mine:
            continue
        row: dict[str, object] = {"workload": workload, "mode": mode, "contender": contender, "runs": len(mine)}
        for name in OPCUA_MEDIANS:
            values = [r[name] for r in mine if r[name] is not None]
            row[name] = statistics.median(values) if values else None
        rows.append(row)
    for row in rows:
        floor = next(
            (r for r in rows if (r["workload"], r["mode"], r["contender"]) == (row["workload"], row["mode"], "floor")),
            None,
        )
        ours, theirs = row["changes_per_cpu_s"], floor and floor["changes_per_cpu_s"]
        row["ratio_to_floor"] = ours / theirs if ours and theirs else None
    return rows


def opcua_table(rows: list[dict[str, object]]) -> str:
    lines = [
        "| workload | mode | contender | changes/s | CPU % | changes/CPU-s | x floor | lost | peak RSS MiB "
        "| server CPU % | server late | p99 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['workload']} | {r['mode']} | {r['contender']} | {r['changes_per_s']:,.0f} "
            f"| {100 * r['cpu_share']:.1f} | {_fmt(r['changes_per_cpu_s'], ',.0f')} "
            f"| {_fmt(r['ratio_to_floor'], '.2f')} | {r['changes_lost']:,.0f} of {r['changes_written']:,.0f} "
            f"| {r['peak_rss_mb']:.1f} | {100 * r['server_cpu_share']:.0f} | {r['server_cycles_late']:.0f} "
            f"| {_fmt(r['latency_p99_ms'], '.0f')} |"
        )
    return "\n".join(lines)


def run_memory(profile_name: str, work: Path) -> list[dict[str, object]]:
    timing = PROFILES[profile_name].soak
    workload = memory_soak.soak_workload(profile_name)
    print(f"  memory soak: {workload.name}, {timing.duration_s / 60:.1f} min after {timing.warmup_s:.0f} s", flush=True)
    broker = start_mosquitto(work / "soak-mosquitto")
    subscriber = Subscriber(broker.port, "")
    try:
        run = memory_soak.soak(workload, profile_name, broker.port, subscriber, work / "soak", timing)
    except (RuntimeError, TimeoutError) as exc:
        print(f"  memory soak: FAILED: {exc}", flush=True)
        return [{"workload": workload.name, "error": str(exc)}]
    finally:
        subscriber.close()
        broker.process.stop()
    run["load_average"] = load_average()
    return [run]


def _record(runs: list[dict[str, object]], run: dict[str, object], repeat: int, line: str) -> None:
    """Keep a measurement (its repeat, the load average after it) and print `line` and the load."""
    run["repeat"] = repeat
    run["load_average"] = load_average()
    runs.append(run)
    print(f"{line}, load {run['load_average'][0]}", flush=True)


def run_ingest(
    profile_name: str, work: Path, py_spy: Path | None = None, baseline: Path | None = None
) -> list[dict[str, object]]:
    """Each batch size, each contender (`baseline` too with a source tree), `repeats` times, the
    order alternating; each run's ratio to the floor's run of the same batch size and repeat."""
    profile = PROFILES[profile_name]
    contenders = ["ferrogate", "floor", *(["baseline"] if baseline is not None else [])]
    broker = start_mosquitto(work / "ingest-mosquitto")
    database = start_influxdb(work / "influxdb")
    runs: list[dict[str, object]] = []
    try:
        for repeat in range(profile.repeats):
            for batch in profile.ingest_batch_sizes:
                for contender in contenders if repeat % 2 == 0 else contenders[::-1]:
                    where = work / f"ingest-{contender}-{batch}"
                    stacks = py_spy / f"ingest-{batch}-{contender}-{repeat}.txt" if py_spy else None
                    try:
                        run = ingest_e2e.measure(
                            contender,
                            batch,
                            profile.ingest_points,
                            broker.port,
                            database.port,
                            where,
                            len(runs),
                            stacks,
                            baseline,
                        )
                    except (RuntimeError, TimeoutError) as exc:
                        print(f"  ingest {contender} batch {batch}: FAILED: {exc}", flush=True)
                        runs.append({"contender": contender, "batch_size": batch, "repeat": repeat, "error": str(exc)})
                        continue
                    _record(
                        runs,
                        run,
                        repeat,
                        f"  ingest batch {batch:<6} {contender:<10}: {_fmt(run['points_per_cpu_s'], ',.0f')} "
                        f"points/CPU-s, {run['points_per_s']:,.0f} points/s, {run['peak_rss_mb']:.0f} MiB",
                    )
    finally:
        broker.process.stop()
        database.process.stop()
    for run in runs:
        floor = next(
            (
                r
                for r in runs
                if r.get("contender") == "floor"
                and r.get("batch_size") == run.get("batch_size")
                and r.get("repeat") == run.get("repeat")
            ),
            None,
        )
        ours, theirs = run.get("points_per_cpu_s"), floor and floor.get("points_per_cpu_s")
        run["ratio_to_floor"] = ours / theirs if ours and theirs else None
    return runs


def summarise_ingest(runs: list[dict[str, object]]) -> list[dict[str, object]]:
    """Medians over the repeats of each (batch size, contender); ratios: the median of the per-repeat
    ratios (each to the floor's run beside it)."""
    keys = list(dict.fromkeys((r["batch_size"], r["contender"]) for r in runs))
    rows = []
    for batch, contender in sorted(keys, key=lambda k: (k[0], k[1] != "ferrogate", k[1])):
        done = [r for r in runs if (r["batch_size"], r["contender"]) == (batch, contender) and "error" not in r]
        if not done:
            rows.append({"batch_size": batch, "contender": contender, "error": "every run failed"})
            continue
        row: dict[str, object] = {"batch_size": batch, "contender": contender, "repeats": len(done)}
        for field in ("points_per_s", "points_per_cpu_s", "cpu_s", "peak_rss_mb", "ratio_to_floor"):
            values = [r[field] for r in done if r.get(field) is not None]
            row[field] = statistics.median(values) if values else None
        rows.append(row)
    return rows


def _services_run(
    name: str, work: Path, label: dict[str, object], run: Callable[[Mosquitto, InfluxDB], dict[str, object]]
) -> list[dict[str, object]]:
    """One measurement with a Mosquitto and an InfluxDB of its own: `run(broker, database)`."""
    broker = start_mosquitto(work / f"{name}-mosquitto")
    database = start_influxdb(work / f"{name}-influxdb")
    try:
        result = run(broker, database)
    except (RuntimeError, TimeoutError) as exc:  # the other suites' figures still count
        print(f"  {name}: FAILED: {exc}", flush=True)
        return [{**label, "error": str(exc)}]
    finally:
        broker.process.stop()
        database.process.stop()
    result["load_average"] = load_average()
    return [result]


def run_latency(profile_name: str, work: Path) -> list[dict[str, object]]:
    profile = PROFILES[profile_name]
    workload, t = profile.latency_workload, profile.latency_timing
    return _services_run(
        "latency",
        work,
        {"workload": workload},
        lambda broker, influx: latency_e2e.measure(
            work / "latency", workload, broker.port, influx.port, t.warmup_s, t.window_s
        ),
    )


def latency_table(runs: list[dict[str, object]]) -> str:
    lines = [
        "| workload | points/s | CPU % | backlog start -> end | to | changes | p50 ms | p95 ms | p99 ms |",
        "|----------|----------|-------|----------------------|----|---------|--------|--------|--------|",
    ]
    for r in runs:
        if "error" in r:
            lines.append(f"| {r['workload']} | failed: {r['error']} |")
            continue
        for to in ("mqtt", "influxdb", "api"):
            lines.append(
                f"| {r['workload']} | {r['points_per_s']:,.0f} | {100 * r['cpu_share']:.1f} "
                f"| {r['backlog_start_points']:,} -> {r['backlog_end_points']:,} | {to} | {r[f'{to}_changes']} "
                + "".join(f"| {_fmt(r[f'{to}_p{q}_ms'], '.0f')} " for q in (50, 95, 99))
                + "|"
            )
    return "\n".join(lines)


def run_accounting(profile_name: str, work: Path) -> list[dict[str, object]]:
    hours = PROFILES[profile_name].accounting_hours
    return _services_run(
        "accounting",
        work,
        {"hours": hours},
        lambda broker, influx: accounting_e2e.measure(
            work / "accounting", broker.port, influx.port, hours, influx.process.proc and influx.process.proc.pid
        ),
    )


def run_sustained(profile_name: str, work: Path) -> list[dict[str, object]]:
    rate, seconds = PROFILES[profile_name].sustained
    return _services_run(
        "sustained",
        work,
        {"rate_points_s": rate},
        lambda broker, influx: ingest_e2e.sustained(rate, seconds, broker.port, influx.port, work / "sustained"),
    )


def sustained_table(runs: list[dict[str, object]]) -> str:
    return _markdown(
        ["points/s fed", "seconds", "CPU %", "backlog first -> last second", "backlog growth points/s", "peak RSS MiB"],
        runs,
        lambda r: str(r["rate_points_s"]),
        lambda r: [
            f"{r['rate_points_s']:,}",
            str(r["seconds"]),
            f"{100 * r['cpu_share']:.1f}",
            f"{r['backlog_points'][0]:,} -> {r['backlog_points'][-1]:,}",
            _fmt(r["backlog_growth_points_s"], ",.0f"),
            f"{r['peak_rss_mb']:.0f}",
        ],
    )


def _markdown(
    columns: list[str], runs: list[dict[str, object]], label: Callable[[dict], str], cells: Callable[[dict], list[str]]
) -> str:
    """A markdown table: a row per run, a failed run as its label and its error."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("-" * (len(c) + 2) for c in columns) + "|"]
    for r in runs:
        row = [label(r), f"failed: {r['error']}"] if "error" in r else cells(r)
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def accounting_table(runs: list[dict[str, object]]) -> str:
    return _markdown(
        [
            "hours",
            "assets",
            "readings",
            "recompute s",
            "CPU s",
            "influxd CPU s",
            "readings/s",
            "readings/CPU-s",
            "peak RSS MiB",
        ],
        runs,
        lambda r: str(r["hours"]),
        lambda r: [
            str(r["hours"]),
            str(r["assets"]),
            f"{r['readings']:,}",
            f"{r['recompute_s']:.1f}",
            f"{r['cpu_s']:.1f}",
            _fmt(r.get("influxd_cpu_s"), ".1f"),
            f"{r['readings_per_s']:,.0f}",
            _fmt(r["readings_per_cpu_s"], ",.0f"),
            f"{r['peak_rss_mb']:.0f}",
        ],
    )


def ingest_table(runs: list[dict[str, object]]) -> str:
    return _markdown(
        ["batch size", "contender", "points/s (wall)", "points/CPU-s", "x floor", "peak RSS MiB"],
        runs,
        lambda r: f"{r['batch_size']} | {r['contender']}",
        lambda r: [
            f"{r['batch_size']:>10}",
            f"{r['contender']:<10}",
            f"{r['points_per_s']:15,.0f}",
            _fmt(r["points_per_cpu_s"], "12,.0f"),
            _fmt(r["ratio_to_floor"], "7.2f"),
            f"{r['peak_rss_mb']:12.1f}",
        ],
    )


def summarise(runs: list[dict[str, object]], peers: dict[str, str] | None = None) -> list[dict[str, object]]:
    """Medians over the repeats of each (workload, contender), ferrogate's ratio to the floor, and on
    ferrogate's rows its ratio to each peer (`peers`: name -> label) as `ratio_to_<name>`."""
    keys = list(dict.fromkeys((r["workload"], r["contender"]) for r in runs))
    rows = []
    for workload, contender in keys:
        mine = [r for r in runs if r["workload"] == workload and r["contender"] == contender and "points_per_s" in r]
        if not mine:
            continue
        row: dict[str, object] = {"workload": workload, "contender": contender, "runs": len(mine)}
        for name in MEDIAN_FIELDS:
            values = [r[name] for r in mine if r[name] is not None]
            row[name] = statistics.median(values) if values else None
        rows.append(row)
    for row in rows:
        floor = next((r for r in rows if r["workload"] == row["workload"] and r["contender"] == "floor"), None)
        ours, theirs = row["points_per_cpu_s"], floor and floor["points_per_cpu_s"]
        row["ratio_to_floor"] = ours / theirs if ours and theirs else None
        for peer in peers or {}:
            if row["contender"] == "ferrogate":
                other = next((r for r in rows if r["workload"] == row["workload"] and r["contender"] == peer), None)
                theirs = other and other["points_per_cpu_s"]
                row[f"ratio_to_{peer}"] = ours / theirs if ours and theirs else None
    return rows


def _fmt(value: object, spec: str) -> str:
    """`value` formatted, or "-" right-aligned to the spec's width (so the table's columns line up)."""
    if value is not None:
        return format(value, spec)
    width = re.match(r"\d*", spec).group()  # type: ignore[union-attr]  # always matches, maybe empty
    return format("-", f">{width}") if width else "-"


def _progress(run: dict[str, object]) -> str:
    return (
        f"  {run['workload']:<14} {run['contender']:<10} #{run['repeat']}: "
        f"{_fmt(run['points_per_cpu_s'], ',.0f')} points/CPU-s ({_fmt(run['sys_share'], '.0%')} sys), "
        f"{_fmt(run['peak_rss_mb'], '.0f')} MiB, "
        f"load {run['load_average'][0]}"
    )


def table(rows: list[dict[str, object]], peers: dict[str, str] | None = None) -> str:
    """The Modbus table; `peers` (name -> label) adds a column "x <label>" per peer: ferrogate's
    points/CPU-s over the peer's, on ferrogate's rows."""
    peers = peers or {}
    extra = "".join(f" x {label} |" for label in peers.values())
    head = (
        f"| {'workload':<14} | {'contender':<10} | points/s | CPU % | points/CPU-s | x floor |{extra} req/scan "
        "| missed scans | peak RSS MiB | p50 ms | p99 ms |"
    )
    lines = [head, "|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|"]
    for r in rows:
        lines.append(
            f"| {r['workload']:<14} | {r['contender']:<10} | {_fmt(r['points_per_s'], '8,.0f')} "
            f"| {_fmt(100 * r['cpu_share'], '5.1f')} | {_fmt(r['points_per_cpu_s'], '12,.0f')} "
            f"| {_fmt(r['ratio_to_floor'], '7.2f')} |"
            + "".join(f" {_fmt(r.get(f'ratio_to_{name}'), f'{len(label) + 2}.2f')} |" for name, label in peers.items())
            + f" {_fmt(r['requests_per_scan'], '8.2f')} "
            f"| {_fmt(r['missed_scans'], '12.0f')} | {_fmt(r['peak_rss_mb'], '12.1f')} "
            f"| {_fmt(r['latency_p50_ms'], '6.1f')} | {_fmt(r['latency_p99_ms'], '6.1f')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument("--only", nargs="*", default=[], help="workload names (bench/workloads.py, bench/opcua_e2e.py)")
    parser.add_argument("--out", type=Path, help="JSON file (default bench/results/<profile>-<UTC time>.json)")
    parser.add_argument("--suite", nargs="*", choices=SUITES, default=list(DEFAULT_SUITES))
    parser.add_argument("--py-spy", type=Path, help="sample each contender with py-spy into this directory")
    parser.add_argument(
        "--peers", action="store_true", help="also Node-RED and ThingsBoard IoT Gateway (installed into a cache)"
    )
    parser.add_argument("--repeats", type=int, help="measurements of each contender (default: the profile's)")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="ingest suite: also run ferrogate from this source tree (e.g. main's) beside the worktree's",
    )
    args = parser.parse_args(argv)
    if args.repeats:
        PROFILES[args.profile] = replace(PROFILES[args.profile], repeats=args.repeats)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    load_before = load_average()
    print(f"bench {args.profile}: {started}, load average {load_before} on {machine()}", flush=True)
    ready, skipped = _peers(args.peers and "modbus" in args.suite)
    with tempfile.TemporaryDirectory(prefix="ferrogate-bench-") as tmp:
        runs = run_modbus(args.profile, args.only, Path(tmp), args.py_spy, ready) if "modbus" in args.suite else []
        opcua = run_opcua(args.profile, args.only, Path(tmp), args.py_spy) if "opcua" in args.suite else []
        ingest = run_ingest(args.profile, Path(tmp), args.py_spy, args.baseline) if "ingest" in args.suite else []
        held = run_sustained(args.profile, Path(tmp)) if "ingest" in args.suite else []
        latency = run_latency(args.profile, Path(tmp)) if "latency" in args.suite else []
        memory = run_memory(args.profile, Path(tmp)) if "memory" in args.suite else []
        accounting = run_accounting(args.profile, Path(tmp)) if "accounting" in args.suite else []
    labels = {p.name: p.label for p in ready}
    rows = summarise(runs, labels)
    report = {
        "profile": args.profile,
        "started_utc": started,
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "modbus": {"summary": rows, "runs": runs},
        "peers": {"versions": peers.versions(), "skipped": skipped} if args.peers else None,
        "opcua": {"summary": summarise_opcua(opcua), "runs": opcua},
        "ingest": {
            "points_per_burst": PROFILES[args.profile].ingest_points,
            "baseline_tree": str(args.baseline) if args.baseline else None,
            "summary": summarise_ingest(ingest),
            "runs": ingest,
            "sustained": held,
        },
        "latency": {"runs": latency},
        "accounting": {"runs": accounting},
        "memory": {"runs": memory},
    }
    out = args.out or RESULTS / f"{args.profile}-{started.replace(':', '')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    if rows:
        print("\nModbus collection end to end, 1 s scans (medians):")
        print(table(rows, labels))
    for name, reason in skipped.items():
        print(f"{name}: not measured: {reason}")
    if opcua:
        print("\nOPC UA collection end to end, every node changing once a second (medians):")
        print(opcua_table(report["opcua"]["summary"]))
    if ingest:
        print(f"\nIngest: a burst of {PROFILES[args.profile].ingest_points:,} points, MQTT -> InfluxDB (medians):")
        print(ingest_table(report["ingest"]["summary"]))
    if held:
        print("\nIngest fed at a steady rate (ferrogate, batch 5,000): does the backlog grow?")
        print(sustained_table(held))
    if latency:
        print("\nLatency, a value's change in the simulator -> MQTT / InfluxDB / API live stream (1 s scans):")
        print(latency_table(latency))
    if accounting:
        print("\nAccounting recompute from InfluxDB through the API (energy role):")
        print(accounting_table(accounting))
    soaked = [r for r in memory if "error" not in r]
    if soaked:
        print("\nMemory soak of the collect role (VmRSS; growth: least-squares slope over the soak):")
        print(memory_soak.REPORT_HEAD)
        print("\n".join(memory_soak.report(r) for r in soaked))
    print(f"\nload average before {load_before}, after {report['load_average_after']}; JSON: {out}")
    return out


def _peers(wanted: bool) -> tuple[list[Contender], dict[str, str]]:
    """The peers to run (installing them on first use) and why any is not run."""
    if not wanted:
        return [], {}
    print("peers: installing or checking Node-RED and ThingsBoard IoT Gateway (cached)", flush=True)
    ready, skipped = peers.load(install=True)
    for contender in ready:
        print(f"  {contender.name}: ready", flush=True)
    for name, reason in skipped.items():
        print(f"  {name}: skipped: {reason}", flush=True)
    return ready, skipped


if __name__ == "__main__":
    main()

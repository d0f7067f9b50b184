"""The benchmark suite: one command, a table on stdout, the figures as JSON in bench/results/.

    .venv/bin/python -m bench [--profile smoke|quick|full] [--only WORKLOAD ...] [--out FILE]
    .venv/bin/python -m bench --suite memory [--profile ...]   # the collect role's RSS over time

Profiles: `smoke` (seconds; CI runs it so the suite keeps working: tiny workloads, one short
window), `quick` (the real workloads, 20 s windows, each contender twice, medians), `full` (60 s
windows, three times); the memory soak (`--suite memory`, not run unless asked) lasts 20 s, 3 min
and 30 min in them. Nothing is asserted: these are measurements. bench/README.md says what each
figure means.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import ingest_e2e, memory_soak
from bench.harness import ROOT, Farm, Subscriber, load_average, machine
from bench.modbus_e2e import Contender, Ferrogate, Floor, Timing, measure
from bench.workloads import workloads
from ferrogate.gateway.services import start_influxdb, start_mosquitto

RESULTS = ROOT / "bench" / "results"


@dataclass(frozen=True)
class Profile:
    timing: Timing
    repeats: int
    ingest_points: int
    ingest_batch_sizes: tuple[int, ...]
    soak: memory_soak.SoakTiming


PROFILES = {
    "smoke": Profile(Timing(warmup_s=1.0, window_s=3), 1, 20_000, (5000,), memory_soak.SoakTiming(2.0, 20.0, 1.0)),
    "quick": Profile(
        Timing(warmup_s=5.0, window_s=20),
        2,
        500_000,
        (1000, 5000, 20_000),
        memory_soak.SoakTiming(10.0, 180.0, 2.0),
    ),
    "full": Profile(
        Timing(warmup_s=10.0, window_s=60),
        3,
        500_000,
        (1000, 5000, 20_000),
        memory_soak.SoakTiming(30.0, 1800.0, 5.0),
    ),
}
SUITES = ("modbus", "ingest", "memory")
# what `--suite` runs when not given: the soak takes half an hour in the full profile, so it is asked for
DEFAULT_SUITES = ("modbus", "ingest")
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


def run_modbus(profile_name: str, only: list[str], work: Path, py_spy: Path | None = None) -> list[dict[str, object]]:
    profile = PROFILES[profile_name]
    contenders: list[Contender] = [Ferrogate(), Floor()]
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
                for repeat in range(profile.repeats):
                    # alternate the order so neither contender always meets the box's load first
                    order = contenders if repeat % 2 == 0 else contenders[::-1]
                    for contender in order:
                        where = work / f"{workload.name}-{contender.name}-{repeat}"
                        stacks = py_spy / f"{workload.name}-{contender.name}-{repeat}.txt" if py_spy else None
                        try:
                            run = measure(
                                contender, workload, farm, subscriber, broker.port, where, profile.timing, stacks
                            )
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


def run_ingest(profile_name: str, work: Path) -> list[dict[str, object]]:
    profile = PROFILES[profile_name]
    broker = start_mosquitto(work / "ingest-mosquitto")
    database = start_influxdb(work / "influxdb")
    runs: list[dict[str, object]] = []
    try:
        for batch in profile.ingest_batch_sizes:
            for contender in ("ferrogate", "floor"):
                where = work / f"ingest-{contender}-{batch}"
                try:
                    run = ingest_e2e.measure(
                        contender, batch, profile.ingest_points, broker.port, database.port, where, len(runs)
                    )
                except (RuntimeError, TimeoutError) as exc:
                    print(f"  ingest {contender} batch {batch}: FAILED: {exc}", flush=True)
                    runs.append({"contender": contender, "batch_size": batch, "error": str(exc)})
                    continue
                run["load_average"] = load_average()
                runs.append(run)
                print(
                    f"  ingest batch {batch:<6} {contender:<10}: {_fmt(run['points_per_cpu_s'], ',.0f')} points/CPU-s, "
                    f"{run['points_per_s']:,.0f} points/s, {run['peak_rss_mb']:.0f} MiB, load {run['load_average'][0]}",
                    flush=True,
                )
    finally:
        broker.process.stop()
        database.process.stop()
    for run in runs:
        floor = next(
            (r for r in runs if r.get("contender") == "floor" and r.get("batch_size") == run.get("batch_size")), None
        )
        ours, theirs = run.get("points_per_cpu_s"), floor and floor.get("points_per_cpu_s")
        run["ratio_to_floor"] = ours / theirs if ours and theirs else None
    return runs


def ingest_table(runs: list[dict[str, object]]) -> str:
    lines = [
        "| batch size | contender  | points/s (wall) | points/CPU-s | x floor | peak RSS MiB |",
        "|------------|------------|-----------------|--------------|---------|--------------|",
    ]
    for r in runs:
        if "error" in r:
            lines.append(f"| {r['batch_size']:>10} | {r['contender']:<10} | failed: {r['error']} |")
            continue
        lines.append(
            f"| {r['batch_size']:>10} | {r['contender']:<10} | {r['points_per_s']:15,.0f} "
            f"| {_fmt(r['points_per_cpu_s'], '12,.0f')} | {_fmt(r['ratio_to_floor'], '7.2f')} "
            f"| {r['peak_rss_mb']:12.1f} |"
        )
    return "\n".join(lines)


def summarise(runs: list[dict[str, object]]) -> list[dict[str, object]]:
    """Medians over the repeats of each (workload, contender), and ferrogate's ratio to the floor."""
    keys = list(dict.fromkeys((r["workload"], r["contender"]) for r in runs))
    rows = []
    for workload, contender in keys:
        mine = [r for r in runs if r["workload"] == workload and r["contender"] == contender and "error" not in r]
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
    return rows


def _fmt(value: object, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _progress(run: dict[str, object]) -> str:
    return (
        f"  {run['workload']:<14} {run['contender']:<10} #{run['repeat']}: "
        f"{_fmt(run['points_per_cpu_s'], ',.0f')} points/CPU-s ({run['sys_share']:.0%} sys), "
        f"{_fmt(run['peak_rss_mb'], '.0f')} MiB, "
        f"load {run['load_average'][0]}"
    )


def table(rows: list[dict[str, object]]) -> str:
    head = (
        f"| {'workload':<14} | {'contender':<10} | points/s | CPU % | points/CPU-s | x floor | req/scan "
        "| missed scans | peak RSS MiB | p50 ms | p99 ms |"
    )
    lines = [head, "|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|"]
    for r in rows:
        lines.append(
            f"| {r['workload']:<14} | {r['contender']:<10} | {_fmt(r['points_per_s'], '8,.0f')} "
            f"| {_fmt(100 * r['cpu_share'], '5.1f')} | {_fmt(r['points_per_cpu_s'], '12,.0f')} "
            f"| {_fmt(r['ratio_to_floor'], '7.2f')} | {_fmt(r['requests_per_scan'], '8.2f')} "
            f"| {_fmt(r['missed_scans'], '12.0f')} | {_fmt(r['peak_rss_mb'], '12.1f')} "
            f"| {_fmt(r['latency_p50_ms'], '6.1f')} | {_fmt(r['latency_p99_ms'], '6.1f')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument("--only", nargs="*", default=[], help="workload names (bench/workloads.py)")
    parser.add_argument("--out", type=Path, help="JSON file (default bench/results/<profile>-<UTC time>.json)")
    parser.add_argument("--suite", nargs="*", choices=SUITES, default=list(DEFAULT_SUITES))
    parser.add_argument("--py-spy", type=Path, help="sample each contender with py-spy into this directory")
    args = parser.parse_args(argv)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    load_before = load_average()
    print(f"bench {args.profile}: {started}, load average {load_before} on {machine()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="ferrogate-bench-") as tmp:
        runs = run_modbus(args.profile, args.only, Path(tmp), args.py_spy) if "modbus" in args.suite else []
        ingest = run_ingest(args.profile, Path(tmp)) if "ingest" in args.suite else []
        memory = run_memory(args.profile, Path(tmp)) if "memory" in args.suite else []
    rows = summarise(runs)
    report = {
        "profile": args.profile,
        "started_utc": started,
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "modbus": {"summary": rows, "runs": runs},
        "ingest": {"points_per_burst": PROFILES[args.profile].ingest_points, "runs": ingest},
        "memory": {"runs": memory},
    }
    out = args.out or RESULTS / f"{args.profile}-{started.replace(':', '')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    if rows:
        print("\nModbus collection end to end, 1 s scans (medians):")
        print(table(rows))
    if ingest:
        print(f"\nIngest: a burst of {PROFILES[args.profile].ingest_points:,} points, MQTT -> InfluxDB:")
        print(ingest_table(ingest))
    soaked = [r for r in memory if "error" not in r]
    if soaked:
        print("\nMemory soak of the collect role (VmRSS; growth: least-squares slope over the soak):")
        print(memory_soak.REPORT_HEAD)
        print("\n".join(memory_soak.report(r) for r in soaked))
    print(f"\nload average before {load_before}, after {report['load_average_after']}; JSON: {out}")
    return out


if __name__ == "__main__":
    main()

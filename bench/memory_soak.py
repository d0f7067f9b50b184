"""Memory over time (issue 15, item 5): the `collect` role at a whole plant's size, RSS sampled while
it runs, and how fast it grows.

The ferrogate process is the one bench/modbus_e2e.py measures (`run --role collect`, disk spool,
QoS 1 to the bench's Mosquitto, waiting for a consumer) on the plant100x100 workload (100 devices x
100 points at 1 s: 10,000 points/s). After a warm-up, VmRSS is read from /proc/<pid>/status every
`sample_s`; the growth is the least-squares slope of RSS over time, given per 10 minutes, with the
RSS at the start and end of the soak and the peak (VmHWM). A flat process grows by about nothing;
the spool's own file cache and SQLite page cache are part of the figure, as they are on a site.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from bench.harness import Farm, Subscriber, peak_rss_mb, stop_process, wait_for
from bench.modbus_e2e import Ferrogate, start
from bench.workloads import Workload, find

TEN_MINUTES_S = 600.0


@dataclass(frozen=True)
class SoakTiming:
    warmup_s: float
    duration_s: float
    sample_s: float


def rss_mb(pid: int) -> float:
    """VmRSS: the process's resident set now, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def slope_per_s(samples: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MiB) samples, MiB per second."""
    if len(samples) < 2:
        return None
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    spread = sum((t - mean_t) ** 2 for t, _ in samples)
    if spread == 0:
        return None
    return sum((t - mean_t) * (v - mean_v) for t, v in samples) / spread


def soak(
    workload: Workload, profile: str, broker_port: int, subscriber: Subscriber, work: Path, timing: SoakTiming
) -> dict[str, object]:
    work.mkdir(parents=True, exist_ok=True)
    contender = Ferrogate()
    farm = Farm(workload.name, profile, work / "farm.log")
    counts = subscriber.watch(contender.prefix, contender.counter())
    log = open(work / "ferrogate.log", "ab")  # noqa: SIM115 - closed below
    proc = None
    try:
        proc = start(contender, workload, farm, broker_port, work, log)
        wait_for(
            lambda: len(counts.devices) >= workload.devices or proc.poll() is not None,
            90,
            f"ferrogate: data from all {workload.devices} devices",
        )
        if proc.poll() is not None:
            raise RuntimeError(f"ferrogate exited with {proc.returncode}: see {work / 'ferrogate.log'}")
        time.sleep(timing.warmup_s)
        started = time.monotonic()
        points_before = counts.points
        samples: list[tuple[float, float]] = []
        next_report = started + TEN_MINUTES_S
        while True:
            now = time.monotonic()
            if proc.poll() is not None:
                raise RuntimeError(f"ferrogate exited with {proc.returncode} during the soak")
            samples.append((now - started, rss_mb(proc.pid)))
            if now >= next_report:
                print(f"  soak {now - started:6.0f} s: RSS {samples[-1][1]:.1f} MiB", flush=True)
                next_report += TEN_MINUTES_S
            if now - started >= timing.duration_s:
                break
            time.sleep(min(timing.sample_s, max(0.0, timing.duration_s - (now - started))))
        elapsed = samples[-1][0]
        points = counts.points - points_before
        peak = peak_rss_mb(proc.pid)
    finally:
        if proc is not None:
            stop_process(proc)
        log.close()
        subscriber.prefixes.pop(contender.prefix, None)
        farm.stop()
    slope = slope_per_s(samples)
    return {
        "workload": workload.name,
        "points": workload.total_points,
        "duration_s": round(elapsed, 1),
        "sample_s": timing.sample_s,
        "points_per_s": points / elapsed if elapsed else None,
        "rss_start_mb": samples[0][1],
        "rss_end_mb": samples[-1][1],
        "rss_min_mb": min(v for _, v in samples),
        "rss_max_mb": max(v for _, v in samples),
        "peak_rss_mb": peak,
        "growth_mb_per_10min": None if slope is None else slope * TEN_MINUTES_S,
        "samples": [(round(t, 1), round(v, 2)) for t, v in samples],
    }


def soak_workload(profile: str) -> Workload:
    """A whole plant (10,000 points), or the smoke profile's small one."""
    return find("plant10x100" if profile == "smoke" else "plant100x100", profile)


def report(run: dict[str, object]) -> str:
    growth = run["growth_mb_per_10min"]
    return (
        f"| {run['workload']:<12} | {run['points']:>6,} | {run['duration_s'] / 60:7.1f} "
        f"| {run['rss_start_mb']:9.1f} | {run['rss_end_mb']:7.1f} | {run['peak_rss_mb']:8.1f} "
        f"| {'-' if growth is None else format(growth, '+.2f'):>17} |"
    )


REPORT_HEAD = (
    "| workload     | points | minutes | RSS start | RSS end | peak RSS | growth MiB/10 min |\n"
    "|--------------|--------|---------|-----------|---------|----------|-------------------|"
)

"""A soak: the demo plant at 240x (tests/accounted_run.py) for hours of plant time, with device faults
drawn from a seed on every Modbus and OPC UA device (refused connections, exceptions, slow answers
near and past the timeout, OPC UA Bad status, frozen values, NaN, counter resets), all while
collector, ingest, the books and the API run in this process against the session's Mosquitto and
InfluxDB, with disk spools.

At the end: every heat and tap of the simulator's ledger matches the books within 0.5 % (a heat a
fault touched is flagged, and each unit's heats together hold no more than the ledger + 0.5 %:
energy the books could not account, e.g. a counter's jump after a freeze, is flagged, never
invented), no electricity bucket is negative, every Modbus reading sent on MQTT is in InfluxDB, both
spools are empty, and the resident memory of this process (gateway, simulators, test) grows after
start-up by no more than RSS_GROWTH_MIB_PER_H per plant hour (least-squares slope; judged in runs with
at least JUDGED_H plant hours after start-up, the long form; CI's short form bounds only the total growth).

In CI it runs 5 h of plant time (about 75 s); `scripts/reliability.sh` runs 72 h
(FERROGATE_RELIABILITY_LONG=1, about 18 minutes of soak): three times the books' 24 h reading window.
It prints the RSS per plant hour of this process, Mosquitto and influxd, with Python's allocated
blocks and C malloc's heap, and the growth per 6 h block. FERROGATE_SOAK_HOURS sets another length.
FERROGATE_SOAK_TRACEMALLOC=1 hunts a leak: Python allocations grown between plant hour 2, half-way
and the end, by component and line, and the live objects per type (untracked ones by holder). It
slows the process several times over: at 240x on a busy box the gateway then falls behind the plant
and the books' checks fail, so use a short run, and the memory bound is not asserted."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ferrogate.gateway.demo import Demo
from ferrogate.gateway.model_base import SpoolConfig
from ferrogate.gateway.services import InfluxDB, Mosquitto
from tests.accounted_run import SPEED, fast_plant
from tests.conftest import plant_on_free_ports
from tests.reliability import memory_trace
from tests.reliability.faulted_run import (
    LONG,
    Telemetry,
    compare_heats,
    no_negative_energy,
    rss_kib,
    running,
    settle,
)
from tests.test_energy_end_to_end import first_good_reading_ns

SEED = int(os.environ.get("FERROGATE_SOAK_SEED", "14"))
PLANT_HOURS = float(os.environ.get("FERROGATE_SOAK_HOURS", 72.0 if LONG else 5.0))
WINDOW_H = 24.0  # the books' reading window (tap_lookback_h x 2 in the demo plant): growth by design until full
STARTUP_H = 2.0  # plant hours of start-up (the books' first derive, connections, caches) before memory is judged
BLOCK_H = 6.0  # RSS growth is printed per block of plant hours
# After start-up this process may grow by at most this much per plant hour (at SPEED, 240x). By design
# it grows: the books' readings (until their 24 h window is full), their buckets and records (kept for
# this and the previous month), the simulator's ledger and this test's recorder of clock readings: with
# seed 14 that measured +0.62 to +0.86 MiB per plant hour (8 h, load 8-10). The simulators' logs of
# every served value (`forget_served`) grew it by +1.9 to +2.9 MiB per plant hour (24 h, load 17): one
# tuple kept per OPC UA value published. The bound lies between the two.
RSS_GROWTH_MIB_PER_H = 1.5
# the slope is judged over at least this many plant hours after start-up: over CI's 3 (45 s of wall
# time, in a test process shared with the session's other fixtures) it measured +0.40 to +0.64 alone
# and +1.67 in a full suite run, noise of the same size as the bound
JUDGED_H = 12.0
SHORT_GROWTH_MIB = 64  # CI's short form: RSS may not grow more than this over the run (it grew 2-15)
TRACE = os.environ.get("FERROGATE_SOAK_TRACEMALLOC") == "1"
SOAK_S = PLANT_HOURS * 3600 / SPEED  # wall seconds of soak
HISTORY_S = PLANT_HOURS * 3600 + 3 * 3600  # simulated time stays accelerated past the end of the soak
COUNTER_RESETS = {"eaf1_meter": None, "eaf2_meter": None, "saf2_dcs": "saf2", "saf3_dcs": "saf3"}


KINDS = ("refuse_connections", "latency_near", "latency_past", "exception", "bad_status", "freeze", "nan")


def fault_script(seed: int, devices: dict[str, str], span_s: float) -> list[dict[str, Any]]:
    """Faults in wall seconds since the simulation start (`clock: wall`), one every 2-5 s, each 1-3 s
    long (4-12 min of plant time: shorter than a tap interval, so an outage hides at most one tap),
    from 15 s on (after the gateway's first scans). Every kind comes round once in each shuffled
    round, on a device drawn from the seed that can have it; a counter reset (meter replaced) once
    per device in COUNTER_RESETS, spread over the run."""
    rng = random.Random(seed)
    faults: list[dict[str, Any]] = []
    t = 15.0
    kinds: list[str] = []
    resets = sorted(COUNTER_RESETS)
    rng.shuffle(resets)
    reset_every = span_s / (len(resets) + 1)
    while t < span_s - 10:
        if not kinds:
            kinds = list(KINDS)
            rng.shuffle(kinds)
        kind = kinds.pop()
        protocol = {"exception": "modbus", "bad_status": "opcua"}.get(kind)
        device = rng.choice(sorted(d for d, p in devices.items() if protocol in (None, p)))
        fault: dict[str, Any] = {"device": device, "at": round(t, 1), "clock": "wall"}
        fault["duration"] = round(rng.uniform(1.0, 3.0), 1)
        if kind == "latency_near":
            fault.update(fault="latency", delay_s=1.5)  # the devices' timeout is 2 s
        elif kind == "latency_past":
            fault.update(fault="latency", delay_s=2.5)
        elif kind == "exception":
            fault.update(fault="exception", code=rng.choice([4, 6]))
        elif kind == "bad_status":
            fault.update(fault="bad_status", status="BadSensorFailure", with_value=rng.random() < 0.5)
            fault["signals"] = ["power_kw"]
        elif kind == "freeze":
            counter = "exported_kwh" if device == "whg1_plc" else "energy_import_kwh"  # a generator exports
            fault.update(fault="freeze", signals=["power_kw", counter])
        elif kind == "nan":
            fault.update(fault="nan", signals=["power_kw"])  # floats: NaN on the wire
        else:
            fault["fault"] = kind
        faults.append(fault)
        if resets and t >= reset_every * (len(COUNTER_RESETS) - len(resets) + 1):
            device = resets.pop()
            reset = {"device": device, "fault": "counter_reset", "signals": ["energy_import_kwh"]}
            if COUNTER_RESETS[device] is not None:
                reset["equipment"] = COUNTER_RESETS[device]
            faults.append({**reset, "at": round(t + 0.5, 1), "clock": "wall"})
        t += rng.uniform(2.0, 5.0)
    return faults


def soak_plant(directory: Path) -> tuple[Path, list[dict[str, Any]]]:
    path = fast_plant(directory, interpolation_gap_s=300)  # the default: a fault's gap is flagged
    doc = yaml.safe_load(path.read_text())
    polled = {d["id"]: d["protocol"] for d in doc["devices"] if d["protocol"] in ("modbus", "opcua")}
    for device in doc["devices"]:
        # at 240x a 30 s reconnect backoff would be 2 h of plant time: keep it to 2 s (8 minutes)
        device["reconnect_max_s"] = 2
    faults = fault_script(SEED, polled, SOAK_S)
    doc["simulation"]["faults"] = faults
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path, faults


@pytest.fixture
async def soak(mosquitto: Mosquitto, influxdb: InfluxDB, fresh_database: str, tmp_path: Path) -> AsyncIterator:
    path, faults = soak_plant(tmp_path)
    plant = plant_on_free_ports(path, mosquitto, influxdb, fresh_database)
    assert plant.mqtt is not None and plant.influxdb is not None
    plant = plant.model_copy(
        update={
            "mqtt": plant.mqtt.model_copy(update={"spool": SpoolConfig(path=tmp_path / "mqtt-spool.sqlite")}),
            "influxdb": plant.influxdb.model_copy(update={"spool": SpoolConfig(path=tmp_path / "influx-spool.sqlite")}),
        }
    )
    async with running(plant, tmp_path, HISTORY_S, mosquitto.port, points=frozenset({"clock"})) as (
        demo,
        telemetry,
        influx,
    ):
        forget_served(demo)
        pids = {"test+gateway": os.getpid(), "mosquitto": service_pid(mosquitto), "influxd": service_pid(influxdb)}
        yield demo, telemetry, influx, faults, pids


def forget_served(demo: Demo) -> None:
    """The simulated devices remember what they served, for tests that compare it with what was
    stored (100,000 values per OPC UA server, 10,000 reads per Modbus device); the soak does
    not read them, and over its first 80 or so plant hours they were most of this process's growth
    (some 10,000 tuples per plant hour, 2 MiB/h), so they keep only their last entry here, as in the
    benchmarks (bench/farm.py: served_log=1)."""
    sim = demo.simulation
    assert sim is not None
    for modbus in sim.modbus.values():
        modbus.served = deque(maxlen=1)
    for opcua in sim.opcua.values():
        opcua.served = deque(maxlen=1)


def service_pid(service: Mosquitto | InfluxDB) -> int:
    assert service.process.proc is not None
    return service.process.proc.pid


def rss_per_plant_hour(samples: list[tuple[float, dict[str, int]]]) -> list[str]:
    """One line per whole plant hour: each process's RSS (MiB) at the first sample of that hour."""
    names = list(samples[0][1])
    lines = ["plant h  " + "  ".join(f"{n:>13}" for n in names) + "   (MiB; py: Ki blocks)"]
    hour = -1
    for h, rss in samples:
        if int(h) > hour:
            hour = int(h)
            lines.append(f"{hour:7d}  " + "  ".join(f"{rss[n] / 1024:13.1f}" for n in names))
    # growth per plant hour in blocks: flat once the books' window is full, or not
    block = BLOCK_H
    starts = [next((x for x in samples if x[0] >= k * block), None) for k in range(int(samples[-1][0] // block) + 1)]
    marks = [x for x in starts if x is not None] + [samples[-1]]
    for (h0, a), (h1, b) in itertools.pairwise(marks):
        if h1 - h0 >= 1:
            lines.append(
                f"plant h {h0:4.0f}-{h1:4.0f}: "
                + ", ".join(f"{n} {(b[n] - a[n]) / 1024 / (h1 - h0):+.2f}" for n in names)
                + " MiB per plant hour"
            )
    return lines


def holdings(demo: Demo, telemetry: Telemetry) -> str:
    """What the books, the simulators and the test's recorders hold at the end, in items."""
    energy, sim = demo.gateway.energy if demo.gateway else None, demo.simulation
    assert energy is not None and sim is not None
    readings = sum(len(s) for s in energy.store.values())
    recorded = sum(len(b) for b in telemetry.batches.values())
    return (
        f"held: books {len(energy.records)} records, {len(energy.intervals)} buckets, {readings} readings, "
        f"{len(energy.pending_lines)} pending lines, outbox {len(energy._outbox)}; simulator ledger "
        f"{len(sim.truth)} entries; test recorder {recorded} batches, {len(telemetry.stalls.spans)} stall spans"
    )


@pytest.mark.timeout(int(SOAK_S) + 600)
async def test_soak_with_seeded_device_faults(soak) -> None:
    demo, telemetry, influx, faults, pids = soak
    sim, gateway = demo.simulation, demo.gateway
    assert sim is not None and gateway is not None and gateway.energy is not None and gateway.ingest is not None
    loop = asyncio.get_running_loop()
    started = loop.time()
    all_samples: list[tuple[float, dict[str, int]]] = []  # (plant hours since start, RSS KiB per process)
    plant_start = sim.clock.now()
    # tracemalloc marks: after start-up, half-way and at the end (two halves: a leak grows in both)
    mark_hours = [STARTUP_H, (STARTUP_H + PLANT_HOURS) / 2]
    marks: list[memory_trace.Mark] = []
    if TRACE:
        memory_trace.start()
    try:
        while loop.time() - started < SOAK_S:
            await asyncio.sleep(2.0)
            hours = (sim.clock.now() - plant_start) / 3600
            rss = {name: rss_kib(pid) for name, pid in pids.items()}
            rss["tracemalloc"] = memory_trace.overhead_bytes() // 1024
            rss |= memory_trace.heap_kib()
            all_samples.append((hours, rss))
            if TRACE and mark_hours and hours >= mark_hours[0]:
                mark_hours.pop(0)
                marks.append(await memory_trace.mark(hours))
        plant_hours = (sim.clock.now() - plant_start) / 3600
        if TRACE:
            marks.append(await memory_trace.mark(plant_hours))
    finally:
        memory_trace.stop()  # tracing slows everything after it (a failure's report took minutes)
    for a, b in itertools.pairwise(marks):
        print("\n" + "\n".join(memory_trace.growth(a, b)))
    print("\n" + "\n".join(rss_per_plant_hour(all_samples)))
    print(holdings(demo, telemetry))
    samples = [(h, rss["test+gateway"] - rss["tracemalloc"]) for h, rss in all_samples]

    published = await settle(demo)
    assert gateway.publisher is not None
    spools = (gateway.publisher.backlog, gateway.ingest.writer.spool.rows)
    assert spools == (0, 0), spools

    # every Modbus reading that went out on MQTT is in InfluxDB (one clock per scan: the device's)
    sent = stored_missing = 0
    for device in (d.id for d in demo.plant.devices if d.protocol == "modbus"):
        times = {b.readings["clock"]["t"] for b in telemetry.batches.get(device, []) if "clock" in b.readings}
        series = await influx.query(
            f"SELECT quality FROM reading WHERE device='{device}' AND point='clock' AND time >= {min(times)}"
        )
        stored = {row["time"] for s in series for row in s.rows()}
        sent += len(times)
        stored_missing += len(times - stored)
    assert sent > 0 and stored_missing == 0, (sent, stored_missing)

    counters = {u.asset: u.tap_counter for u in gateway.energy.model.units if u.tap_counter is not None}
    first_seen = {a: await first_good_reading_ns(influx, *counters[a].key) for a in counters}
    heats = compare_heats(demo, first_seen)
    buckets = no_negative_energy(demo)

    # memory: after start-up, the least-squares slope of this process's RSS (less tracemalloc's own
    # tables) per plant hour; a fit, not two end points, so one step of the allocator does not decide
    steady = [(h, kib) for h, kib in samples if h >= STARTUP_H]
    growth_mib_h = least_squares_slope(steady) / 1024
    rss = [kib for _, kib in samples]
    # what the counter check flagged, against the ledger: a flag that hides no error is a false alarm
    mismatched = [
        f"{rec_id} {book / truth - 1:+.2%}"
        for _, rec_id, flags, book, truth in heats.flagged
        if "power_mismatch" in flags
    ]
    print(
        f"\nsoak (seed {SEED}): {plant_hours:.1f} h of plant time in {SOAK_S:.0f} s, {len(faults)} faults "
        f"({', '.join(sorted({f['fault'] for f in faults}))}); {published} batches published; "
        f"{sent} Modbus scans sent, {stored_missing} missing in InfluxDB; spools {spools}; "
        f"{heats.matched} heats/taps within 0.5 % (worst {heats.worst_error:.3%}), {len(heats.flagged)} flagged "
        f"({len(mismatched)} power_mismatch: {', '.join(mismatched) or 'none'}), "
        f"{heats.missed} taps inside a missed_taps record; units together: "
        f"{ {u: f'{e:+.3%}' for u, e in heats.unit_errors.items()} }; {buckets} buckets, none negative; "
        f"RSS {rss[0] / 1024:.0f} -> {max(rss) / 1024:.0f} -> {rss[-1] / 1024:.0f} MiB, "
        f"{growth_mib_h:+.2f} MiB per plant hour from plant hour {STARTUP_H:.0f} (bound {RSS_GROWTH_MIB_PER_H})"
    )
    assert heats.matched >= PLANT_HOURS * 3
    if TRACE:  # tracing's own allocations and the marks' reductions are in the RSS: figures only
        return
    if PLANT_HOURS - STARTUP_H >= JUDGED_H:
        assert len(steady) >= 10, f"too few samples after start-up to judge memory: {len(steady)}"
        assert growth_mib_h <= RSS_GROWTH_MIB_PER_H, (growth_mib_h, steady[0], steady[-1])
    else:  # CI's short form: too few plant hours for a slope, so only a gross leak fails it
        assert rss[-1] - rss[0] < SHORT_GROWTH_MIB * 1024, (rss[0], rss[-1])


def least_squares_slope(points: list[tuple[float, int]]) -> float:
    """The slope of the least-squares line through (x, y) points."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0

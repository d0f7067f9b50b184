"""What the device-fault tests and the soak share: the demo plant run fast (tests/accounted_run.py)
with a recorder of every telemetry batch on the broker, a controlled end of the run, and the
comparison of the books with the simulator's ledger."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from ferrogate.gateway.demo import Demo, DemoOptions
from ferrogate.gateway.energy.production import MISSED_TAPS, NO_PREVIOUS_TAP, ProductionRecord
from ferrogate.gateway.influx import InfluxV1Client
from ferrogate.gateway.payload import decode_batch, encode_batch, telemetry_filter
from ferrogate.gateway.plant_file import PlantFile
from ferrogate.gateway.timeutil import iso_utc
from tests.accounted_run import SPEED
from tests.waiting import eventually

TOLERANCE = 0.005  # 0.5 %: the books against the ledger
LONG = os.environ.get("FERROGATE_RELIABILITY_LONG") == "1"  # scripts/reliability.sh sets it
HEAT_KINDS = {"eaf_heat": ("eaf1", "eaf2"), "saf_tap": ("saf1", "saf2", "saf3")}


def runqueue_wait_s() -> float:
    """Seconds this process's main thread (the event loop's) has waited for a core so far: the
    second field of /proc/self/schedstat (run-queue wait, ns); 0.0 where the kernel keeps none."""
    try:
        return int(Path("/proc/self/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


@dataclass
class LoopStalls:
    """When this process's event loop (the demo's gateway and the recorder run in it) was held up
    by waiting for a core: a short sleep that overran, counted only as far as the kernel says the
    loop's thread sat in the run queue meanwhile, as (start, end, seconds waited) on the loop's
    clock. A box short of cores delays every device's scans alike; a faulty device that holds up
    the others does so while the loop runs (or blocks it on the core), which stays counted."""

    tick_s: float = 0.05
    spans: list[tuple[float, float, float]] = field(default_factory=list)

    async def watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before, waited_before = loop.time(), runqueue_wait_s()
            await asyncio.sleep(self.tick_s)
            after, waited = loop.time(), runqueue_wait_s() - waited_before
            overran = after - before - self.tick_s
            if overran > self.tick_s and waited > 0:
                self.spans.append((before + self.tick_s, after, min(overran, waited)))

    def within(self, start: float, end: float) -> float:
        """Seconds of `start`..`end` the loop waited for a core (a span's share where it overlaps)."""
        return sum(w * max(0.0, min(end, b) - max(start, a)) / (b - a) for a, b, w in self.spans if b > a)


@dataclass
class Seen:
    """One telemetry batch as it arrived: when (the loop's monotonic clock), and what it said."""

    received: float
    gateway_time_ns: int
    readings: dict[str, dict[str, Any]]  # point -> the payload's reading (the last one of the point)


@dataclass
class Telemetry:
    """Every telemetry batch on the broker, per device, from a plain MQTT subscriber."""

    batches: dict[str, list[Seen]] = field(default_factory=dict)
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    # only these points' readings are kept (None: all): a long soak's recorder must not be what grows
    points: frozenset[str] | None = None
    stalls: LoopStalls = field(default_factory=lambda: LoopStalls())  # `running` watches them

    async def record(self, port: int, root: str, site: str) -> None:
        loop = asyncio.get_running_loop()
        async with aiomqtt.Client("127.0.0.1", port, protocol=aiomqtt.ProtocolVersion.V5) as client:
            await client.subscribe(telemetry_filter(root, site))
            self.subscribed.set()
            async for message in client.messages:
                # whatever schema the collector publishes (ferrogate/2 by default), read as /1's reading docs
                doc = json.loads(encode_batch(decode_batch(message.payload)))
                keep = self.points
                readings = {r["point"]: r for r in doc["readings"] if keep is None or r["point"] in keep}
                seen = Seen(loop.time(), doc["gateway_time_ns"], readings)
                self.batches.setdefault(doc["device"], []).append(seen)

    def since(self, device: str, mark: float) -> list[Seen]:
        return [b for b in self.batches.get(device, []) if b.received >= mark]

    async def wait_for(
        self, device: str, what: str, check: Callable[[list[Seen]], bool], mark: float, within_s: float = 90
    ) -> list[Seen]:
        """Batches of `device` received since `mark` once `check` holds for them."""

        async def holds() -> bool:
            return check(self.since(device, mark))

        await eventually(holds, f"{device}: {what}", within_s=within_s)
        return self.since(device, mark)


@asynccontextmanager
async def running(
    plant: PlantFile, directory: Path, history_s: float, broker_port: int, points: frozenset[str] | None = None
) -> AsyncIterator[tuple[Demo, Telemetry, InfluxV1Client]]:
    """The plant's demo at SPEED with `history_s` of accelerated history, a recorder of its telemetry
    (of `points` only, if given) on the broker, and a client of its database; all stopped and closed
    afterwards."""
    assert plant.mqtt is not None and plant.influxdb is not None
    telemetry = Telemetry(points=points)
    recorder = asyncio.create_task(telemetry.record(broker_port, plant.mqtt.topic_root, plant.site.id))
    watcher = asyncio.create_task(telemetry.stalls.watch())
    options = DemoOptions(directory / "demo", api_port=0, speed=SPEED, history_s=history_s, move_taken_ports=True)
    demo = Demo(plant, options)
    influx = InfluxV1Client(plant.influxdb)
    try:
        await asyncio.wait_for(telemetry.subscribed.wait(), timeout=30)
        # a generous ceiling: the simulators and the gateway took over 120 s to start at load average 18
        await asyncio.wait_for(demo.start(), timeout=300)
        yield demo, telemetry, influx
    finally:
        recorder.cancel()
        watcher.cancel()
        await asyncio.gather(recorder, watcher, return_exceptions=True)
        await asyncio.wait_for(demo.stop(), timeout=120)
        await influx.aclose()


def largest_gap_s(batches: list[Seen], stalls: LoopStalls | None = None) -> float:
    """The longest wait between two consecutive batches (arrival at the subscriber), less the time
    the process's loop waited for a core meanwhile (`stalls`)."""
    times = sorted(b.received for b in batches)
    starved = stalls.within if stalls is not None else (lambda a, b: 0.0)
    return max((b - a - starved(a, b) for a, b in itertools.pairwise(times)), default=0.0)


async def settle(demo: Demo) -> int:
    """Stop scanning and let every published batch reach InfluxDB and the books, then run the books
    twice over it; returns how many batches were published."""
    gateway = demo.gateway
    assert gateway is not None and gateway.energy is not None and gateway.ingest is not None
    assert demo.simulation is not None
    energy, ingest = gateway.energy, gateway.ingest
    for logger in demo.simulation.loggers.values():
        await asyncio.wait_for(logger.pause(), timeout=60)
    published = await asyncio.wait_for(gateway.stop_collecting(), timeout=120)

    async def consumed() -> bool:
        return energy.batches >= published and ingest.messages >= published

    await eventually(consumed, f"ingest and the books to receive all {published} batches", within_s=180)
    await asyncio.wait_for(ingest.writer.drain(), timeout=120)
    for _ in range(2):
        await asyncio.wait_for(energy.wait_cycle(), timeout=120)
    return published


@dataclass
class HeatCheck:
    """Each heat and tap of the ledger the books saw whole, against its record."""

    matched: int = 0  # good records within TOLERANCE of the ledger
    flagged: list[tuple[str, str, str, float, float]] = field(default_factory=list)  # (unit, id, flags, book, truth)
    worst_error: float = 0.0  # largest relative difference of a good record
    unit_errors: dict[str, float] = field(default_factory=dict)  # unit -> relative error of all its heats together
    missed: int = 0  # ledger taps inside a record flagged missed_taps


def compare_heats(demo: Demo, first_seen_ns: dict[str, int]) -> HeatCheck:
    """Every ledger heat/tap after the gateway's first reading of the unit and up to the books'
    horizon has a record, and no record is of a heat the plant did not make. A good record is within
    0.5 % of the ledger. A flagged one (a fault touched it) is an estimate: a tap inside a gap splits
    the counted energy between two heats by interpolation, so one may hold more and the next less; a
    counter that jumps after a freeze is an implausible jump, not counted (Bad) and bridged by power
    where power was readable. So no energy is invented: each unit's heats together hold at most 0.5 %
    more than the ledger (and are within 0.5 % when no record is flagged); no record is negative.
    (A pair of heats across a gap once summed 0.14-0.8 % high: the tap inside the gap was lost when
    the books' window began after a bad reading stamped inside it; tests/test_energy_gap_baseline.py.)"""
    gateway, sim = demo.gateway, demo.simulation
    assert gateway is not None and gateway.energy is not None and sim is not None
    energy = gateway.energy
    horizon = iso_utc(energy.horizon_ns)
    by_end = {(r.unit, iso_utc(r.end_ns)): r for r in energy.records.values()}
    result = HeatCheck()
    for kind, assets in HEAT_KINDS.items():
        for asset in assets:
            first = iso_utc(first_seen_ns[asset])
            truth = [e for e in sim.truth if e["kind"] == kind and e["asset"] == asset]
            truth = [e for e in truth if first < e["end"] <= horizon]
            assert truth, f"no {kind} of {asset} inside the run"
            book_sum = truth_sum = 0.0
            unseen: list[dict[str, Any]] = []  # taps the gateway could not see (two taps in one outage)
            for entry in truth:
                rec: ProductionRecord | None = by_end.get((asset, entry["end"]))
                if rec is None:
                    unseen.append(entry)
                    continue
                if unseen:  # the record after them spans them: it says so, and holds their energy too
                    assert any(f.startswith(MISSED_TAPS) for f in rec.flags), (
                        rec.id,
                        rec.flags,
                        unseen,
                        records_near(energy.records.values(), asset, unseen[0]["start"], entry["end"]),
                    )
                if NO_PREVIOUS_TAP in rec.flags:
                    unseen = []
                    continue  # the first tap the gateway saw: it ends a heat the gateway saw only part of
                want = entry["energy_kwh"] + sum(e["energy_kwh"] for e in unseen)
                result.missed += len(unseen)
                unseen = []
                assert rec.electricity_kwh >= 0, (entry["id"], rec.electricity_kwh)
                book_sum += rec.electricity_kwh
                truth_sum += want
                error = (rec.electricity_kwh - want) / want
                if rec.quality.value == "good":
                    assert abs(error) <= TOLERANCE, (  # with its neighbours: a fault's energy lands next door
                        entry["id"],
                        rec.electricity_kwh,
                        want,
                        rec.flags,
                        records_near(energy.records.values(), asset, entry["start"], horizon)[:3],
                    )
                    result.matched += 1
                    result.worst_error = max(result.worst_error, abs(error))
                else:
                    result.flagged.append((asset, entry["id"], ",".join(sorted(rec.flags)), rec.electricity_kwh, want))
            assert not unseen, (
                f"no record for {[e['id'] for e in unseen]}",
                records_near(energy.records.values(), asset, unseen[0]["start"], horizon),
            )
            if truth_sum:
                result.unit_errors[asset] = (book_sum - truth_sum) / truth_sum
                flagged = [f for f in result.flagged if f[0] == asset]
                assert result.unit_errors[asset] <= TOLERANCE, (
                    "energy invented",
                    asset,
                    book_sum,
                    truth_sum,
                    flagged,
                )
                if not flagged:
                    assert abs(result.unit_errors[asset]) <= TOLERANCE, (asset, book_sum, truth_sum)
            ends = {e["end"] for e in truth}
            recorded = {iso_utc(r.end_ns) for r in energy.records.values() if r.unit == asset}
            assert {e for e in recorded if first < e <= horizon} <= ends, f"{asset}: heats the plant did not make"
    return result


def records_near(records: Iterable[ProductionRecord], unit: str, start: str, end: str) -> list[str]:
    """The unit's records ending in [start, end] (ISO times), to see what stood where a heat was not found."""
    near = sorted((r for r in records if r.unit == unit and start <= iso_utc(r.end_ns) <= end), key=lambda r: r.end_ns)
    return [f"{r.id} {iso_utc(r.start_ns)}..{iso_utc(r.end_ns)} {r.quality.value} {sorted(r.flags)}" for r in near]


def no_negative_energy(demo: Demo) -> int:
    """Every electricity bucket of the books is >= 0; returns how many were checked."""
    assert demo.gateway is not None and demo.gateway.energy is not None
    rows = [r for r in demo.gateway.energy.intervals.values() if r.role.startswith("electricity")]
    negative = [(r.asset, r.role, iso_utc(r.start_ns), r.value) for r in rows if r.value < 0]
    assert not negative, negative
    return len(rows)


def rss_kib(pid: int | None = None) -> int:
    """Resident set size of a process (this one by default) from /proc."""
    with open(f"/proc/{pid or os.getpid()}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    pytest.fail("no VmRSS in /proc/self/status")

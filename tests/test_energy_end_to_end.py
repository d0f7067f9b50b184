"""The accounting engine end to end at --speed 240: simulators -> collector -> MQTT -> energy role,
checked against the simulator's ground-truth ledger (every heat and tap, hourly generation and
cell-line product), the carbon figures against a hand calculation, the derived data in InfluxDB
and on MQTT, and a recompute from InfluxDB against the live books."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from ferrogate.gateway.demo import Demo, DemoOptions
from ferrogate.gateway.energy import reference as ref
from ferrogate.gateway.energy.aggregate import PeriodKind
from ferrogate.gateway.energy.production import NO_PREVIOUS_TAP
from ferrogate.gateway.influx import InfluxV1Client
from ferrogate.gateway.influx_setup import DERIVED_POLICY
from ferrogate.gateway.services import InfluxDB, Mosquitto
from ferrogate.gateway.timeutil import iso_utc
from tests.accounted_run import fast_plant
from tests.conftest import plant_on_free_ports
from tests.waiting import eventually

pytestmark = pytest.mark.timeout(1200)  # generous waits for a loaded box; a quiet one takes about 70 s

SPEED = 240  # simulated seconds per wall second (the issue asks for >= 60)
HISTORY_S = 4 * 3600  # simulated time starts this far back, so the run covers about 4 h of plant time
TOLERANCE = 0.005  # 0.5 %


make_plant = fast_plant  # scans every 0.5 s, SAF taps every 25-30 min: several of each in a short run


def close(a: float, b: float) -> bool:
    return abs(a - b) <= TOLERANCE * abs(b)


async def test_books_match_the_simulator_ground_truth(
    mosquitto: Mosquitto, influxdb: InfluxDB, fresh_database: str, tmp_path: Path
) -> None:
    plant = plant_on_free_ports(make_plant(tmp_path), mosquitto, influxdb, fresh_database)
    demo = Demo(
        plant, DemoOptions(tmp_path / "demo", api_port=0, speed=SPEED, history_s=HISTORY_S, move_taken_ports=True)
    )
    derived_messages: list[aiomqtt.Message] = []
    listening = asyncio.Event()

    async def listen() -> None:
        async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="e2e-energy-listener") as client:
            await client.subscribe(f"{plant.mqtt.topic_root}/demo/energy/#", qos=1)
            listening.set()
            async for message in client.messages:
                derived_messages.append(message)

    listener = asyncio.create_task(listen())

    await asyncio.wait_for(listening.wait(), timeout=10)
    await asyncio.wait_for(demo.start(), timeout=300)  # a loaded 2-core box takes a minute or more
    gateway, sim = demo.gateway, demo.simulation
    assert gateway is not None and sim is not None and gateway.publisher is not None
    energy, ingest = gateway.energy, gateway.ingest
    assert energy is not None and ingest is not None
    try:

        def ledger(kind: str, asset: str) -> list[dict[str, Any]]:
            return [e for e in sim.truth if e["kind"] == kind and e["asset"] == asset]

        def recorded(asset: str) -> int:
            return sum(1 for r in energy.records.values() if r.unit == asset)

        async def enough() -> bool:
            # counted in the books, not the ledger: taps before the gateway's first scan are not seen
            eafs = min(recorded(a) for a in ("eaf1", "eaf2"))
            safs = min(recorded(a) for a in ("saf1", "saf2", "saf3"))
            return eafs >= 3 and safs >= 4

        # the history runs from the gateway's first scans (the demo holds the clock till then): 4 h of
        # plant time hold these; the budget is for a loaded box, a quiet one needs about a minute
        await eventually(enough, "three heats per EAF and four taps per SAF in the books", within_s=400)

        # stop scanning, let everything in flight arrive, and let the books run over it
        published = await asyncio.wait_for(gateway.stop_collecting(), timeout=60)

        async def consumed() -> bool:
            return energy.batches >= published and ingest.messages >= published

        await eventually(
            consumed,
            f"the energy role and ingest to receive every published batch ({published}; "
            f"energy has {energy.batches}, ingest {ingest.messages} when this wait began)",
        )
        await asyncio.wait_for(ingest.writer.drain(), timeout=60)  # every received reading is in InfluxDB
        for _ in range(2):  # a whole cycle after the last batch arrived
            await asyncio.wait_for(energy.wait_cycle(), timeout=30)
        assert (energy.rejected_lines, energy.pending_lines, energy.cycle_errors) == (0, [], 0)
        horizon = energy.horizon_ns
        records = sorted(energy.records.values(), key=lambda r: (r.unit, r.end_ns))

        # --- every heat and tap in the ledger, within what the gateway saw -------------------
        # A tap is a step of the tap counter between two readings, so the gateway can record only
        # taps after its first counter reading. When that reading came (how long the gateway took to
        # start while simulated time ran at SPEED) depends on the box: read it, do not assume it.
        counters = {u.asset: u.tap_counter for u in energy.model.units if u.tap_counter is not None}
        seen: dict[str, list[dict[str, Any]]] = {}
        for kind, assets in (("eaf_heat", ("eaf1", "eaf2")), ("saf_tap", ("saf1", "saf2", "saf3"))):
            for asset in assets:
                first_read = await first_good_reading_ns(energy.influx, *counters[asset].key)
                seen[asset] = [e for e in ledger(kind, asset) if iso_utc(first_read) < e["end"] <= iso_utc(horizon)]
        by_end = {(r.unit, iso_utc(r.end_ns)): r for r in records}
        checked = 0
        for kind, assets in (("eaf_heat", ("eaf1", "eaf2")), ("saf_tap", ("saf1", "saf2", "saf3"))):
            for asset in assets:
                truth = seen[asset]
                assert truth, f"no {kind} of {asset} between the gateway's first reading and the horizon"
                first, rest = truth[0], truth[1:]
                # the first tap the gateway saw ends a heat it saw only part of
                partial = by_end[(asset, first["end"])]
                assert NO_PREVIOUS_TAP in partial.flags
                for entry in rest:
                    rec = by_end.get((asset, entry["end"]))
                    assert rec is not None, f"no record for {entry['id']}"
                    assert (iso_utc(rec.start_ns), rec.kind, rec.product) == (entry["start"], kind, entry["product"])
                    assert close(rec.electricity_kwh, entry["energy_kwh"]), (entry, rec.electricity_kwh)
                    assert rec.tonnes is not None and close(rec.tonnes, entry["tonnes"]), (entry, rec.tonnes)
                    assert rec.quality.value == "good", (entry["id"], rec.flags)
                    checked += 1
                # and no heat the plant did not make
                ends = {e["end"] for e in truth}
                assert {iso_utc(r.end_ns) for r in records if r.unit == asset} == ends
        assert checked >= 2 * 2 + 3 * 3

        # --- hourly waste-heat generation and cell-line product -------------------------------
        buckets = list(energy.intervals.values())

        def bucket_sum(asset: str, role: str, start: str, end: str) -> float | None:
            rows = [r for r in buckets if r.asset == asset and r.role == role and start <= iso_utc(r.start_ns) < end]
            # four 15-min buckets per hour, each covered by readings on both sides
            whole = len(rows) == 4 and not any("partial_coverage" in r.flags for r in rows)
            return sum(r.value for r in rows) if whole else None

        hours = 0
        for entry in sim.truth:
            if entry["kind"] == "generation":
                got = bucket_sum(entry["asset"], "electricity_export", entry["start"], entry["end"])
                want = entry["exported_kwh"] if entry["exported_kwh"] is not None else entry["energy_kwh"]
            elif entry["kind"] == "cells_product":
                got = bucket_sum(entry["asset"], "product_counter", entry["start"], entry["end"])
                want = entry["tonnes"]
            else:
                continue
            if got is not None:
                assert close(got, want), (entry, got)
                hours += 1
        assert hours >= 3

        # --- period kWh/t (sums over sums) and carbon by hand, per unit and day ---------------
        intervals = list(energy.intervals.values())
        cal = energy.model.calendar
        first_ns = min(r.start_ns for r in records)
        periods_checked = 0
        for period in cal.periods(PeriodKind.day, first_ns, horizon):
            kpis = {(k.scope, k.subject): k for k in energy.books.kpis(period, False, records, intervals)}
            for asset in ("eaf1", "eaf2", "saf1", "saf2", "saf3"):
                kind = "eaf_heat" if asset.startswith("eaf") else "saf_tap"
                truth = [e for e in seen[asset][1:] if iso_utc(period.start_ns) < e["end"] <= iso_utc(period.end_ns)]
                if not truth:
                    continue
                kpi = kpis[("unit", asset)].fields
                want = sum(e["energy_kwh"] for e in truth) / sum(e["tonnes"] for e in truth)
                assert close(kpi["kwh_per_t"], want), (asset, period.label, kpi["kwh_per_t"], want)
                periods_checked += 1
            saf1 = kpis[("unit", "saf1")].fields
            if saf1["tonnes_t"]:
                check_carbon_by_hand(saf1)
        assert periods_checked >= 4

        # --- derived data in InfluxDB and on MQTT ------------------------------------------------
        stored = await energy.influx.query(
            f'SELECT id, electricity_kwh FROM "{DERIVED_POLICY}".production_record WHERE time <= {horizon}'
        )
        stored_ids = {row["id"] for s in stored for row in s.rows()}
        assert stored_ids == {r.id for r in records}
        topics = {str(m.topic) for m in derived_messages}
        for rec in records:
            assert f"{plant.mqtt.topic_root}/demo/energy/record/{rec.unit}" in topics
        kpi_docs = [json.loads(m.payload) for m in derived_messages if "/energy/kpi/" in str(m.topic)]
        assert kpi_docs and all(d["schema"] == "ferrogate-energy/1" for d in kpi_docs)
        assert {"day", "shift", "month"} <= {d["period"]["kind"] for d in kpi_docs}
        assert any(d["provenance"].get("grid", {}).get("source") for d in kpi_docs)

        # --- a recompute from InfluxDB gives the same books --------------------------------------

        async def raw_stored() -> bool:
            """InfluxDB holds every accounting meter's readings up to the last one the books saw."""
            for (device, point), series in energy.store.items():
                if series.times:
                    q = f"SELECT last(quality) FROM reading WHERE device='{device}' AND point='{point}'"
                    rows = [row for s in await energy.influx.query(q) for row in s.rows()]
                    if not rows or rows[0]["time"] < series.times[-1]:
                        return False
            return True

        await eventually(raw_stored, "ingest to store the raw readings the books used")
        live = {r.id: r for r in records}
        await asyncio.wait_for(energy.recompute(first_ns, horizon + 1), timeout=60)
        again = {r.id: r for r in energy.records.values() if r.end_ns <= horizon}
        assert set(again) == set(live)
        for rid, rec in live.items():
            assert math.isclose(again[rid].electricity_kwh, rec.electricity_kwh, rel_tol=1e-9), rid
            assert rec.tonnes is not None and math.isclose(again[rid].tonnes or 0.0, rec.tonnes, rel_tol=1e-9), rid
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        await asyncio.wait_for(demo.stop(), timeout=60)


async def first_good_reading_ns(influx: InfluxV1Client, device: str, point: str) -> int:
    """The time of the first usable reading of a point that ingest stored."""
    q = f"SELECT first(value) FROM reading WHERE device='{device}' AND point='{point}' AND quality != 'bad'"
    rows = [row for s in await influx.query(q) for row in s.rows()]
    assert rows, f"no reading of {device}.{point} in InfluxDB"
    return int(rows[0]["time"])


def check_carbon_by_hand(kpi: dict[str, Any]) -> None:
    """saf1: coke 0.55 t/t (configured), metered electrodes, SiMn carbon, the Fujian grid factor."""
    tonnes, kwh, whg = kpi["tonnes_t"], kpi["electricity_kwh"], kpi["waste_heat_kwh"]
    coke_t, electrode_t = 0.55 * tonnes, kpi["electrode_t"]
    coke_factor = 28.435 * 29.42 / 1000 * 44 / 12  # GJ/t x tC/TJ x 44/12 (reference §4)
    direct = coke_t * coke_factor + electrode_t * 3.663 - tonnes * 0.092
    grid = ref.grid_factor(2026, "Fujian").factor.value  # east China region, 2023 (latest published)
    assert grid == 0.5500
    indirect = (kwh - whg) / 1000 * grid
    assert math.isclose(kpi["coke_t"], coke_t, rel_tol=1e-12)
    assert math.isclose(kpi["tco2_direct"], direct, rel_tol=1e-9)
    assert math.isclose(kpi["tco2_indirect"], indirect, rel_tol=1e-9)
    assert math.isclose(kpi["tco2_per_t"], (direct + indirect) / tonnes, rel_tol=1e-9)
    kgce = kwh * 0.1229 - whg * 0.1229 + coke_t * 971.4
    assert math.isclose(kpi["kgce_per_t"], kgce / tonnes, rel_tol=1e-9)

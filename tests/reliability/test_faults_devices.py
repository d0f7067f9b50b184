"""Device faults against the whole gateway: the demo plant at 240x (tests/accounted_run.py) with the
collector, ingest, the books and the API in this process, the simulators on their sockets, the
session's Mosquitto and InfluxDB. One Modbus meter (eaf1_meter) and one OPC UA DCS (saf1_dcs) are
made to refuse connections, drop a connection mid-request, answer slowly near and beyond the
timeout, answer with exceptions (Modbus exception responses, OPC UA Bad status with a value),
freeze, serve NaN (on a float, and the "not available" all-ones on an integer counter), run their
clocks 6 h ahead of the gateway's and have their counters reset (meter replaced), one fault after
the other; and the gateway's own clock steps back and ahead again.

Checked: the quality and reason of each fault in the MQTT payload, in InfluxDB and in the API's live
view; the other devices' scans keep coming while one device is slow or dead; and at the end the
books hold no negative energy, each unit's heats together match the simulator's ledger within 0.5 %
(no energy invented or lost), and every heat no fault touched matches it within 0.5 % on its own.

What the simulator-level faults look like on the wire is tests/test_simulators_faults.py; a Bad
OPC UA value without its number end to end is tests/test_bad_readings_end_to_end.py; reconnect
backoff and a dead device among many are tests/test_collector_reconnect.py; the counter rules are
unit-tested in tests/test_energy_counters.py. The gateway clock stepping back 36 h and ahead again is
here (in the whole stack: stamps in order, flagged `clock_step`, no device reading left out by the
books); its rules are tests/test_gateway_clock.py, the scans going on tests/test_collector_scan.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from ferrogate.gateway.influx import InfluxV1Client
from ferrogate.gateway.services import InfluxDB, Mosquitto
from ferrogate.gateway.timeutil import GATEWAY_CLOCK
from tests.accounted_run import fast_plant
from tests.conftest import plant_on_free_ports
from tests.reliability.faulted_run import (
    Seen,
    compare_heats,
    largest_gap_s,
    no_negative_energy,
    running,
    settle,
)
from tests.test_energy_end_to_end import first_good_reading_ns
from tests.waiting import eventually

MODBUS, OPCUA = "eaf1_meter", "saf1_dcs"
HEALTHY = ("eaf2_meter", "whg1_plc")  # their scans must go on meanwhile
# simulated time starts this far back, so that at SPEED it is still in the past when the run ends
# (a few wall minutes): heats and taps keep coming all along
HISTORY_S = 30 * 3600
GATEWAY_STAMPED = ("comm_error", "timeout", "device_exception")  # reasons of readings without a device clock
STEP_BACK_NS = 36 * 3600 * 10**9  # the gateway clock's step back: past HISTORY_S, so device clocks look ahead
STALL_LIMIT_S = 5.0  # scans every 0.5 s: a healthy device silent this long would be held up by the faulty one


@pytest.fixture
async def plant_run(mosquitto: Mosquitto, influxdb: InfluxDB, fresh_database: str, tmp_path: Path) -> AsyncIterator:
    plant = plant_on_free_ports(fast_plant(tmp_path, interpolation_gap_s=300), mosquitto, influxdb, fresh_database)
    async with running(plant, tmp_path, HISTORY_S, mosquitto.port) as run:
        yield run


def all_bad(batches: list[Seen], reason_start: str, points: tuple[str, ...] = (), count: int = 6) -> bool:
    """`count` batches whose readings (or those of `points`) are all bad, without a value, with the
    reason: the fault lasts a few seconds (several scans), while the other devices are watched."""
    found = 0
    for b in batches:
        readings = [b.readings[p] for p in points if p in b.readings] if points else list(b.readings.values())
        if readings and all(
            r["q"] == "bad" and r["v"] is None and r.get("r", "").startswith(reason_start) for r in readings
        ):
            found += 1
    return found >= count


def held_still(batches: list[Seen], point: str, count: int) -> bool:
    """The point's last `count` readings carry one value. The last ones, not all since the fault was
    injected: on a loaded box a change sampled before the freeze took hold can arrive after it."""
    values = [b.readings[point]["v"] for b in batches if point in b.readings][-count:]
    return len(values) == count and len(set(values)) == 1


def good_again(batches: list[Seen], count: int = 3) -> bool:
    return sum(all(r["q"] == "good" for r in b.readings.values()) for b in batches) >= count


async def stored_reasons(influx: InfluxV1Client, device: str, point: str, since_ns: int) -> dict[str, int]:
    """Reason -> count of the bad rows of a point in InfluxDB since a time; a bad row with a value
    counts under 'VALUE BESIDE BAD'."""
    series = await influx.query(
        f"SELECT value, reason FROM reading WHERE device='{device}' AND point='{point}' "
        f"AND quality='bad' AND time >= {since_ns}"
    )
    out: dict[str, int] = {}
    for row in (row for s in series for row in s.rows()):
        key = "VALUE BESIDE BAD" if row["value"] is not None else row["reason"]
        out[key] = out.get(key, 0) + 1
    return out


async def test_device_faults_are_flagged_stall_nothing_and_invent_no_energy(plant_run) -> None:
    demo, telemetry, influx = plant_run
    sim, gateway = demo.simulation, demo.gateway
    assert sim is not None and gateway is not None and gateway.energy is not None
    loop = asyncio.get_running_loop()
    api = httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{demo.options.api_port}", headers={"X-API-Key": demo.api_key}, timeout=30
    )
    start = loop.time()
    await telemetry.wait_for(MODBUS, "good scans", good_again, start)
    await telemetry.wait_for(OPCUA, "good scans", good_again, start)
    figures: dict[str, object] = {}

    async def fault(device: str, spec: dict, what: str, check, *, clear: bool = True) -> list[Seen]:
        """Inject, wait until the payload shows it, clear, wait until the device is good again."""
        mark = loop.time()
        await sim.inject({"device": device, **spec})
        seen = await telemetry.wait_for(device, what, check, mark)
        if clear:
            await sim.clear_faults(device)
            await telemetry.wait_for(device, f"good again after {what}", good_again, loop.time())
        for healthy in HEALTHY:
            gap = largest_gap_s(telemetry.since(healthy, mark), telemetry.stalls)
            figures.setdefault(f"largest gap of {healthy}", 0.0)
            figures[f"largest gap of {healthy}"] = max(gap, figures[f"largest gap of {healthy}"])  # type: ignore[call-overload]
            assert gap < STALL_LIMIT_S, f"{healthy} went {gap:.1f} s without a scan while {device}: {what}"
        return seen

    fault_start_ns = int(sim.clock.now() * 1e9)  # readings carry the devices' (simulated) clocks

    # --- refused: every reading bad with comm_error, the device offline, its status retained ---
    await fault(MODBUS, {"fault": "refuse_connections"}, "refused", lambda b: all_bad(b, "comm_error"))
    await fault(OPCUA, {"fault": "refuse_connections"}, "refused", lambda b: all_bad(b, "comm_error"))

    # --- slow near the timeout (2 s): good readings, the scan overruns its slot ---
    overruns = gateway.collector.metrics.device(MODBUS).overruns if gateway.collector else 0
    seen = await fault(
        MODBUS,
        {"fault": "latency", "delay_s": 1.5},
        "slow answers read good",
        lambda b: sum(all(r["q"] == "good" for r in x.readings.values()) for x in b) >= 4,
    )
    assert gateway.collector is not None and gateway.collector.metrics.device(MODBUS).overruns > overruns

    # --- slow beyond the timeout: bad with timeout, other devices unaffected ---
    await fault(MODBUS, {"fault": "latency", "delay_s": 5}, "timeouts", lambda b: all_bad(b, "timeout", count=3))

    # --- dropped mid-request: a slow answer in flight when the device closes the connection ---
    mark = loop.time()
    await sim.inject({"device": MODBUS, "fault": "latency", "delay_s": 1.5})
    await asyncio.sleep(0.7)  # a request is on its way (scans every 0.5 s, answers take 1.5 s)
    await sim.inject({"device": MODBUS, "fault": "refuse_connections"})
    await telemetry.wait_for(MODBUS, "dropped mid-request", lambda b: all_bad(b, "comm_error", count=1), mark)
    await sim.clear_faults(MODBUS)
    await telemetry.wait_for(MODBUS, "good after the drop", good_again, loop.time())

    # --- exceptions: Modbus exception 6 and an OPC UA Bad status sent with a 0.0 ---
    await fault(
        MODBUS,
        {"fault": "exception", "code": 6},
        "exception response",
        lambda b: all_bad(b, "device_exception: code 6 (server device busy)"),
    )
    mark = loop.time()
    await sim.inject(
        {
            "device": OPCUA,
            "equipment": "saf1",
            "fault": "bad_status",
            "status": "BadSensorFailure",
            "with_value": True,
            "signals": ["power_kw"],
        }
    )
    await telemetry.wait_for(
        OPCUA, "power BadSensorFailure", lambda b: all_bad(b, "BadSensorFailure", ("power",)), mark
    )
    live = (await api.get("/api/v1/assets/saf1/live")).json()
    power = next(p for p in live["points"] if p["point"] == "power")
    assert (power["value"], power["quality"], power["reason"]) == (None, "bad", "BadSensorFailure")
    await sim.clear_faults(OPCUA)
    await telemetry.wait_for(OPCUA, "good after Bad status", good_again, loop.time())

    # --- frozen: the device says good; the gateway passes the held value on as it is ---
    for device, point in ((MODBUS, "power"), (OPCUA, "power")):
        spec = {"fault": "freeze", "signals": ["power_kw"]}
        if device == OPCUA:
            spec["equipment"] = "saf1"
        seen = await fault(
            device,
            spec,
            "frozen power",
            lambda b, point=point: held_still(b, point, 6),
        )
        assert all(x.readings[point]["q"] == "good" for x in seen if point in x.readings)

    # --- NaN: floats bad with not_finite, never a number ---
    await fault(
        MODBUS, {"fault": "nan", "signals": ["power_kw"]}, "NaN power", lambda b: all_bad(b, "not_finite", ("power",))
    )
    mark = loop.time()
    await sim.inject({"device": OPCUA, "equipment": "saf1", "fault": "nan", "signals": ["power_kw"]})
    await telemetry.wait_for(OPCUA, "NaN power", lambda b: all_bad(b, "not_finite", ("power",)), mark)
    live = (await api.get("/api/v1/assets/saf1/live")).json()
    power = next(p for p in live["points"] if p["point"] == "power")
    assert power["value"] is None and power["quality"] == "bad" and power["reason"].startswith("not_finite")
    await sim.clear_faults(OPCUA)

    # --- NaN on an integer counter: the meter serves its uint32's "not available" (0xFFFFFFFF); bad
    # `sentinel` without a value, never 4294967295 kWh; the books count no energy from it (below) ---
    await fault(
        MODBUS,
        {"fault": "nan", "signals": ["energy_import_kwh"]},
        "counter not available",
        lambda b: all_bad(b, "sentinel: 0xFFFFFFFF", ("energy_import",)),
    )

    # --- a device clock 6 h ahead of the gateway's: stored and shown as sent; the books leave it out ---
    ahead_s = time.time() - sim.clock.now() + 6 * 3600  # the simulated plant runs HISTORY_S behind the wall
    mark = loop.time()
    for device in (MODBUS, OPCUA):
        await sim.inject({"device": device, "fault": "clock_offset", "offset_s": ahead_s})
    future = time.time_ns() + 5 * 3600 * 10**9
    for device in (MODBUS, OPCUA):
        # the meter's clock stamps every reading of its scan; an OPC UA server stamps each value it changes
        # (a subscription is not told of a value that stayed the same): the power and the counter here
        await telemetry.wait_for(
            device,
            "readings stamped 6 h ahead",
            lambda b: (
                sum(
                    all(
                        x.readings[p]["t"] > future and x.readings[p]["q"] == "good" for p in ("power", "energy_import")
                    )
                    for x in b
                    if "power" in x.readings and "energy_import" in x.readings
                )
                >= 6
            ),
            mark,
        )
    assert gateway.energy.ahead_of_clock > 0
    figures["readings the books left out (clock ahead)"] = gateway.energy.ahead_of_clock
    for device in (MODBUS, OPCUA):
        await sim.clear_faults(device)
        await telemetry.wait_for(device, "on time again", good_again, loop.time())

    # --- the gateway clock steps back 36 h (behind the plant's time: every device clock then looks
    # ahead of it) and ahead again, while the meter refuses connections (the gateway stamps its bad
    # readings): the stamps stay in order and say `clock_step`, the scans go on, and the books leave
    # no device reading out for looking ahead of a stepped-back clock ---
    ahead_before = gateway.energy.ahead_of_clock
    mark = loop.time()
    await sim.inject({"device": MODBUS, "fault": "refuse_connections"})
    await telemetry.wait_for(MODBUS, "refused before the step", lambda b: all_bad(b, "comm_error", count=2), mark)
    real_wall = GATEWAY_CLOCK.wall
    GATEWAY_CLOCK.wall = lambda: real_wall() - STEP_BACK_NS
    step_mark = loop.time()
    try:
        await telemetry.wait_for(
            MODBUS,
            "bad readings flagged clock_step",
            lambda b: sum(all("clock_step" in (r.get("r") or "") for r in x.readings.values()) for x in b) >= 4,
            step_mark,
        )
        for healthy in HEALTHY:
            await telemetry.wait_for(healthy, "scans while the clock is stepped", lambda b: len(b) >= 4, step_mark)
    finally:
        GATEWAY_CLOCK.wall = real_wall
    await sim.clear_faults(MODBUS)
    await telemetry.wait_for(MODBUS, "good after the clock step", good_again, loop.time())
    stepped = [
        x for x in telemetry.since(MODBUS, step_mark) if "clock_step" in (x.readings["energy_import"].get("r") or "")
    ]
    figures["readings flagged clock_step (eaf1_meter scans)"] = len(stepped)
    figures["device readings the books left out as ahead during the step"] = (
        gateway.energy.ahead_of_clock - ahead_before
    )
    # by the stepped wall clock every device would be 6 h ahead and all its readings left out; the books
    # compare with the gateway clock, so the healthy devices never are (saf1_dcs's unchanged values may
    # still carry the 6 h-ahead stamps of the clock fault above: those count, and are left out rightly)
    assert not set(HEALTHY) & gateway.energy._ahead_devices, gateway.energy._ahead_devices
    # the readings the gateway stamped (no answer: comm_error, timeout, exception), over the whole run
    gateway_stamped = [
        x.readings["energy_import"]["t"]
        for x in telemetry.batches[MODBUS]
        if (x.readings.get("energy_import", {}).get("r") or "").startswith(GATEWAY_STAMPED)
    ]
    assert gateway_stamped == sorted(set(gateway_stamped)), "gateway stamps out of order or repeated"

    # --- counter reset (meter replaced): the books flag it and count no negative energy ---
    for device in (MODBUS, OPCUA):
        spec = {"device": device, "fault": "counter_reset", "signals": ["energy_import_kwh"]}
        if device == OPCUA:
            spec["equipment"] = "saf1"
        await sim.inject(spec)

    async def reset_flagged() -> bool:
        assert gateway.energy is not None
        units = {r.unit for r in gateway.energy.records.values() if "counter_reset" in r.flags}
        return {"eaf1", "saf1"} <= units

    await eventually(reset_flagged, "the books to flag the counter resets of eaf1 and saf1", within_s=180)
    await api.aclose()

    # --- the end: InfluxDB, the books against the ledger ---
    published = await settle(demo)
    for device, point, reasons in (
        (MODBUS, "energy_import", ("comm_error", "timeout", "device_exception: code 6", "sentinel")),
        (MODBUS, "power", ("not_finite",)),
        (OPCUA, "power", ("comm_error", "BadSensorFailure", "not_finite")),
    ):
        stored = await stored_reasons(influx, device, point, fault_start_ns)
        assert "VALUE BESIDE BAD" not in stored, stored
        for reason in reasons:
            assert any(k.startswith(reason) for k in stored), (device, point, reason, stored)
        figures[f"bad rows of {device}.{point} in InfluxDB"] = stored

    # every reading of the Modbus meter that went out on MQTT (good or bad) is in InfluxDB, once
    sent = {b.readings["energy_import"]["t"] for b in telemetry.batches[MODBUS] if "energy_import" in b.readings}
    rows = await influx.query(f"SELECT count(quality) FROM reading WHERE device='{MODBUS}' AND point='energy_import'")
    stored = int(rows[0].values[0][1])
    stored_times = await influx.query(
        f"SELECT quality FROM reading WHERE device='{MODBUS}' AND point='energy_import' AND time >= {min(sent)}"
    )
    stored_list = [row["time"] for s in stored_times for row in s.rows()]
    missing = sent - set(stored_list)
    figures["eaf1_meter.energy_import readings sent, stored, missing"] = (len(sent), stored, len(missing))
    assert not missing, sorted(missing)[:5]
    assert len(stored_list) == len(sent), ("rows in InfluxDB that no scan sent", len(stored_list), len(sent))

    counters = {u.asset: u.tap_counter for u in gateway.energy.model.units if u.tap_counter is not None}
    first_seen = {a: await first_good_reading_ns(influx, *counters[a].key) for a in counters}
    heats = compare_heats(demo, first_seen)
    buckets = no_negative_energy(demo)
    flagged_units = {entry[0] for entry in heats.flagged}
    print(
        f"\ndevice faults: {published} batches published; {heats.matched} heats/taps within 0.5 % "
        f"(worst {heats.worst_error:.3%}), {len(heats.flagged)} flagged by faults: {heats.flagged}; "
        f"each unit's heats together against the ledger: { {u: f'{e:+.3%}' for u, e in heats.unit_errors.items()} }; "
        f"{buckets} electricity buckets, none negative; {figures}"
    )
    assert heats.matched >= 6
    assert flagged_units, "the counter resets flagged no heat"

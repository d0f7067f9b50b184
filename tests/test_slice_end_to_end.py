"""The thin slice, end to end: simulators (Modbus TCP + OPC UA servers) -> drivers -> MQTT ->
ingest -> InfluxDB, and the HTTP API; checked against what the simulators actually served."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from ferrogate.gateway.demo import Demo, DemoOptions
from ferrogate.gateway.influx import InfluxV1Client
from ferrogate.gateway.runtime import Gateway
from ferrogate.gateway.services import InfluxDB, Mosquitto
from ferrogate.gateway.timeutil import iso_utc
from tests.conftest import DEMO_PLANT, plant_on_free_ports
from tests.waiting import eventually

SCANS_WANTED = 5


async def rows(client: InfluxV1Client, device: str, point: str) -> list[dict]:
    series = await client.query(
        f"SELECT value, quality, reason, unit, asset FROM reading WHERE device='{device}' AND point='{point}'"
    )
    return series[0].rows() if series else []


@contextlib.asynccontextmanager
async def within(seconds: float, what: str, gateway: Gateway) -> AsyncIterator[None]:
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        publisher, ingest = gateway.publisher, gateway.ingest
        assert publisher is not None and ingest is not None
        writer = ingest.writer
        pytest.fail(
            f"timed out after {seconds:.0f} s waiting for {what}: collector spool head "
            f"{publisher.spool.head_id()} of {publisher.spool.last_id}, published {publisher.published}; "
            f"ingest took {ingest.messages} messages, writer added {writer.added}, done {writer.done}, "
            f"pending {writer.pending}, database down {writer.database_down}, held {writer.holds.times} times, "
            f"read pauses {ingest.read_pauses}, marks published {ingest.marks_published}"
        )


async def test_slice_delivers_what_the_simulators_served(
    mosquitto: Mosquitto, influxdb: InfluxDB, fresh_database: str, tmp_path: Path
) -> None:
    plant = plant_on_free_ports(DEMO_PLANT, mosquitto, influxdb, fresh_database)
    demo = Demo(plant, DemoOptions(tmp_path, api_port=0, speed=60, history_s=3600, move_taken_ports=True))
    await demo.start()
    gateway, sim = demo.gateway, demo.simulation
    assert gateway is not None and sim is not None and gateway.publisher is not None
    assert gateway.ingest is not None
    influx = gateway.ingest.influx_client
    try:
        await asyncio.wait_for(gateway.ingest.database_ready.wait(), timeout=30)

        async def enough() -> bool:
            counts = [
                len(await rows(influx, d, p)) for d, p in [("eaf1_meter", "energy_import"), ("whg1_plc", "power")]
            ]
            return min(counts) >= SCANS_WANTED

        await eventually(enough, f"{SCANS_WANTED} scans of each device in InfluxDB")

        # stop scanning, then let everything in flight arrive (bounded: a wait that never ends says
        # which one, and where the hand-over stood, instead of running into the suite's timeout)
        async with within(120, "the broker to acknowledge every batch", gateway):
            published = await gateway.stop_collecting()

        async def all_consumed() -> bool:
            return gateway.ingest.messages >= published and gateway.live.batches >= published

        await eventually(all_consumed, "ingest and live cache to receive every published batch")
        async with within(120, "ingest to make every batch it took durable", gateway):
            await gateway.ingest.writer.flush()

        # Modbus: every stored reading is exactly one read the simulator served, at its meter clock
        meter = sim.modbus["eaf1_meter"]
        served_by_time = {int(s["clock_ms"]) * 1_000_000: s for s in meter.served}
        energy = await rows(influx, "eaf1_meter", "energy_import")
        power = await rows(influx, "eaf1_meter", "power")
        # every read the meter served is stored, once per meter time: until the gateway's first scans
        # the demo holds the plant clock, so those reads share one time and one row. A read that
        # timed out on a loaded box and was tried again was served (maybe) but not used
        scanned = next(s for s in gateway.collector.scanners if s.device.id == "eaf1_meter").metrics
        assert len(energy) == len(power) == len(served_by_time)
        assert {row["time"] for row in energy} == set(served_by_time)
        assert scanned.scans <= meter.requests and meter.requests - scanned.scans <= scanned.requests - scanned.scans
        for row in energy:
            assert row["time"] in served_by_time, "stored a time the meter never served"
            assert row["value"] == served_by_time[row["time"]]["energy_import_kwh"]
            assert (row["unit"], row["quality"], row["reason"], row["asset"]) == ("kWh", "good", None, "eaf1")
        for row in power:
            assert row["value"] == served_by_time[row["time"]]["power_kw"]
            assert (row["unit"], row["quality"], row["asset"]) == ("kW", "good", "eaf1")
        counters = [row["value"] for row in energy]
        assert counters == sorted(counters) and counters[-1] > counters[0], "counter must advance"

        # OPC UA: every stored reading is a value the server published, at its source timestamp
        plc = sim.opcua["whg1_plc"]
        served_opc = {(signal, t): v for signal, v, t in plc.served}
        for point, signal, unit in [("power", "power_kw", "kW"), ("energy_export", "exported_kwh", "kWh")]:
            stored = await rows(influx, "whg1_plc", point)
            assert len(stored) >= SCANS_WANTED
            for row in stored:
                assert served_opc.get((signal, row["time"])) == row["value"]
                assert (row["unit"], row["quality"], row["asset"]) == (unit, "good", "whg1")

        # the HTTP API shows the plant model and the last value of each point
        headers = {"X-API-Key": demo.api_key}
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{demo.options.api_port}", timeout=10, headers=headers
        ) as http:
            assert (await http.get("/healthz")).json() == {"status": "ok"}
            assets = {a["id"]: a for a in (await http.get("/api/v1/assets")).json()}
            assert set(assets) == {
                *("eaf1", "eaf2", "saf1", "saf2", "saf3", "tr_eaf1", "tr_eaf2", "tr_saf1", "tr_saf2", "tr_saf3"),
                *("whg1", "whg2", "emm1", "incomer"),
            }
            roles = {m["role"]: m["unit"] for m in assets["eaf1"]["meters"]}
            assert {"electricity_import": "kWh", "active_power": "kW"}.items() <= roles.items()

            live = (await http.get("/api/v1/assets/eaf1/live")).json()
            by_point = {p["point"]: p for p in live["points"]}
            last = meter.served[-1]
            assert by_point["energy_import"]["value"] == last["energy_import_kwh"]
            assert by_point["energy_import"]["unit"] == "kWh"
            assert by_point["energy_import"]["quality"] == "good"
            assert by_point["power"]["value"] == last["power_kw"]
            assert by_point["energy_import"]["source_time"] == iso_utc(int(last["clock_ms"]) * 1_000_000)

            whg_live = (await http.get("/api/v1/assets/whg1/live")).json()
            stored_last = (await rows(influx, "whg1_plc", "power"))[-1]
            whg_power = next(p for p in whg_live["points"] if p["point"] == "power")
            assert (whg_power["value"], whg_power["unit"], whg_power["quality"]) == (stored_last["value"], "kW", "good")

            missing = await http.get("/api/v1/assets/no_such_asset/live")
            assert missing.status_code == 404
            assert missing.json()["detail"]["error"] == "unknown_asset"
    finally:
        await demo.stop()

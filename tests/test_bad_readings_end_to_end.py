"""A bad reading carries no value, end to end. An OPC UA server sends a failed sensor's 0.0 together
with BadSensorFailure (as some PLCs and node-opcua servers do; the simulator writes the DataValue
as it is) and an Uncertain value with its status; a Modbus meter serves NaN. Through the drivers
(subscribed and polled), the MQTT payload and ingest, InfluxDB holds no `value` beside
quality="bad", the Uncertain value stays with its reason, and the API shows no number either."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import AsyncIterator

import aiomqtt
import httpx
from asyncua import ua

from ferrogate.api.keys import Role, new_key
from ferrogate.gateway.influx import InfluxV1Client
from ferrogate.gateway.payload import telemetry_filter
from ferrogate.gateway.plant_file import PlantFile
from ferrogate.gateway.runtime import Gateway
from ferrogate.gateway.services import InfluxDB, Mosquitto, free_port
from ferrogate.simulators.faults import DeviceFaults
from ferrogate.simulators.opcua_server import AddressSpace, SimulatedOpcUaDevice, Variable
from ferrogate.simulators.registers import Register, RegisterMap
from tests.field_devices import modbus_device, node, opcua_device, start_modbus, start_opcua
from tests.waiting import eventually

SPACE = AddressSpace(
    "bad_values",
    (Variable("P_kW", "power", "kW"), Variable("E_kWh", "energy", "kWh"), Variable("T_C", "temp", "degC")),
)
OPC_POINTS = [
    {"id": "power", "node": node("DEV", "P_kW"), "unit": "kW"},  # BadSensorFailure with 0.0
    {"id": "energy", "node": node("DEV", "E_kWh"), "unit": "kWh"},  # UncertainLastUsableValue with 99.5
    {"id": "temp", "node": node("DEV", "T_C"), "unit": "degC"},  # good
]
METER = RegisterMap("nan_meter", (Register(0, "float32", "power", "kW"), Register(2, "float32", "voltage", "kV")))
SITE = "badvalues"
KEY, STORED_KEY = new_key("bad-values", Role.viewer)
T0 = 1_795_000_000_000_000_000


@contextlib.asynccontextmanager
async def publishing(sim: SimulatedOpcUaDevice, values: dict[str, float]) -> AsyncIterator[None]:
    """The server publishes every 0.2 s, a second of source time apart; the Uncertain and the good
    value rise by 1 each time (subscriptions are notified of changes only); the failed sensor
    stays at 0.0."""

    async def loop() -> None:
        t = T0
        while True:
            await sim.publish(t)
            t += 1_000_000_000
            values["energy"] += 1.0
            values["temp"] += 1.0
            await asyncio.sleep(0.2)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def rows(influx: InfluxV1Client, device: str, point: str) -> list[dict]:
    series = await influx.query(
        f"SELECT value, quality, reason FROM reading WHERE device='{device}' AND point='{point}'"
    )
    return series[0].rows() if series else []


async def test_bad_readings_reach_influxdb_and_the_api_without_a_number(
    mosquitto: Mosquitto, influxdb: InfluxDB, fresh_database: str
) -> None:
    faults = DeviceFaults()
    faults.bad_status[("", "power")] = (ua.StatusCodes.BadSensorFailure, True)  # value sent with the Bad status
    faults.bad_status[("", "energy")] = (ua.StatusCodes.UncertainLastUsableValue, False)
    values = {"power": 0.0, "energy": 99.5, "temp": 55.0}
    opc = await start_opcua(SPACE, values)
    opc.faults = faults
    meter = await start_modbus(METER, {"power": math.nan, "voltage": 10.5})
    root = f"{fresh_database}/ferrogate/v1"
    meter_points = [
        {"id": "power", "address": 0, "type": "float32", "unit": "kW"},
        {"id": "voltage", "address": 2, "type": "float32", "unit": "kV"},
    ]
    gateway_plant = PlantFile.model_validate(
        {
            "site": {"id": SITE, "name": "bad values"},
            "mqtt": {"port": mosquitto.port, "topic_root": root},
            "influxdb": {"url": influxdb.url, "database": fresh_database, "flush_interval_s": 0.2},
            "devices": [
                opcua_device("plc_sub", opc.endpoint, OPC_POINTS, mode="subscribe", scan_interval_s=0.5),
                opcua_device("plc_poll", opc.endpoint, OPC_POINTS, mode="poll", scan_interval_s=0.5),
                modbus_device("meter", meter.port, meter_points, scan_interval_s=0.5),
            ],
            "assets": [
                {
                    "id": "whg1",
                    "type": "waste_heat_generator",
                    "name": "WHG",
                    "meters": {"generation_power": "plc_sub.power"},
                }
            ],
        }
    )
    api_port = free_port()
    gateway = Gateway(
        gateway_plant, ("collect", "ingest", "api"), api_port=api_port, gateway_id=fresh_database, api_keys=[STORED_KEY]
    )
    payloads: dict[str, dict] = {}

    async def watch_payloads() -> None:
        async with aiomqtt.Client("127.0.0.1", mosquitto.port, protocol=aiomqtt.ProtocolVersion.V5) as raw:
            await raw.subscribe(telemetry_filter(root, SITE))
            async for message in raw.messages:
                doc = json.loads(message.payload)
                payloads.setdefault(doc["device"], doc)

    watcher = asyncio.create_task(watch_payloads())
    await gateway.start()
    assert gateway.ingest is not None
    influx = InfluxV1Client(gateway_plant.influxdb)  # the test's own: the gateway's closes with it
    try:
        async with publishing(opc, values):
            await asyncio.wait_for(gateway.ingest.database_ready.wait(), timeout=30)

            async def enough() -> bool:
                # the failed sensor's value and status never change: a subscription is notified once
                wanted = {("plc_sub", "power"): 1}
                points = [(d, p) for d in ("plc_sub", "plc_poll") for p in ("power", "energy", "temp")]
                for device, point in [*points, ("meter", "power"), ("meter", "voltage")]:
                    if len(await rows(influx, device, point)) < wanted.get((device, point), 3):
                        return False
                return len(payloads) == 3

            await eventually(enough, "readings of every point in InfluxDB and a payload of each device")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=10) as http:
                live = (await http.get("/api/v1/assets/whg1/live", headers={"X-API-Key": KEY})).json()
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await gateway.stop()
        await opc.stop()
        await meter.stop()

    # the MQTT payload: null beside "bad", the Uncertain number with its reason
    for device in ("plc_sub", "plc_poll"):
        readings = wire_readings(payloads[device])
        assert (readings["power"]["v"], readings["power"]["q"], readings["power"]["r"]) == (
            None,
            "bad",
            "BadSensorFailure",
        )
        assert readings["energy"]["v"] >= 99.5 and readings["energy"]["q"] == "uncertain"
        assert readings["energy"]["r"] == "UncertainLastUsableValue"
        assert readings["temp"]["v"] >= 55.0 and readings["temp"]["q"] == "good"
    meter_readings = wire_readings(payloads["meter"])
    assert (meter_readings["power"]["v"], meter_readings["power"]["q"]) == (None, "bad")

    # InfluxDB: no value field on any bad row
    assert await influx.query("SELECT count(value) FROM reading WHERE quality = 'bad'") == []
    for device in ("plc_sub", "plc_poll"):
        power = await rows(influx, device, "power")
        assert {(r["value"], r["quality"], r["reason"]) for r in power} == {(None, "bad", "BadSensorFailure")}
        energy = await rows(influx, device, "energy")
        assert {(r["quality"], r["reason"]) for r in energy} == {("uncertain", "UncertainLastUsableValue")}
        assert all(r["value"] >= 99.5 and r["value"] % 1 == 0.5 for r in energy), energy  # numbers served
        assert {r["quality"] for r in await rows(influx, device, "temp")} == {"good"}
    assert {(r["value"], r["quality"], r["reason"]) for r in await rows(influx, "meter", "power")} == {
        (None, "bad", "not_finite: nan")
    }
    assert {(r["value"], r["quality"]) for r in await rows(influx, "meter", "voltage")} == {(10.5, "good")}

    await influx.aclose()

    # the API's live view
    (point,) = live["points"]
    assert (point["value"], point["quality"], point["reason"]) == (None, "bad", "BadSensorFailure")


def wire_readings(doc: dict) -> dict[str, dict]:
    """Per point, the value, quality and reason exactly as the compact message carries them
    (ferrogate/2: values by index; only readings that are not plainly good are listed in `x`)."""
    assert doc["schema"] == "ferrogate/2"
    listed = {i: (q, r) for i, q, r in doc.get("x", [])}
    return {
        point: {"v": v, "q": listed.get(i, ("good", None))[0], "r": listed.get(i, ("good", None))[1]}
        for i, (point, v) in enumerate(zip(doc["p"], doc["v"], strict=True))
    }

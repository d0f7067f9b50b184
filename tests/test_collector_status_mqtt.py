"""A device's online/offline changes reach MQTT as retained status messages, through the gateway's
collect role (collector -> publisher) and the real Mosquitto."""

from __future__ import annotations

import asyncio
import json

import aiomqtt

from ferrogate.gateway.payload import status_topic
from ferrogate.gateway.plant_file import PlantFile
from ferrogate.gateway.runtime import Gateway
from ferrogate.gateway.services import InfluxDB, Mosquitto
from ferrogate.simulators.registers import Register, RegisterMap
from tests.field_devices import modbus_device, start_modbus
from tests.waiting import eventually

METER = RegisterMap("meter", (Register(0, "float32", "power", "kW"),))


async def test_device_status_follows_the_device(mosquitto: Mosquitto, influxdb: InfluxDB, fresh_database: str) -> None:
    sim = await start_modbus(METER, {"power": 10.0})
    device = modbus_device(
        "meter1", sim.port, [{"id": "power", "address": 0, "type": "float32", "unit": "kW"}], scan_interval_s=0.2
    )
    plant = PlantFile.model_validate(
        {
            "site": {"id": "status_site", "name": "status test"},
            "mqtt": {"port": mosquitto.port},
            "influxdb": {"url": influxdb.url, "database": fresh_database, "flush_interval_s": 0.2},
            "devices": [{**device, "timeout_s": 0.5, "reconnect_max_s": 0.4}],
        }
    )
    topic = status_topic(plant.mqtt.topic_root, "status_site", "meter1")
    seen: list[str] = []
    gateway = Gateway(plant, roles=("collect", "ingest"), gateway_id="status-test")
    try:
        async with aiomqtt.Client("127.0.0.1", mosquitto.port, protocol=aiomqtt.ProtocolVersion.V5) as sub:
            await sub.subscribe(topic, qos=1)

            async def listen() -> None:
                async for message in sub.messages:
                    seen.append(json.loads(message.payload)["status"])

            listener = asyncio.create_task(listen())
            await gateway.start()

            async def status_is(*expected: str) -> bool:
                return seen == list(expected)

            await eventually(lambda: status_is("online"), "the device online", within_s=30)
            await sim.refuse()
            await eventually(lambda: status_is("online", "offline"), "the device offline", within_s=30)
            await sim.accept()
            await eventually(lambda: status_is("online", "offline", "online"), "the device back", within_s=30)
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
        # a subscriber that comes later gets the last state, retained by the broker
        async with aiomqtt.Client("127.0.0.1", mosquitto.port, protocol=aiomqtt.ProtocolVersion.V5) as late:
            await late.subscribe(topic, qos=1)
            retained = await asyncio.wait_for(anext(aiter(late.messages)), 10)
        assert retained.retain and json.loads(retained.payload)["status"] == "online"
    finally:
        await gateway.stop()
        await sim.stop()

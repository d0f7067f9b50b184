"""The gateway only reads from field devices, proven at the devices: the simulators count the
function code of every Modbus request and the service of every OPC UA request they receive. A full
run of the demo plant (collect, ingest, energy, api; Modbus holding and input registers and discrete inputs, OPC UA
subscriptions) and a polled OPC UA device send no write function code and no Write or Call."""

from __future__ import annotations

import asyncio

from ferrogate.gateway.collect import Collector
from ferrogate.gateway.demo import Demo
from ferrogate.gateway.reading import ScanBatch
from ferrogate.simulators.modbus_server import SimulatedModbusDevice
from ferrogate.simulators.opcua_server import AddressSpace, SimulatedOpcUaDevice, Variable
from tests.field_devices import node, opcua_device, plant, start_opcua
from tests.waiting import eventually

READ_CODE = {"coil": 1, "discrete_input": 2, "holding": 3, "input": 4}  # Modbus read function per table
MODBUS_WRITES = {5, 6, 15, 16, 22, 23}  # write coil(s)/register(s), mask write, read/write registers
# OPC UA services that change a server's address space, values or state beyond the client's own session
OPCUA_CHANGES = {
    "WriteRequest",
    "CallRequest",
    "HistoryUpdateRequest",
    "AddNodesRequest",
    "DeleteNodesRequest",
    "AddReferencesRequest",
    "DeleteReferencesRequest",
}


def modbus_codes(devices: dict[str, SimulatedModbusDevice]) -> dict[str, dict[int, int]]:
    return {device_id: dict(sim.function_codes) for device_id, sim in devices.items()}


def opcua_services(devices: dict[str, SimulatedOpcUaDevice]) -> dict[str, dict[str, int]]:
    return {device_id: dict(sim.service_log.requests) for device_id, sim in devices.items()}


async def test_a_full_run_of_the_demo_plant_sends_no_write(accounted_demo: Demo) -> None:
    simulation = accounted_demo.simulation
    assert simulation is not None
    codes = modbus_codes(simulation.modbus)
    tables = {
        device.id: {READ_CODE[point.table.value] for point in device.points}
        for device in accounted_demo.plant.devices
        if device.protocol == "modbus"
    }
    # each device received the read functions of the tables its points are in, and nothing else
    assert {device_id: set(seen) for device_id, seen in codes.items()} == tables
    assert not {code for seen in codes.values() for code in seen} & MODBUS_WRITES
    services = opcua_services(simulation.opcua)
    for device_id, requests in services.items():
        assert requests.get("CreateMonitoredItemsRequest", 0) > 0 and requests.get("PublishRequest", 0) > 0, (
            device_id,
            requests,
        )
        assert not set(requests) & OPCUA_CHANGES, (device_id, requests)


async def test_a_polled_opcua_device_is_only_read() -> None:
    space = AddressSpace("polled", (Variable("P_kW", "power", "kW"), Variable("E_kWh", "energy", "kWh")))
    sim = await start_opcua(space, {"power": 1.0, "energy": 2.0})
    batches: list[ScanBatch] = []
    points = [
        {"id": "power", "node": node("DEV", "P_kW"), "unit": "kW"},
        {"id": "energy", "node": node("DEV", "E_kWh"), "unit": "kWh"},
    ]
    collector = Collector(
        plant(opcua_device("plc", sim.endpoint, points, mode="poll", scan_interval_s=0.1)), batches.append
    )
    running = asyncio.create_task(collector.run())
    try:
        await sim.publish(1_795_000_000_000_000_000)
        await eventually(lambda: asyncio.sleep(0, len(batches) >= 5), "five polled scans")
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await sim.stop()
    requests = dict(sim.service_log.requests)
    assert requests.get("ReadRequest", 0) >= 5 and "CreateMonitoredItemsRequest" not in requests, requests
    assert not set(requests) & OPCUA_CHANGES, requests

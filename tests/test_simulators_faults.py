"""Every injectable fault, seen by a plain protocol client (pymodbus, asyncua), and the fault script's
timing (simulated and wall clocks). The plant runs on a ManualClock: a fault starts and ends at
chosen simulated seconds, so nothing races."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asyncua import Client, ua
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from ferrogate.gateway.timeutil import datetime_to_ns
from ferrogate.simulators.clock import ManualClock
from ferrogate.simulators.config import ExceptionFault, FreezeFault, RefuseConnections
from ferrogate.simulators.faults import FaultController
from ferrogate.simulators.plant import SimulatedPlant
from tests.conftest import on_free_ports
from tests.simulator_plants import T0, load, manual_plant, small_doc

SCRIPTED_AT = 20 * 3600  # the scripted fault of the test plant: exception 6 from 20 h for 10 min


@pytest.fixture(scope="module")
async def plant() -> AsyncIterator[tuple[SimulatedPlant, ManualClock]]:
    doc = on_free_ports(small_doc())
    doc["simulation"]["faults"] = [
        {"device": "eaf_meter", "fault": "exception", "code": 6, "at": "20h", "duration": "10m"}
    ]
    sim, clock = manual_plant(load(doc))
    await sim.start()
    yield sim, clock
    await sim.stop()


@pytest.fixture
async def meter(plant: tuple[SimulatedPlant, ManualClock]) -> AsyncIterator[AsyncModbusTcpClient]:
    sim, _ = plant
    dev = sim.modbus["eaf_meter"]
    client = AsyncModbusTcpClient(dev.host, port=dev.port, timeout=5, retries=0)
    assert await client.connect()
    yield client
    client.close()
    await sim.clear_faults()


def decode(client: AsyncModbusTcpClient, regs: list[int], kind: str) -> float:
    datatype = {"uint32": client.DATATYPE.UINT32, "float32": client.DATATYPE.FLOAT32}[kind]
    return client.convert_from_registers(regs, datatype)


async def energy_and_power(client: AsyncModbusTcpClient) -> tuple[float, float]:
    rr = await client.read_holding_registers(0, count=4, device_id=1)
    assert not rr.isError(), rr
    return decode(client, rr.registers[:2], "uint32"), decode(client, rr.registers[2:4], "float32")


async def opc_values(sim: SimulatedPlant, *nodes: str) -> list[ua.DataValue]:
    async with Client(sim.opcua["saf_dcs"].endpoint, timeout=10) as client:
        idx = await client.get_namespace_index("urn:ferrogate:simulator")
        return await client.read_attributes([client.get_node(ua.NodeId(n, idx)) for n in nodes], ua.AttributeIds.Value)


async def move(sim: SimulatedPlant, clock: ManualClock, seconds: float) -> None:
    clock.set(clock.t + seconds)
    await sim.step()


async def test_scripted_exception_window(plant, meter) -> None:
    _, clock = plant
    for offset, failing in [(SCRIPTED_AT - 1, False), (SCRIPTED_AT, True), (SCRIPTED_AT + 599, True)]:
        clock.set(max(clock.t, T0 + offset))
        rr = await meter.read_holding_registers(0, count=2, device_id=1)
        assert rr.isError() is failing, offset
        if failing:
            assert rr.exception_code == 6
    clock.set(T0 + SCRIPTED_AT + 600)
    assert not (await meter.read_holding_registers(0, count=2, device_id=1)).isError()


async def test_exception_answers(plant, meter) -> None:
    sim, _ = plant
    await sim.inject({"device": "eaf_meter", "fault": "exception", "code": 4})
    rr = await meter.read_holding_registers(0, count=2, device_id=1)
    assert rr.isError() and rr.exception_code == 4
    await sim.clear_faults()
    assert not (await meter.read_holding_registers(0, count=2, device_id=1)).isError()


async def test_freeze_holds_the_value_while_the_counter_moves(plant, meter) -> None:
    sim, clock = plant
    await move(sim, clock, 3600)
    await sim.inject({"device": "eaf_meter", "fault": "freeze", "signals": ["power_kw"]})
    await sim.inject({"device": "saf_dcs", "equipment": "saf1", "fault": "freeze", "signals": ["power_kw"]})
    energy0, power0 = await energy_and_power(meter)
    saf0 = (await opc_values(sim, "SAF1.P_kW"))[0]
    await move(sim, clock, 120)
    energy1, power1 = await energy_and_power(meter)
    saf1 = (await opc_values(sim, "SAF1.P_kW"))[0]
    assert power1 == power0 and energy1 > energy0
    assert sim.engine.signal("eaf1", "power_kw") != pytest.approx(power0, rel=1e-6), "the model moved on"
    assert saf1.Value.Value == saf0.Value.Value != sim.engine.signal("saf1", "power_kw")
    assert datetime_to_ns(saf1.SourceTimestamp) - datetime_to_ns(saf0.SourceTimestamp) == 120 * 10**9


async def test_nan_on_floats_and_not_available_on_integers(plant, meter) -> None:
    sim, _ = plant
    await sim.inject({"device": "eaf_meter", "fault": "nan"})
    await sim.inject({"device": "saf_dcs", "equipment": "saf1", "fault": "nan", "signals": ["power_kw", "taps"]})
    energy, power = await energy_and_power(meter)
    assert math.isnan(power) and energy == 2**32 - 1
    p_kw, taps = await opc_values(sim, "SAF1.P_kW", "SAF1.TapCount")
    assert math.isnan(p_kw.Value.Value) and taps.Value.Value == 2**32 - 1
    assert p_kw.StatusCode.is_good(), "a NaN from a PLC arrives with Good status: the gateway must catch it"


async def test_out_of_range_value(plant, meter) -> None:
    sim, _ = plant
    await sim.inject({"device": "eaf_meter", "fault": "out_of_range", "value": -5000, "signals": ["power_kw"]})
    _, power = await energy_and_power(meter)
    assert power == -5000.0


async def test_bad_status_on_one_folder_only(plant) -> None:
    sim, _ = plant
    await sim.inject(
        {
            "device": "saf_dcs",
            "equipment": "saf1",
            "fault": "bad_status",
            "status": "BadSensorFailure",
            "signals": ["power_kw"],
        }
    )
    try:
        saf_power, saf_energy, tr_power = await opc_values(sim, "SAF1.P_kW", "SAF1.E_import_kWh", "TR_SAF1.P_kW")
        assert saf_power.StatusCode.value == ua.StatusCodes.BadSensorFailure
        assert saf_energy.StatusCode.is_good() and tr_power.StatusCode.is_good()
    finally:
        await sim.clear_faults()
    assert (await opc_values(sim, "SAF1.P_kW"))[0].StatusCode.is_good()


async def test_latency_makes_reads_time_out(plant) -> None:
    sim, _ = plant
    dev = sim.modbus["eaf_meter"]
    impatient = AsyncModbusTcpClient(dev.host, port=dev.port, timeout=0.5, retries=0)
    assert await impatient.connect()
    async with Client(sim.opcua["saf_dcs"].endpoint, timeout=10) as opc:
        node = opc.get_node(ua.NodeId("SAF1.P_kW", await opc.get_namespace_index("urn:ferrogate:simulator")))
        await sim.inject({"device": "eaf_meter", "fault": "latency", "delay_s": 2})
        await sim.inject({"device": "saf_dcs", "fault": "latency", "delay_s": 2})
        try:
            with pytest.raises(ModbusException):
                await impatient.read_holding_registers(0, count=2, device_id=1)
            opc.uaclient.protocol.timeout = 0.5  # requests from now on wait at most 0.5 s
            with pytest.raises(TimeoutError):
                await opc.read_attributes([node], ua.AttributeIds.Value)
        finally:
            impatient.close()
            opc.uaclient.protocol.timeout = 10
            await sim.clear_faults()
        assert (await opc.read_attributes([node], ua.AttributeIds.Value))[0].StatusCode.is_good()
    patient = AsyncModbusTcpClient(dev.host, port=dev.port, timeout=5, retries=0)
    assert await patient.connect()
    assert not (await patient.read_holding_registers(0, count=2, device_id=1)).isError()
    patient.close()


async def test_refused_connections_on_both_protocols(plant, meter) -> None:
    sim, _ = plant
    dev = sim.modbus["eaf_meter"]
    await sim.inject({"device": "eaf_meter", "fault": "refuse_connections"})
    await sim.inject({"device": "saf_dcs", "fault": "refuse_connections"})
    newcomer = AsyncModbusTcpClient(dev.host, port=dev.port, timeout=1, retries=0, reconnect_delay=0)
    assert not await newcomer.connect(), "new connections are refused"
    with pytest.raises(ModbusException):
        await meter.read_holding_registers(0, count=2, device_id=1)  # the open connection was dropped
    with pytest.raises(OSError):
        await Client(sim.opcua["saf_dcs"].endpoint, timeout=2).connect()
    await sim.clear_faults()
    assert await newcomer.connect()
    assert not (await newcomer.read_holding_registers(0, count=2, device_id=1)).isError()
    newcomer.close()
    assert (await opc_values(sim, "SAF1.P_kW"))[0].StatusCode.is_good()


async def test_counter_reset_is_a_meter_replacement(plant, meter) -> None:
    sim, clock = plant
    await move(sim, clock, 600)
    before, _ = await energy_and_power(meter)
    true_before = sim.engine.signal("eaf1", "energy_import_kwh")
    ledger = len(sim.truth)
    await sim.inject({"device": "eaf_meter", "fault": "counter_reset"})
    reset, _ = await energy_and_power(meter)
    assert before > 1000 and reset == 0
    await move(sim, clock, 3600)
    after, _ = await energy_and_power(meter)
    grown = sim.engine.signal("eaf1", "energy_import_kwh") - true_before
    assert after == math.floor(grown), "the new meter counts the true energy from zero"
    await sim.clear_faults()  # the replaced meter stays replaced
    assert (await energy_and_power(meter))[0] == after
    new_lines = [line for line in sim.truth[ledger:] if line["asset"] == "eaf1"]
    assert new_lines and all(line["energy_kwh"] > 30_000 for line in new_lines), "the ledger keeps the true energy"


async def test_a_fault_that_does_not_fit_the_plant_is_refused(plant) -> None:
    sim, _ = plant
    with pytest.raises(ValueError, match="OPC UA devices only"):
        await sim.inject({"device": "eaf_meter", "fault": "bad_status"})
    with pytest.raises(ValueError, match="serves no signal"):
        await sim.inject({"device": "eaf_meter", "fault": "freeze", "signals": ["oil_temp_c"]})


def test_fault_windows_on_simulated_and_wall_clocks() -> None:
    wall = [100.0]
    controller = FaultController(
        [
            RefuseConnections(device="m", fault="refuse_connections", at=60, duration=30),
            ExceptionFault(device="m", fault="exception", code=6, at=5, duration=10, clock="wall"),
            FreezeFault(device="m", fault="freeze", at=0, signals=["p"]),
        ],
        served={"m": {"eq": {"p", "e", "clock_ms"}}},
        counters={"eq": {"e"}},
        float_outputs={"m": {("eq", "p")}},
        true_value=lambda eq, name: 0.0,
        sim_start=1000.0,
        wall=lambda: wall[0],
    )
    state = controller.devices["m"]
    seen: list[tuple[Any, ...]] = []
    for sim_t, wall_t in [(1000, 100), (1059, 104.9), (1060, 105), (1089, 114.9), (1090, 115)]:
        wall[0] = wall_t
        controller.update(sim_t)
        seen.append((state.refusing, state.exception_code))
    assert seen == [(False, None), (False, None), (True, 6), (True, 6), (False, None)]
    assert state.value(("eq", "p"), 5.0) == 5.0 and state.value(("eq", "p"), 7.0) == 5.0, "frozen at first value"
    assert state.value(("eq", "e"), 7.0) == 7.0


async def test_clock_offset_moves_the_clock_register_and_the_source_timestamps(plant, meter) -> None:
    sim, clock = plant

    async def clocks() -> tuple[float, int]:
        rr = await meter.read_holding_registers(4, count=4, device_id=1)
        assert not rr.isError(), rr
        register_ms = meter.convert_from_registers(rr.registers, meter.DATATYPE.UINT64)
        (saf,) = await opc_values(sim, "SAF1.P_kW")
        return register_ms, datetime_to_ns(saf.SourceTimestamp)

    await move(sim, clock, 60)
    true_ms, true_ns = await clocks()
    assert true_ms == clock.t * 1000 and true_ns == clock.now_ns()
    await sim.inject({"device": "eaf_meter", "fault": "clock_offset", "offset_s": 86_400})
    await sim.inject({"device": "saf_dcs", "fault": "clock_offset", "offset_s": -3600})
    ahead_ms, behind_ns = await clocks()
    assert ahead_ms == true_ms + 86_400_000 and behind_ns == true_ns - 3600 * 10**9
    await sim.clear_faults()
    assert await clocks() == (true_ms, true_ns)

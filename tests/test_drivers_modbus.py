"""Modbus TCP driver against the simulator's pymodbus server over loopback: data types, byte and
word orders, bit fields, coalescing (counted at the server), exception responses, timeouts,
per-host connection limit and request pacing."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from ferrogate.drivers.modbus.driver import ModbusDriver
from ferrogate.drivers.modbus.link import ModbusLinks
from ferrogate.gateway.reading import Quality, Reading
from ferrogate.simulators.faults import DeviceFaults
from ferrogate.simulators.registers import Register, RegisterMap, served_value
from tests.field_devices import modbus_device, plant, start_modbus
from tests.waiting import eventually

TYPES = ["int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"]
ORDERS = list(itertools.product(["big", "little"], ["big", "little"]))  # (word order, byte order)
# a value per type that uses every byte, so any order mistake changes it
SAMPLES = {
    "int16": -12345,
    "uint16": 0xA1B2,
    "int32": -123456789,
    "uint32": 0xA1B2C3D4,
    "int64": -1234567890123456789,
    "uint64": 0xA1B2C3D4E5F60718,
    "float32": -1234.5,
    "float64": 98765.4321,
}


def by_point(readings: list[Reading]) -> dict[str, Reading]:
    return {r.point: r for r in readings}


def build(registers: list[Register]) -> RegisterMap:
    return RegisterMap("test", tuple(registers))


def point_for(reg: Register, pid: str, **extra: object) -> dict[str, object]:
    return {
        "id": pid,
        "address": reg.address,
        "type": reg.type,
        "word_order": reg.word_order,
        "byte_order": reg.byte_order,
        "scale": reg.scale,
        "unit": reg.unit,
        **extra,
    }


async def test_every_type_in_every_byte_and_word_order() -> None:
    registers, points, values = [], [], {}
    address = 0
    for type_, (word, byte) in itertools.product(TYPES, ORDERS):
        if type_.endswith("16") and word == "little":
            continue  # one register has no word order
        signal = f"{type_}_{word}_{byte}"
        reg = Register(address, type_, signal, "1", word_order=word, byte_order=byte)
        registers.append(reg)
        points.append(point_for(reg, signal))
        values[signal] = SAMPLES[type_]
        address += reg.count
    sim = await start_modbus(build(registers), values)
    try:
        device = plant(modbus_device("meter", sim.port, points)).devices[0]
        driver = ModbusDriver(device)
        await driver.connect()
        readings = by_point(await driver.read())
        await driver.close()
    finally:
        await sim.stop()
    assert len(readings) == len(registers) == 28
    for reg in registers:
        r = readings[reg.signal]
        assert (r.quality, r.reason) == (Quality.GOOD, None), reg.signal
        assert r.value == pytest.approx(served_value(reg, values[reg.signal]), rel=1e-7), reg.signal
        assert r.value == pytest.approx(SAMPLES[reg.type], rel=1e-7), reg.signal


async def test_scale_offset_and_bit_fields() -> None:
    status = Register(0, "uint16", "status_word", "1")
    temp = Register(1, "int16", "oil_temp_raw", "1")
    alarms = Register(2, "uint32", "alarm_bits", "1", word_order="little")
    values = {"status_word": 0b1000_0000_0000_0101, "oil_temp_raw": 625, "alarm_bits": 1 << 20}
    sim = await start_modbus(build([status, temp, alarms]), values)
    points = [
        {"id": "breaker_closed", "address": 0, "bit": 0, "unit": "1"},
        {"id": "fan_on", "address": 0, "bit": 1, "unit": "1"},
        {"id": "pump_on", "address": 0, "bit": 2, "unit": "1"},
        {"id": "trip", "address": 0, "bit": 15, "unit": "1"},
        {"id": "oil_temp", "address": 1, "type": "int16", "scale": 0.1, "offset": -40, "unit": "degC"},
        {"id": "gas_alarm", "address": 2, "type": "uint32", "word_order": "little", "bit": 20, "unit": "1"},
        {"id": "level_alarm", "address": 2, "type": "uint32", "word_order": "little", "bit": 4, "unit": "1"},
    ]
    try:
        driver = ModbusDriver(plant(modbus_device("tx", sim.port, points)).devices[0])
        await driver.connect()
        readings = by_point(await driver.read())
        await driver.close()
    finally:
        await sim.stop()
    assert {k: r.value for k, r in readings.items()} == {
        "breaker_closed": 1.0,
        "fan_on": 0.0,
        "pump_on": 1.0,
        "trip": 1.0,
        "oil_temp": pytest.approx(22.5),
        "gas_alarm": 1.0,
        "level_alarm": 0.0,
    }
    assert sim.requests == 1, "all seven points lie in one 4-register block"


async def test_coalescing_reads_100_points_in_a_handful_of_requests() -> None:
    # a meter with registers 0-279 mapped; we want 100 float32 values in 4 clusters of 25,
    # the clusters 20 registers apart (the registers between them exist but are not wanted)
    wanted = [Register(c * 70 + 2 * i, "float32", f"p{c}_{i}", "kW") for c in range(4) for i in range(25)]
    filler = [Register(c * 70 + 50 + i, "uint16", f"unused{c}_{i}", "1") for c in range(4) for i in range(20)]
    values = {r.signal: float(n) for n, r in enumerate(wanted + filler)}
    sim = await start_modbus(build(wanted + filler), values)
    try:
        points = [point_for(r, r.signal) for r in wanted]
        for max_gap, expected_requests in [(0, 4), (8, 4), (20, 2)]:
            # max_gap 20 joins two clusters (0-49 + 70-119 = 120 registers); a third would exceed 125
            driver = ModbusDriver(plant(modbus_device("m", sim.port, points, max_gap=max_gap)).devices[0])
            assert len(driver.requests) == expected_requests
            before = sim.requests
            await driver.connect()
            readings = await driver.read()
            await driver.close()
            assert sim.requests - before == expected_requests, f"max_gap {max_gap}"
            assert driver.metrics.requests == expected_requests
            assert [r.value for r in readings] == [values[r.signal] for r in wanted]
            assert all(r.quality is Quality.GOOD for r in readings)
    finally:
        await sim.stop()


async def test_exception_response_marks_its_points_bad_and_the_scan_goes_on() -> None:
    # address 1 is not mapped: a read spanning it gets exception 2 (illegal data address)
    registers = [Register(0, "uint16", "a", "1"), Register(2, "uint16", "b", "1"), Register(40, "uint16", "c", "1")]
    values = {"a": 1, "b": 2, "c": 3}
    sim = await start_modbus(build(registers), values)
    try:
        points = [point_for(r, r.signal) for r in registers]
        driver = ModbusDriver(plant(modbus_device("m", sim.port, points, max_gap=4)).devices[0])
        await driver.connect()
        readings = by_point(await driver.read())
        await driver.close()
    finally:
        await sim.stop()
    for pid in ("a", "b"):
        assert (readings[pid].quality, readings[pid].value) == (Quality.BAD, None)
        assert readings[pid].reason == "device_exception: code 2 (illegal data address)"
    assert (readings["c"].quality, readings["c"].value) == (Quality.GOOD, 3.0)


async def test_timeouts_become_bad_readings_and_a_silent_unit_costs_two_timeouts() -> None:
    registers = [Register(0, "uint16", "a", "1"), Register(100, "uint16", "b", "1"), Register(200, "uint16", "c", "1")]
    faults = DeviceFaults()
    sim = await start_modbus(build(registers), {"a": 1, "b": 2, "c": 3}, faults=faults)
    try:
        points = [point_for(r, r.signal) for r in registers]
        device = plant(modbus_device("slow", sim.port, points, timeout_s=0.2, retries=1)).devices[0]
        driver = ModbusDriver(device)
        await driver.connect()
        faults.latency_s = 0.5  # answers come after our timeout
        started = time.monotonic()
        readings = by_point(await driver.read())
        elapsed = time.monotonic() - started
        sent = driver.metrics.requests
        faults.latency_s = 0.0  # the unit recovers; no late answer may pass for a new request's

        recovery: list[Reading] = []

        async def answers_again() -> bool:
            scan = await driver.read()
            recovery.extend(scan)
            return all(r.quality is Quality.GOOD for r in scan)

        await eventually(answers_again, "good readings once the unit answers in time", within_s=10)
        final = by_point(await driver.read())
        await driver.close()
    finally:
        await sim.stop()
    assert readings["a"].reason == readings["b"].reason == "timeout: no answer within 0.2 s (2 tries)"
    assert readings["c"].reason == "timeout: skipped after 2 timeouts in a row"
    assert all(r.quality is Quality.BAD and r.value is None for r in readings.values())
    assert sent == 4, "two requests, each tried twice; the third skipped"
    assert elapsed >= 0.8
    assert {k: r.value for k, r in final.items()} == {"a": 1.0, "b": 2.0, "c": 3.0}
    truth = {"a": 1.0, "b": 2.0, "c": 3.0}
    assert all(r.value == truth[r.point] for r in recovery if r.quality is Quality.GOOD), "a late answer passed"


async def test_a_lost_connection_makes_the_rest_of_the_scan_bad() -> None:
    registers = [Register(0, "uint16", "a", "1")]
    sim = await start_modbus(build(registers), {"a": 5})
    point = point_for(registers[0], "a")
    driver = ModbusDriver(plant(modbus_device("m", sim.port, [point], timeout_s=0.5)).devices[0])
    await driver.connect()
    assert (await driver.read())[0].value == 5.0
    await sim.stop()
    [reading] = await driver.read()
    await driver.close()
    assert reading.quality is Quality.BAD
    assert reading.reason is not None and reading.reason.startswith("comm_error: ")


async def test_units_on_one_host_share_its_connection_limit() -> None:
    registers = [Register(i, "uint16", f"r{i}", "1") for i in range(0, 100, 20)]
    values = {r.signal: r.address for r in registers}
    sim = await start_modbus(build(registers), values)
    points = [point_for(r, r.signal) for r in registers]
    try:
        for limit in (1, 2):
            links = ModbusLinks()
            devices = plant(
                *[modbus_device(f"m{i}", sim.port, points, max_gap=0, max_concurrent_requests=limit) for i in range(3)]
            ).devices
            drivers = [ModbusDriver(d, links=links) for d in devices]
            assert len({id(d.link) for d in drivers}) == 1, "one link per host:port"
            for d in drivers:
                await d.connect()
            results = await asyncio.gather(*(d.read() for d in drivers))
            assert len(sim.server.active_connections) == limit
            for readings in results:
                assert [r.value for r in readings] == [float(r.address) for r in registers]
            for d in drivers:
                await d.close()
    finally:
        await sim.stop()


async def test_minimum_interval_between_requests() -> None:
    registers = [Register(i, "uint16", f"r{i}", "1") for i in range(0, 40, 10)]
    sim = await start_modbus(build(registers), {r.signal: 1 for r in registers})
    points = [point_for(r, r.signal) for r in registers]
    try:
        paced = plant(modbus_device("m", sim.port, points, max_gap=0, min_request_interval_s=0.1)).devices[0]
        driver = ModbusDriver(paced)
        await driver.connect()
        started = time.monotonic()
        readings = await driver.read()
        elapsed = time.monotonic() - started
        await driver.close()
    finally:
        await sim.stop()
    assert all(r.quality is Quality.GOOD for r in readings)
    assert sim.requests == 4
    assert elapsed >= 0.3, "three quiet gaps of 0.1 s between four requests"


async def test_all_four_tables_and_bools_one_request_each() -> None:
    registers = [
        Register(0, "float32", "p_kw", "kW", table="holding"),
        Register(10, "uint32", "e_kwh", "kWh", table="input", word_order="little"),
        Register(3, "bool", "breaker_closed", "1", table="coil"),
        Register(4, "bool", "remote_mode", "1", table="coil"),
        Register(9, "bool", "fan_on", "1", table="coil"),
        Register(0, "bool", "door_open", "1", table="discrete_input"),
        Register(1, "bool", "overtemp", "1", table="discrete_input"),
    ]
    values = {"p_kw": 812.5, "e_kwh": 3_000_000_000, "breaker_closed": 1, "remote_mode": 0, "fan_on": 1}
    values |= {"door_open": 0, "overtemp": 1}
    sim = await start_modbus(build(registers), values)
    points = [
        {"id": "p_kw", "address": 0, "type": "float32", "unit": "kW"},
        {"id": "e_kwh", "address": 10, "table": "input", "type": "uint32", "word_order": "little", "unit": "kWh"},
        {"id": "breaker_closed", "address": 3, "table": "coil", "unit": "1"},
        {"id": "remote_mode", "address": 4, "table": "coil", "unit": "1"},
        {"id": "fan_on", "address": 9, "table": "coil", "unit": "1"},
        {"id": "door_open", "address": 0, "table": "discrete_input", "type": "bool", "unit": "1"},
        {"id": "overtemp", "address": 1, "table": "discrete_input", "unit": "1"},
    ]
    try:
        # coils 3-9 hold unmapped bits 5-8: max_gap 0 keeps the reads on mapped addresses only
        driver = ModbusDriver(plant(modbus_device("m", sim.port, points, max_gap=0)).devices[0])
        assert sorted((r.table.value, r.start, r.count) for r in driver.requests) == [
            ("coil", 3, 2),
            ("coil", 9, 1),
            ("discrete_input", 0, 2),
            ("holding", 0, 2),
            ("input", 10, 2),
        ]
        await driver.connect()
        readings = by_point(await driver.read())
        await driver.close()
    finally:
        await sim.stop()
    assert sim.requests == 5
    assert {k: r.value for k, r in readings.items()} == {
        "p_kw": 812.5,
        "e_kwh": 3_000_000_000.0,
        "breaker_closed": 1.0,
        "remote_mode": 0.0,
        "fan_on": 1.0,
        "door_open": 0.0,
        "overtemp": 1.0,
    }
    assert all(r.quality is Quality.GOOD for r in readings.values())

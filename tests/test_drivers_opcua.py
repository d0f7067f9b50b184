"""OPC UA driver against the simulator's asyncua server over loopback: batched polling,
subscriptions (queue size, server deadband, refused items), status codes and source timestamps,
MaxNodesPerRead chunking."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from asyncua import ua

from ferrogate.drivers.opcua import asyncua_hooks, reads
from ferrogate.drivers.opcua.driver import OpcUaDriver
from ferrogate.gateway.reading import Quality, Reading
from ferrogate.gateway.timeutil import ns_to_datetime
from ferrogate.simulators.opcua_server import NAMESPACE_URI, AddressSpace, SimulatedOpcUaDevice, Variable
from tests.field_devices import node, opcua_device, plant, start_opcua
from tests.waiting import eventually

SPACE = AddressSpace(
    "test_plc",
    (
        Variable("P_kW", "power", "kW"),
        Variable("E_kWh", "energy", "kWh"),
        Variable("T_oil", "oil_temp", "degC", "Float"),
        Variable("TapCount", "taps", "1", "UInt32"),
        Variable("LastTap_ms", "last_tap", "ms", "Int64"),
        Variable("Running", "running", "1", "Boolean"),
    ),
)
POINTS = [
    {"id": "power", "node": node("DEV", "P_kW"), "unit": "kW"},
    {"id": "energy", "node": node("DEV", "E_kWh"), "unit": "kWh", "scale": 0.001, "offset": 0},
    {"id": "oil_temp", "node": node("DEV", "T_oil"), "unit": "degC"},
]
START = {"power": 1.0, "energy": 2.0, "oil_temp": 3.0, "taps": 0, "last_tap": 0, "running": 0}
T0 = 1_795_000_000_000_000_000  # a source time, Unix ns (whole microseconds: OPC UA resolution)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def server() -> AsyncIterator[tuple[SimulatedOpcUaDevice, dict[str, float]]]:
    """One server for the module (an asyncua server takes about 2 s to start and stop)."""
    values: dict[str, float] = dict(START)
    sim = await start_opcua(SPACE, values)
    yield sim, values
    await sim.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def sim(server: tuple[SimulatedOpcUaDevice, dict[str, float]]) -> SimulatedOpcUaDevice:
    """The module's server with fresh values at source time T0."""
    device, values = server
    values.clear()
    values.update(START)
    await device.publish(T0)
    return device


def driver_for(sim: SimulatedOpcUaDevice, points=POINTS, **options) -> OpcUaDriver:
    return OpcUaDriver(plant(opcua_device("plc", sim.endpoint, points, **options)).devices[0])


async def write(sim: SimulatedOpcUaDevice, name: str, value: float | None, status: int, source_ns: int) -> None:
    """Write a value with a status code and source time straight into the server's address space."""
    idx = await sim.server.get_namespace_index(NAMESPACE_URI)
    dv = ua.DataValue(
        ua.Variant(value, ua.VariantType.Double) if value is not None else ua.Variant(),
        StatusCode=ua.StatusCode(status),
        SourceTimestamp=ns_to_datetime(source_ns),
        ServerTimestamp=datetime.now(UTC),
    )
    await sim.server.write_attribute_value(ua.NodeId(f"{sim.folder}.{name}", idx), dv)


def latest(readings: list[Reading]) -> dict[str, Reading]:
    return {r.point: r for r in readings}


async def test_polling_reads_every_point_in_one_request_with_source_times(
    server: tuple[SimulatedOpcUaDevice, dict[str, float]],
) -> None:
    sim, values = server
    values.update(
        {
            "power": 1500.5,
            "energy": 12_345_678.0,
            "oil_temp": 65.25,
            "taps": 4_000_000_000,
            "last_tap": 2**40,
            "running": 1,
        }
    )
    await sim.publish(T0)
    points = [
        *POINTS,
        {"id": "taps", "node": node("DEV", "TapCount"), "unit": "1"},
        {"id": "last_tap", "node": node("DEV", "LastTap_ms"), "unit": "ms"},
        {"id": "running", "node": node("DEV", "Running"), "unit": "1"},
    ]
    driver = driver_for(sim, points, mode="poll")
    await driver.connect()
    assert driver.subscribed_points == []
    before = driver.metrics.requests
    readings = latest(await driver.read())
    assert driver.metrics.requests - before == 1, "one Read service call for all points"
    await driver.close()
    assert {k: (r.value, r.unit, r.quality, r.source_time_ns) for k, r in readings.items()} == {
        "power": (1500.5, "kW", Quality.GOOD, T0),
        "energy": (12_345.678, "kWh", Quality.GOOD, T0),
        "oil_temp": (65.25, "degC", Quality.GOOD, T0),
        "taps": (4_000_000_000.0, "1", Quality.GOOD, T0),
        "last_tap": (float(2**40), "ms", Quality.GOOD, T0),
        "running": (1.0, "1", Quality.GOOD, T0),
    }


async def test_reads_are_split_at_the_servers_max_nodes_per_read(sim: SimulatedOpcUaDevice) -> None:
    limit = ua.NodeId(ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead)
    advertised = await sim.server.get_node(limit).read_data_value()
    await sim.server.write_attribute_value(limit, ua.DataValue(ua.Variant(2, ua.VariantType.UInt32)))
    try:
        driver = driver_for(sim, mode="poll")
        await driver.connect()
        before = driver.metrics.requests
        readings = await driver.read()
        assert driver.metrics.requests - before == 2, "3 nodes at 2 per Read"
        await driver.close()
    finally:
        await sim.server.write_attribute_value(limit, advertised)
    assert [r.value for r in readings] == [1.0, 0.002, 3.0]


async def test_subscription_delivers_every_queued_change_without_read_calls(
    server: tuple[SimulatedOpcUaDevice, dict[str, float]],
) -> None:
    sim, values = server
    values.update({"power": 10.0, "energy": 1000.0, "oil_temp": 50.0})
    await sim.publish(T0)
    points = [{**POINTS[0], "queue_size": 5}, *POINTS[1:]]
    seen: list[Reading] = []
    driver = driver_for(sim, points, mode="subscribe", scan_interval_s=0.2)
    await driver.connect()
    assert driver.subscribed_points == ["power", "energy", "oil_temp"]
    after_connect = driver.metrics.requests
    seen += await driver.read()
    for step in range(1, 4):  # three changes, faster than the scan
        values["power"] = 10.0 + step
        await sim.publish(T0 + step * 1_000_000)

    async def third_change_arrived() -> bool:
        seen.extend(await driver.read())
        return any(r.point == "power" and r.value == 13.0 for r in seen)

    await eventually(third_change_arrived, "the third power change", within_s=10)
    unchanged = await driver.read()
    await driver.close()
    assert driver.metrics.requests == after_connect, "subscribed points cost no Read calls"
    power = [(r.value, r.source_time_ns) for r in seen if r.point == "power"]
    for step in range(1, 4):
        assert (10.0 + step, T0 + step * 1_000_000) in power, "each queued change is delivered"
    # with nothing new, a scan repeats the last known value with its own source time
    assert (latest(unchanged)["power"].value, latest(unchanged)["power"].source_time_ns) == (13.0, T0 + 3_000_000)


async def test_server_deadband_filters_small_changes(server: tuple[SimulatedOpcUaDevice, dict[str, float]]) -> None:
    sim, values = server
    values.update({"power": 100.0})
    await sim.publish(T0)
    points = [{**POINTS[0], "server_deadband": 5.0, "queue_size": 10}]
    seen: list[Reading] = []
    driver = driver_for(sim, points, mode="subscribe", scan_interval_s=0.2)
    await driver.connect()
    for step, value in enumerate([102.0, 104.0, 110.0], start=1):
        values["power"] = value
        await sim.publish(T0 + step * 1_000_000)

    async def big_change_arrived() -> bool:
        seen.extend(await driver.read())
        return any(r.value == 110.0 for r in seen)

    await eventually(big_change_arrived, "the change beyond the deadband", within_s=10)
    await driver.close()
    assert {r.value for r in seen} == {100.0, 110.0}, "changes within 5 kW of the last reported are not sent"


async def test_status_codes_become_quality_with_the_status_name(sim: SimulatedOpcUaDevice) -> None:
    for mode in ("poll", "subscribe"):
        await write(sim, "P_kW", 7.5, ua.StatusCodes.UncertainLastUsableValue, T0 + 1000)
        await write(sim, "E_kWh", None, ua.StatusCodes.BadSensorFailure, T0 + 2000)
        driver = driver_for(sim, mode=mode)
        await driver.connect()
        readings = latest(await driver.read())
        await driver.close()
        assert (readings["power"].value, readings["power"].quality, readings["power"].reason) == (
            7.5,
            Quality.UNCERTAIN,
            "UncertainLastUsableValue",
        ), mode
        assert readings["power"].source_time_ns == T0 + 1000
        energy = readings["energy"]
        assert (energy.value, energy.quality, energy.reason) == (None, Quality.BAD, "BadSensorFailure"), mode
        assert readings["oil_temp"].quality is Quality.GOOD


async def test_a_value_sent_with_a_bad_status_is_dropped(sim: SimulatedOpcUaDevice) -> None:
    """Some servers send a failed sensor's 0.0 with BadSensorFailure (the simulator's `with_value`
    puts both on the wire): the reading is BAD without a number; an Uncertain one keeps its value."""
    sim.faults.bad_status[("", "power")] = (ua.StatusCodes.BadSensorFailure, True)
    sim.faults.bad_status[("", "energy")] = (ua.StatusCodes.UncertainSubstituteValue, True)
    try:
        await sim.publish(T0 + 3000)
        for mode in ("poll", "subscribe"):
            driver = driver_for(sim, mode=mode)
            await driver.connect()
            readings = latest(await driver.read())
            await driver.close()
            power, energy = readings["power"], readings["energy"]
            assert (power.value, power.quality, power.reason) == (None, Quality.BAD, "BadSensorFailure"), mode
            assert (energy.value, energy.quality, energy.reason) == (
                0.002,
                Quality.UNCERTAIN,
                "UncertainSubstituteValue",
            )
    finally:
        sim.faults.bad_status.clear()


@pytest.mark.parametrize("one_pass", [True, False], ids=["read-from-encoding", "asyncua-objects"])
async def test_good_bad_uncertain_and_non_numbers_read_from_the_encoding_as_from_asyncuas_objects(
    sim: SimulatedOpcUaDevice, monkeypatch: pytest.MonkeyPatch, one_pass: bool
) -> None:
    """The driver reads Read responses (and notifications) from their encoding where asyncua's hooks
    are installed, and through asyncua's objects where not (another asyncua release): the same
    readings either way. A string among the numbers is decoded by asyncua on its own and the values
    after it are still read."""
    decoded: list[int] = []

    def counted(data):  # the Read responses read from their encoding
        values = real_results(data)
        decoded.append(len(values))
        return values

    real_results = reads.results
    monkeypatch.setattr(reads, "results", counted)
    if not one_pass:
        monkeypatch.setattr(asyncua_hooks, "install", lambda: False)
    sim.faults.bad_status[("", "power")] = (ua.StatusCodes.BadSensorFailure, True)  # Bad, 0.0 sent with it
    sim.faults.bad_status[("", "energy")] = (ua.StatusCodes.UncertainSubstituteValue, True)
    points = [
        *POINTS,
        {"id": "taps", "node": node("DEV", "TapCount"), "unit": "1"},
        {"id": "last_tap", "node": node("DEV", "LastTap_ms"), "unit": "ms"},
    ]
    try:
        await sim.publish(T0 + 5000)
        # a string where a Float belongs: stored as it is (asyncua's write_attribute_value refuses it)
        idx = await sim.server.get_namespace_index(NAMESPACE_URI)
        warm = ua.DataValue(ua.Variant("warm", ua.VariantType.String), SourceTimestamp=ns_to_datetime(T0 + 6000))
        await sim._write_keeping_the_value(ua.NodeId(f"{sim.folder}.T_oil", idx), warm)
        for mode in ("poll", "subscribe"):
            driver = driver_for(sim, points, mode=mode)
            await driver.connect()
            readings = latest(await driver.read())
            await driver.close()
            got = {k: (r.value, r.quality, r.reason, r.source_time_ns) for k, r in readings.items()}
            assert got == {
                "power": (None, Quality.BAD, "BadSensorFailure", T0 + 5000),
                "energy": (0.002, Quality.UNCERTAIN, "UncertainSubstituteValue", T0 + 5000),
                "oil_temp": (None, Quality.BAD, "config_error: not a number (str)", T0 + 6000),
                "taps": (0.0, Quality.GOOD, None, T0 + 5000),
                "last_tap": (0.0, Quality.GOOD, None, T0 + 5000),
            }, mode
    finally:
        sim.faults.bad_status.clear()
    # poll: the seed read and the scan; subscribe: the seed read
    assert decoded == ([5, 5, 5] if one_pass else [])


async def test_refused_items_are_polled_in_auto_mode_and_bad_in_subscribe_mode(
    sim: SimulatedOpcUaDevice,
) -> None:
    points = [
        POINTS[0],
        {"id": "missing", "node": node("DEV", "No_such_node"), "unit": "kW"},
        {"id": "typo", "node": "nsu=urn:ferrogate:simulatr;s=DEV.P_kW", "unit": "kW"},
    ]
    auto = driver_for(sim, points, mode="auto")
    await auto.connect()
    auto_readings = latest(await auto.read())
    assert auto.subscribed_points == ["power"]
    await auto.close()
    forced = driver_for(sim, points, mode="subscribe")
    await forced.connect()
    forced_readings = latest(await forced.read())
    await forced.close()
    assert auto_readings["power"].value == 1.0
    assert (auto_readings["missing"].quality, auto_readings["missing"].reason) == (Quality.BAD, "BadNodeIdUnknown")
    assert forced_readings["power"].value == 1.0
    assert forced_readings["missing"].reason == "monitored item refused: BadNodeIdUnknown"
    for readings in (auto_readings, forced_readings):  # a wrong namespace URI spoils only its own point
        typo = readings["typo"]
        assert (typo.quality, typo.reason) == (
            Quality.BAD,
            "config_error: the server has no namespace urn:ferrogate:simulatr",
        )


async def test_a_dead_server_gives_bad_readings_and_connect_fails_with_the_reason() -> None:
    sim = await start_opcua(SPACE, dict(START))
    await sim.publish(T0)
    driver = driver_for(sim, mode="poll", timeout_s=1.0)
    await driver.connect()
    assert (await driver.read())[0].quality is Quality.GOOD
    await sim.stop()
    readings = await driver.read()
    assert all(r.quality is Quality.BAD and r.reason.startswith(("comm_error", "timeout")) for r in readings)
    try:
        await driver.connect()
    except (OSError, TimeoutError, ua.UaError):
        pass
    else:
        raise AssertionError("connect to a stopped server must fail")
    assert all(r.reason == "comm_error: not connected" for r in await driver.read())

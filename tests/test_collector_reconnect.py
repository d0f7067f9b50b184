"""A device drops off the network and comes back: the gap is published as BAD readings, the
status goes offline and online again, values flow again (for OPC UA through a re-created
subscription), and no task is left behind."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ferrogate.gateway.collect import Collector
from ferrogate.gateway.config import PlantConfig
from ferrogate.gateway.reading import Quality, ScanBatch
from ferrogate.simulators.opcua_server import AddressSpace, Variable
from ferrogate.simulators.registers import Register, RegisterMap
from tests.field_devices import modbus_device, node, opcua_device, plant, start_modbus, start_opcua
from tests.waiting import eventually

METER = RegisterMap("meter", (Register(0, "float32", "power", "kW"), Register(2, "uint32", "energy", "kWh")))
PLC = AddressSpace("plc", (Variable("P_kW", "power", "kW"), Variable("E_kWh", "energy", "kWh")))


def server_side(task: asyncio.Task) -> bool:
    """Tasks of the simulator servers running in this loop (their sessions come and go)."""
    code = getattr(task.get_coro(), "cr_code", None)
    filename = code.co_filename if code is not None else ""
    return "/asyncua/server/" in filename or "/pymodbus/server/" in filename


def client_tasks() -> int:
    return sum(not server_side(t) for t in asyncio.all_tasks())


def good(batch: ScanBatch) -> bool:
    return all(r.quality is Quality.GOOD for r in batch.readings)


async def drop_and_return(
    p: PlantConfig,
    device_id: str,
    go_away: Callable[[], Awaitable[None]],
    come_back: Callable[[], Awaitable[None]],
    new_power: Callable[[], Awaitable[None]],
) -> tuple[list[ScanBatch], list[bool], Collector]:
    """Run a collector while the device goes away and returns; the batches and status changes seen."""
    batches: list[ScanBatch] = []
    statuses: list[bool] = []
    collector = Collector(p, batches.append, on_status=lambda device, online: statuses.append(online))
    m = collector.metrics.device(device_id)
    tasks_before = asyncio.all_tasks()
    task = asyncio.create_task(collector.run())
    try:

        async def flowing() -> bool:
            return bool(batches) and good(batches[-1])

        await eventually(flowing, "good readings", within_s=20)
        await go_away()
        tasks_away = []
        for failures in (3, 6):

            async def failed_attempts(n: int = failures) -> bool:
                return m.connect_failures >= n

            await eventually(failed_attempts, f"{failures} failed reconnects", within_s=20)
            tasks_away.append(client_tasks())
        await new_power()
        await come_back()

        async def flowing_again() -> bool:
            return any(r.point == "power" and r.value == 777.0 for r in batches[-1].readings) and good(batches[-1])

        await eventually(flowing_again, "the new value after the device came back", within_s=20)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert tasks_away[1] == tasks_away[0], "failed reconnects must not leave tasks behind"
    leftover = [t for t in asyncio.all_tasks() - tasks_before if not t.done() and not server_side(t)]
    assert leftover == [], f"tasks left running: {leftover}"
    return batches, statuses, collector


def check_gap(batches: list[ScanBatch], statuses: list[bool], collector: Collector, device_id: str) -> None:
    first_bad = next(i for i, b in enumerate(batches) if not good(b))
    back = next(i for i in range(first_bad, len(batches)) if good(batches[i]))
    gap = batches[first_bad:back]
    assert len(gap) >= 3, "every scan of the outage is published"
    for batch in gap:
        assert [r.point for r in batch.readings] == ["power", "energy"]
        for r in batch.readings:
            assert (r.quality, r.value) == (Quality.BAD, None)
            assert r.reason is not None and r.reason.startswith(("comm_error", "timeout")), r.reason
    assert all(good(b) for b in batches[:first_bad]) and all(good(b) for b in batches[back:])
    assert [b.seq for b in batches] == list(range(1, len(batches) + 1))
    assert statuses == [True, False, True]
    m = collector.metrics.devices[device_id]
    assert (m.online, m.reconnects) == (True, 1)
    assert m.errors.get("comm_error", 0) + m.errors.get("timeout", 0) >= 2 * len(gap)


async def test_modbus_device_drops_and_comes_back() -> None:
    values = {"power": 100.0, "energy": 5000}
    sim = await start_modbus(METER, values)
    points = [{"id": "power", "address": 0, "type": "float32", "unit": "kW"}]
    points.append({"id": "energy", "address": 2, "type": "uint32", "unit": "kWh"})
    p = plant(modbus_device("meter", sim.port, points, scan_interval_s=0.2, timeout_s=0.5, reconnect_max_s=0.4))

    async def new_power() -> None:
        values["power"] = 777.0

    try:
        batches, statuses, collector = await drop_and_return(p, "meter", sim.refuse, sim.accept, new_power)
    finally:
        await sim.stop()
    check_gap(batches, statuses, collector, "meter")


async def test_opcua_subscription_is_recreated_after_the_server_comes_back() -> None:
    values = {"power": 100.0, "energy": 5000.0}
    sim = await start_opcua(PLC, values)
    points = [
        {"id": "power", "node": node("DEV", "P_kW"), "unit": "kW"},
        {"id": "energy", "node": node("DEV", "E_kWh"), "unit": "kWh"},
    ]
    options = {"mode": "subscribe", "scan_interval_s": 0.2, "timeout_s": 1.0, "reconnect_max_s": 0.4}
    p = plant(opcua_device("plc", sim.endpoint, points, **options))
    t0 = 1_795_000_000_000_000_000
    await sim.publish(t0)

    async def new_power() -> None:
        values["power"] = 777.0
        await sim.publish(t0 + 60_000_000_000)

    try:
        batches, statuses, collector = await drop_and_return(p, "plc", sim.refuse, sim.accept, new_power)
        driver = collector.scanners[0].driver
        assert driver.subscribed_points == ["power", "energy"], "the new session subscribed again"
    finally:
        await sim.stop()
    check_gap(batches, statuses, collector, "plc")
    last = {r.point: r for r in batches[-1].readings}
    assert last["power"].source_time_ns == t0 + 60_000_000_000

"""The collector's scanning rules: scan classes, slot alignment and overruns, report by exception
with full refresh, device status and metrics; against the Modbus simulator over loopback."""

from __future__ import annotations

import asyncio
import time

import pytest

from ferrogate.gateway.collect import Collector, DeviceScanner, first_slot, next_slot
from ferrogate.gateway.metrics import GatewayMetrics
from ferrogate.gateway.reading import Quality, Reading, ScanBatch
from ferrogate.simulators.faults import DeviceFaults
from ferrogate.simulators.registers import Register, RegisterMap
from tests.field_devices import modbus_device, plant, start_modbus
from tests.waiting import eventually

METER = RegisterMap(
    "meter",
    (
        Register(0, "float32", "power", "kW"),
        Register(2, "uint32", "energy", "kWh"),
        Register(10, "float32", "voltage", "kV"),
        Register(20, "float32", "oil_temp", "degC"),
    ),
)
POINTS = [
    {"id": "power", "address": 0, "type": "float32", "unit": "kW", "report_deadband": 5.0},
    {"id": "energy", "address": 2, "type": "uint32", "unit": "kWh"},
    {"id": "voltage", "address": 10, "type": "float32", "unit": "kV", "scan_interval_s": 0.2},
    {"id": "oil_temp", "address": 20, "type": "float32", "unit": "degC", "scan_interval_s": 10},
]


@pytest.mark.parametrize(
    ("slot", "now", "expected"),
    [
        (10, 10.5, (11, 0)),  # finished within its slot: the next slot, nothing skipped
        (10, 11.0, (12, 1)),  # finished exactly as slot 11 began: slot 11 is lost
        (10, 11.3, (12, 1)),
        (10, 13.9, (14, 3)),  # slots 11, 12 and 13 started meanwhile: skipped, not queued
        (10, 9.99, (11, 0)),  # a clock that woke a hair early never scans one slot twice
    ],
)
def test_next_slot_skips_and_counts_overruns(slot: int, now: float, expected: tuple[int, int]) -> None:
    assert next_slot(slot, now, 1.0) == expected
    assert next_slot(slot, now * 0.2, 0.2) == expected, "the same in 200 ms slots"


def test_first_slot_is_the_next_wall_clock_multiple() -> None:
    assert first_slot(1000.3, 1.0) == 1001
    assert first_slot(1000.0, 0.2) == 5001
    assert first_slot(1_795_000_007.0, 10.0) * 10.0 == 1_795_000_010.0


async def test_points_are_grouped_into_scan_classes_each_with_its_own_reads() -> None:
    values = {"power": 100.0, "energy": 5000, "voltage": 35.0, "oil_temp": 60.0}
    sim = await start_modbus(METER, values)
    try:
        p = plant(modbus_device("meter", sim.port, POINTS, scan_interval_s=1.0))
        scanner = DeviceScanner(p, "meter", lambda batch: None)
        assert [(c.interval_s, [pid for pid, _ in c.points]) for c in scanner.classes] == [
            (0.2, ["voltage"]),
            (1.0, ["power", "energy"]),
            (10.0, ["oil_temp"]),
        ]
        batches = [await scanner.scan_once(c) for c in scanner.classes]
        await scanner.driver.close()
    finally:
        await sim.stop()
    assert [[r.point for r in b.readings] for b in batches] == [["voltage"], ["power", "energy"], ["oil_temp"]]
    assert [b.seq for b in batches] == [1, 2, 3], "one sequence per device across its classes"
    assert sim.requests == 3, "each class reads only its own registers"
    assert all(r.quality is Quality.GOOD for b in batches for r in b.readings)


async def test_report_by_exception_with_periodic_full_refresh() -> None:
    values = {"power": 100.0, "energy": 5000, "voltage": 35.0, "oil_temp": 60.0}
    faults = DeviceFaults()
    sim = await start_modbus(METER, values, faults=faults)
    try:
        p = plant(modbus_device("meter", sim.port, POINTS[:2], refresh_s=3600))
        scanner = DeviceScanner(p, "meter", lambda batch: None)
        [cls] = scanner.classes

        async def reported() -> list[tuple[str, float | None, Quality]]:
            batch = await scanner.scan_once(cls)
            return [(r.point, r.value, r.quality) for r in batch.readings]

        assert await reported() == [("power", 100.0, Quality.GOOD), ("energy", 5000.0, Quality.GOOD)]
        values["power"] = 104.0  # within the 5 kW deadband of the last reported value
        assert await reported() == [("energy", 5000.0, Quality.GOOD)]
        values["power"] = 108.0  # 8 kW from the last reported 100: out of the band
        assert await reported() == [("power", 108.0, Quality.GOOD), ("energy", 5000.0, Quality.GOOD)]
        faults.exception_code = 4  # quality changes are always reported
        assert [(pid, q) for pid, _, q in await reported()] == [("power", Quality.BAD), ("energy", Quality.BAD)]
        assert [pid for pid, _, _ in await reported()] == ["energy"], "still bad: nothing new for power"
        faults.exception_code = None
        assert await reported() == [("power", 108.0, Quality.GOOD), ("energy", 5000.0, Quality.GOOD)]
        values["power"] = 110.0
        assert [pid for pid, _, _ in await reported()] == ["energy"]
        cls.next_refresh = 0.0  # the refresh is due: every point goes out
        assert await reported() == [("power", 110.0, Quality.GOOD), ("energy", 5000.0, Quality.GOOD)]
        assert scanner.metrics.suppressed == 3
        await scanner.driver.close()
    finally:
        await sim.stop()


async def test_overruns_are_counted_and_scans_do_not_pile_up() -> None:
    registers = RegisterMap("slow", tuple(Register(i, "uint16", f"r{i}", "1") for i in range(0, 40, 10)))
    sim = await start_modbus(registers, {f"r{i}": i for i in range(0, 40, 10)})
    points = [{"id": f"r{i}", "address": i, "unit": "1"} for i in range(0, 40, 10)]
    # four requests 0.1 s apart make every scan longer than its 0.2 s interval
    p = plant(modbus_device("slow", sim.port, points, scan_interval_s=0.2, max_gap=0, min_request_interval_s=0.1))
    batches: list[ScanBatch] = []
    scanner = DeviceScanner(p, "slow", batches.append)
    task = asyncio.create_task(scanner.run())
    try:

        async def three_scans() -> bool:
            return len(batches) >= 3

        await eventually(three_scans, "three scans", within_s=10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await sim.stop()
    m = scanner.metrics
    # every scan took at least 0.3 s (three 0.1 s gaps), so it ran into the next 0.2 s slot,
    # which was skipped and counted rather than scanned late
    assert m.scans >= 3
    assert m.overruns >= m.scans
    assert m.scan_latency.count == m.scans and m.scan_latency.max_s >= 0.3
    # scans run one after another: the last, cancelled one may have sent some of its 4 requests
    assert 4 * m.scans <= sim.requests < 4 * (m.scans + 1)
    assert all(r.quality is Quality.GOOD for b in batches for r in b.readings)


async def test_status_callback_and_metrics_of_a_device_that_is_not_there() -> None:
    from ferrogate.gateway.services import free_port

    port = free_port()  # nothing listens here
    p = plant(modbus_device("ghost", port, [POINTS[1]], timeout_s=0.5, reconnect_max_s=0.2))
    metrics = GatewayMetrics()
    statuses: list[tuple[str, bool]] = []
    scanner = DeviceScanner(
        p,
        "ghost",
        lambda b: None,
        metrics=metrics.device("ghost", "modbus"),
        on_status=lambda d, o: statuses.append((d, o)),
    )
    batch = await scanner.scan_once()
    [reading] = batch.readings
    assert (reading.quality, reading.value) == (Quality.BAD, None)
    assert reading.reason == f"comm_error: connect: ConnectionError: cannot connect to 127.0.0.1:{port}"
    assert statuses == [("ghost", False)]
    again = await scanner.scan_once()  # within the backoff: no new attempt, the same reason
    assert again.readings[0].reason == reading.reason
    m = metrics.devices["ghost"]
    assert (m.online, m.scans, m.connect_failures, m.errors) == (False, 2, 1, {"comm_error": 2})
    # now the device appears on that port
    values = {"power": 1.0, "energy": 2, "voltage": 3.0, "oil_temp": 4.0}
    sim = await start_modbus(METER, values, port=port)
    try:

        async def online() -> bool:
            batch = await scanner.scan_once()
            return batch.readings[0].quality is Quality.GOOD

        await eventually(online, "the device to come online", within_s=10)
        await scanner.driver.close()
    finally:
        await sim.stop()
    assert statuses == [("ghost", False), ("ghost", True)]
    assert (m.online, m.reconnects) == (True, 0), "a first connection is not a reconnect"
    text = metrics.render_prometheus()
    assert 'ferrogate_device_online{device="ghost"} 1' in text
    assert 'ferrogate_device_errors_total{device="ghost",reason="comm_error"}' in text


async def test_a_dead_device_never_stalls_the_others() -> None:
    faults = DeviceFaults()
    hung = await start_modbus(METER, {"power": 1.0, "energy": 2, "voltage": 3.0, "oil_temp": 4.0}, faults=faults)
    healthy = await start_modbus(METER, {"power": 5.0, "energy": 6, "voltage": 7.0, "oil_temp": 8.0})
    faults.latency_s = 5.0  # accepts connections, never answers in time
    points = POINTS[:2]
    p = plant(
        modbus_device("hung", hung.port, points, scan_interval_s=0.2, timeout_s=0.3, retries=0),
        modbus_device("healthy", healthy.port, points, scan_interval_s=0.2),
    )
    batches: list[ScanBatch] = []
    collector = Collector(p, batches.append)
    task = asyncio.create_task(collector.run())
    try:

        async def healthy_scanned_ten_times() -> bool:
            return sum(b.device == "healthy" for b in batches) >= 10

        await eventually(healthy_scanned_ten_times, "ten scans of the healthy device", within_s=20)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        faults.latency_s = 0.0
        await hung.stop()
        await healthy.stop()
    m = collector.metrics.devices
    assert m["healthy"].overruns == 0
    assert all(r.quality is Quality.GOOD for b in batches if b.device == "healthy" for r in b.readings)
    hung_readings = [r for b in batches if b.device == "hung" for r in b.readings]
    assert hung_readings and all(r.quality is Quality.BAD for r in hung_readings)
    assert {r.reason.split(":")[0] for r in hung_readings if r.reason} == {"timeout"}
    assert not m["hung"].online


async def test_scans_go_on_when_the_wall_clock_steps_back_and_forth() -> None:
    """The gateway's wall clock steps back an hour (NTP correcting a bad clock, an operator) and then
    an hour ahead again: scans keep coming every slot, and the hour jumped over is no overrun."""
    sim = await start_modbus(METER, {"power": 100.0, "energy": 5000, "voltage": 35.0, "oil_temp": 60.0})
    offset = [0.0]
    batches: list[ScanBatch] = []
    p = plant(modbus_device("meter", sim.port, POINTS[1:2], scan_interval_s=0.2))
    scanner = DeviceScanner(p, "meter", batches.append, wall=lambda: time.time() + offset[0])
    task = asyncio.create_task(scanner.run())

    async def scans(count: int, what: str) -> None:
        wanted = len(batches) + count

        async def enough() -> bool:
            return len(batches) >= wanted

        await eventually(enough, f"{count} more scans {what}", within_s=30)

    try:
        await scans(5, "at the start")
        offset[0] = -3600.0
        await scans(10, "after the wall clock stepped back an hour")
        offset[0] = 0.0
        await scans(10, "after it stepped an hour ahead again")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await sim.stop()
    assert scanner.metrics.overruns < 5, scanner.metrics.overruns
    assert all(r.quality is Quality.GOOD for b in batches for r in b.readings)


async def test_a_scan_the_device_answered_goes_out_though_a_cancellation_came_with_its_answer() -> None:
    """On Python 3.11 `asyncio.wait_for` (pymodbus awaits its answers with it) returns the answer
    when a `Task.cancel()` arrives in the same loop turn, and swallows the CancelledError. The
    scanner raises that cancellation again, but only after the scan it read went to the sink: the
    device served it (a full run under load lost the last read of a meter this way when the test
    stopped collecting)."""
    sim = await start_modbus(METER, {"power": 100.0, "energy": 5000, "voltage": 35.0, "oil_temp": 60.0})
    batches: list[ScanBatch] = []
    p = plant(modbus_device("meter", sim.port, POINTS[1:2], scan_interval_s=0.2))
    scanner = DeviceScanner(p, "meter", batches.append)
    read = scanner.driver.read

    async def read_with_a_cancellation_in_its_answers_turn(*args: object) -> list[Reading]:
        readings = await read(*args)
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        try:  # what 3.11's wait_for does: take the CancelledError and return the answer
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            pass
        return readings

    scanner.driver.read = read_with_a_cancellation_in_its_answers_turn  # type: ignore[method-assign]
    try:
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(scanner.run_class(scanner.classes[0]), 30)
    finally:
        await scanner.driver.close()
        await sim.stop()
    assert sim.requests == 1, "one scan, then the scanner stopped"
    assert [[(r.point, r.quality, r.value) for r in b.readings] for b in batches] == [[("energy", Quality.GOOD, 5000)]]

"""Delivery under faults, provoked for real: the broker, the database, the network and each gateway
role (separate processes) killed, stopped, cut or answering 503 while a small Modbus plant is scanned
every second. After each fault, every scan the collector made is in InfluxDB exactly once: the test
counts, per device, point and meter-clock time, the readings lost, doubled, changed and never served,
prints the counts and asserts they are all 0 (tests/reliability/delivery_stack.py).

The case that used to lose data: the broker killed (SIGKILL) while ingest is down. The collector now
keeps each batch until ingest's durable mark passes it (gateway/delivery.py), so it sends again what
the broker lost; with `ack_from_ingest: false` (the old behaviour) the same fault loses readings,
which the control case shows.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from ferrogate.gateway.payload import decode_batch
from ferrogate.gateway.reading import Quality
from tests.reliability.delivery_stack import DeliveryStack, kill_service
from tests.waiting import eventually

FAULT_SCANS = 4  # plant time (1 s scans) each fault lasts


async def run_stack(tmp_path: Path, site: str, **options: object) -> DeliveryStack:
    collector_mqtt = options.pop("collector_mqtt", None)
    stack = DeliveryStack(tmp_path, site, **options)  # type: ignore[arg-type]
    try:
        await stack.start(collector_mqtt)  # type: ignore[arg-type]
        await stack.until_flowing()
    except BaseException:
        print(stack.logs())
        await stack.close()
        raise
    return stack


async def test_broker_killed_while_ingest_is_down_loses_nothing(tmp_path: Path) -> None:
    stack = await run_stack(tmp_path, "fault_a")
    try:
        assert stack.broker is not None
        await stack.ingest.kill()
        await stack.until_scanned(FAULT_SCANS)  # the broker queues them for ingest, in memory

        # the broker acknowledged them, but the collector keeps them: nothing is durable yet (the last
        # scan's batch is committed within the publisher's 20 ms hand-over window)
        async def kept() -> bool:
            return stack.spool_rows() >= FAULT_SCANS * len(stack.meters)

        await eventually(kept, "the collector to keep every batch since ingest went down", 30)
        held = stack.spool_rows()
        await kill_service(stack.broker)
        await stack.until_scanned(FAULT_SCANS)
        await asyncio.to_thread(stack.broker.process.start)
        stack.ingest.start()
        await stack.until_flowing()
        await stack.verify_exactly_once("broker SIGKILL while ingest down")
        print(f"[broker SIGKILL while ingest down] batches the collector held at the kill: {held}")
    finally:
        await stack.close()


async def test_control_without_the_durable_ack_the_same_fault_loses_readings(tmp_path: Path) -> None:
    """The check above can fail: deleting on the broker's PUBACK (the old behaviour), the batches the
    broker held only in memory for the absent ingest worker are gone with it."""
    stack = await run_stack(tmp_path, "fault_a0", collector_mqtt={"ack_from_ingest": False})
    try:
        assert stack.broker is not None
        await stack.ingest.kill()
        await stack.until_scanned(FAULT_SCANS)
        await kill_service(stack.broker)
        await asyncio.to_thread(stack.broker.process.start)
        stack.ingest.start()
        await stack.until_flowing()
        figures = await stack.verify("control: broker SIGKILL while ingest down, ack on PUBACK", within_s=20)
        assert figures["lost"] > 0 and figures["duplicates"] == 0
    finally:
        await stack.close()


def failures_committed(stack: DeliveryStack, spool: Path) -> set[str]:
    """Devices whose all-bad scan (a paused meter) is in the collector's spool: every read the meter
    served before it was committed there (each device is scanned in sequence)."""
    try:
        db = sqlite3.connect(f"file:{spool}?mode=ro", uri=True)
        try:
            payloads = [row[0] for row in db.execute("SELECT payload FROM mqtt_outbox WHERE topic LIKE '%telemetry%'")]
        finally:
            db.close()
    except sqlite3.OperationalError:
        return set()
    done = set()
    for payload in payloads:
        batch = decode_batch(payload)
        if batch.readings and all(r.quality is Quality.BAD for r in batch.readings):
            done.add(batch.device)
    return done


async def bad_stored(stack: DeliveryStack) -> set[str]:
    assert stack.client is not None
    series = await stack.client.query(
        f"SELECT count(quality) FROM reading WHERE site='{stack.site}' AND quality='bad' GROUP BY device"
    )
    return {s.tags["device"] for s in series if s.values and s.values[0][1]}


async def test_each_role_killed_and_restarted_in_turn_loses_nothing(tmp_path: Path) -> None:
    stack = await run_stack(tmp_path, "fault_b")
    try:
        for role in ("ingest", "energy,api"):
            await stack.roles[role].kill()
            await stack.until_scanned(FAULT_SCANS)
            stack.roles[role].start()
            await stack.until_flowing()
        # the collector: a read the meter answered but the killed process had not committed yet is
        # beyond saving (microseconds), so the meters pause until every read they served is committed
        # to the spool (or already in InfluxDB); the kill then hits batches not yet confirmed
        for meter in stack.meters:
            meter.pause()
        devices = {m.device_id for m in stack.meters}

        async def committed() -> bool:
            return failures_committed(stack, stack.collector_spool_view) | await bad_stored(stack) >= devices

        await eventually(committed, "every served read committed to the collector's spool", 60)
        await stack.collect.kill()
        stack.resume_meters()
        stack.collect.start()
        await stack.until_flowing()
        await stack.verify_exactly_once("each role SIGKILLed and restarted in turn")
    finally:
        await stack.close()


async def test_energy_role_started_after_the_plant_derives_what_was_stored_before(tmp_path: Path) -> None:
    """A first start of the books (or one after they were down with no broker session kept) while
    the collector and ingest have been storing: the readings already in InfluxDB are derived too,
    not only those that arrive live."""
    stack = await run_stack(tmp_path, "fault_late", held_roles=("energy,api",))
    try:
        await stack.until_scanned(2 * FAULT_SCANS)
        stack.roles["energy,api"].start()
        await stack.until_flowing()
        await stack.verify_exactly_once("energy role started after the plant")
    finally:
        await stack.close()


@pytest.mark.parametrize("persistence_file", ["kept", "deleted"])
async def test_broker_stopped_and_restarted_loses_nothing(tmp_path: Path, persistence_file: str) -> None:
    stack = await run_stack(tmp_path, f"fault_c_{persistence_file}")
    try:
        assert stack.broker is not None
        await asyncio.to_thread(stack.broker.process.stop)
        database = stack.broker.directory / "mosquitto.db"
        if persistence_file == "deleted":
            assert database.exists()
            database.unlink()
        await stack.until_scanned(FAULT_SCANS)
        await asyncio.to_thread(stack.broker.process.start)
        await stack.until_flowing()
        # without the file the books' session and queue are gone too: they read back from InfluxDB
        # what was published before they subscribed again (gateway/energy/session_gaps.py)
        await stack.verify_exactly_once(f"broker stopped and restarted, persistence file {persistence_file}")
    finally:
        await stack.close()


async def test_influxd_killed_and_restarted_loses_nothing(tmp_path: Path) -> None:
    stack = await run_stack(tmp_path, "fault_d")
    try:
        assert stack.database is not None
        await kill_service(stack.database)
        await stack.until_scanned(FAULT_SCANS)
        await asyncio.to_thread(stack.database.process.start)
        await stack.until_flowing()
        await stack.verify_exactly_once("influxd SIGKILL and restart")
    finally:
        await stack.close()


async def test_influxdb_answering_503_loses_nothing(tmp_path: Path) -> None:
    stack = await run_stack(tmp_path, "fault_d5", flaky_database=True)
    try:
        assert stack.flaky is not None
        stack.flaky.failing = True
        await stack.until_scanned(FAULT_SCANS)
        flaky = stack.flaky

        async def refused() -> bool:
            return flaky.refused >= 2

        await eventually(refused, "ingest's writes refused with 503", 60)
        flaky.failing = False
        await stack.until_flowing()
        print(f"\n[InfluxDB 503] writes answered 503: {flaky.refused}")
        await stack.verify_exactly_once("InfluxDB answering 503")
    finally:
        await stack.close()


async def test_network_between_collector_and_broker_cut_loses_nothing(tmp_path: Path) -> None:
    stack = await run_stack(tmp_path, "fault_e", wan_relay=True)
    try:
        assert stack.relay is not None
        await stack.relay.cut()
        await stack.until_scanned(FAULT_SCANS)
        await stack.relay.restore()
        await stack.until_flowing()
        await stack.verify_exactly_once("network collector-broker cut")
    finally:
        await stack.close()


async def fill_until_refused(stack: DeliveryStack, role: str, disk: Path, spool: str) -> dict[str, float]:
    """Fill `disk` up while the plant runs, wait until the role's spool write is refused (counted in its
    /metrics) and FAULT_SCANS more scans; the role's spool metrics then."""
    assert stack.disks is not None
    process = stack.roles[role]
    label = f'{{role="{role}",spool="{spool}"}}'
    filled = await asyncio.to_thread(stack.disks.fill, disk)
    metrics: dict[str, float] = {}

    async def refused() -> bool:
        metrics.update(await process.metrics("ferrogate_spool_"))
        return metrics.get(f"ferrogate_spool_write_errors_total{label}", 0) > 0

    await eventually(refused, f"{role}'s spool write refused by its full disk", 60)
    await stack.until_scanned(FAULT_SCANS)
    metrics.update(await process.metrics("ferrogate_spool_"))
    figures = {k.split("{")[0].removeprefix("ferrogate_spool_"): v for k, v in metrics.items() if label in k}
    print(f"\n[disk full under {role}'s spool] filler: {filled} bytes, spool metrics: {figures}")
    assert process.running and process.starts == 1, f"{role} died on a full disk\n{process.tail()}"
    assert figures["held_entries"] > 0 and figures["dropped_total"] == 0, figures
    return figures


async def test_disk_full_under_the_spools_loses_nothing(tmp_path: Path) -> None:
    """The collector's disk, then ingest's (while InfluxDB answers 503, so ingest must spool), fill up
    for real (ENOSPC on a small tmpfs) while the plant runs, and are freed again: both processes keep
    running, say so in their log and /metrics, and every scan reaches InfluxDB exactly once."""
    stack = await run_stack(tmp_path, "fault_f", small_disks=True, flaky_database=True)
    try:
        assert stack.disks is not None and stack.flaky is not None
        # the collector holds in memory what its spool refuses, and publishes it once the disk takes it
        await fill_until_refused(stack, "collect", stack.collector_disk, "mqtt_outbox")
        stack.disks.free(stack.collector_disk)
        await stack.until_flowing()
        # ingest can neither write (503) nor spool: it acknowledges nothing, the broker and collector keep it
        stack.flaky.failing = True
        await fill_until_refused(stack, "ingest", stack.ingest_disk, "influx_outbox")
        stack.disks.free(stack.ingest_disk)
        stack.flaky.failing = False
        await stack.until_flowing()
        await stack.verify_exactly_once("disk full under the collector's spool, then under ingest's")
        for role in ("collect", "ingest"):
            log = stack.roles[role].log.read_text(errors="replace")
            assert "cannot be written" in log and "writes go through again" in log, stack.roles[role].tail()
    finally:
        await stack.close()

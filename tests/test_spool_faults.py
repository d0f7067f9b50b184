"""A spool whose disk refuses writes: SQLite's own "database or disk is full" (SQLITE_FULL, provoked
with `max_page_count`), a dead-letter file on /dev/full (ENOSPC). The collector holds what its spool
refuses in bounded memory and spools it, in order, once it can; ingest acknowledges nothing it could
not make durable. (ENOSPC on a real filesystem under the running roles: tests/reliability/.)"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from ferrogate.gateway.config import InfluxConfig
from ferrogate.gateway.deadletter import DeadLetters
from ferrogate.gateway.influx import InfluxError, InfluxV1Client
from ferrogate.gateway.ingest import InfluxWriter
from ferrogate.gateway.services import LOOPBACK, free_port
from ferrogate.gateway.spool import Spool
from ferrogate.gateway.spool_faults import MemoryOverflow, SpoolState, render_prometheus
from tests.waiting import eventually

PAYLOAD = 5000  # bytes: more than a page (4 KiB), so every entry needs new pages of the file


def fill_disk(spool: Spool) -> None:
    """The spool's file may grow no more: SQLite answers SQLITE_FULL as on a full disk."""
    db = spool._db  # the spool's own connection: max_page_count is per connection
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")


def free_disk(spool: Spool) -> None:
    spool._db.execute("PRAGMA max_page_count = 1073741823")


def entry(i: int) -> bytes:
    return f"{i:08d}".encode() * (PAYLOAD // 8)


def test_the_collector_holds_what_its_full_disk_refuses_and_spools_it_in_order(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path / "s.sqlite", "outbox", max_bytes=1 << 30)
    overflow = MemoryOverflow(spool, max_bytes=1 << 20)
    overflow.append("t", entry(0), 1)
    fill_disk(spool)
    with caplog.at_level(logging.ERROR):
        for i in range(1, 6):
            overflow.append("t", entry(i), 1)
    assert (spool.rows, len(overflow.held), overflow.faults.errors) == (1, 5, 5)
    # once, with the file and SQLite's error; then at most every FAULT_LOG_INTERVAL_S
    refused = [r.getMessage() for r in caplog.records if "cannot be written" in r.getMessage()]
    assert len(refused) == 1 and "database or disk is full" in refused[0] and "s.sqlite" in refused[0]
    assert not overflow.flush()
    free_disk(spool)
    overflow.append("t", entry(6), 1)  # the held ones first, then this one
    assert not overflow.held and overflow.dropped == 0
    assert [e.payload for e in spool.peek(100)] == [entry(i) for i in range(7)]
    assert not overflow.faults.failing
    text = render_prometheus([SpoolState("collect", spool, overflow.faults.errors, len(overflow.held), 0)])
    assert 'ferrogate_spool_write_errors_total{role="collect",spool="outbox"} 6' in text  # 5 appends, 1 flush
    assert 'ferrogate_spool_entries{role="collect",spool="outbox"} 7' in text
    spool.close()


@pytest.mark.parametrize("when_full", ["drop_oldest", "drop_newest"])
def test_memory_behind_a_full_disk_is_bounded_by_the_spool_policy(tmp_path: Path, when_full: str) -> None:
    spool = Spool(tmp_path / "s.sqlite", "outbox", max_bytes=1 << 30, when_full=when_full)
    overflow = MemoryOverflow(spool, max_bytes=3 * PAYLOAD)
    fill_disk(spool)
    for i in range(5):
        overflow.append("t", entry(i), 2)
    assert (len(overflow.held), overflow.dropped, overflow.dropped_items) == (3, 2, 4)
    kept = range(2, 5) if when_full == "drop_oldest" else range(3)
    assert [h.payload for h in overflow.held] == [entry(i) for i in kept]
    spool.close()


async def test_ingest_acknowledges_nothing_its_full_spool_refused(tmp_path: Path) -> None:
    # InfluxDB away (nothing listens on the port): every batch must go to the spool, whose disk is full
    config = InfluxConfig(
        url=f"http://{LOOPBACK}:{free_port()}", max_retries=0, flush_interval_s=0.05, retry_initial_s=0.05
    )
    spool = Spool(tmp_path / "ingest.sqlite", "influx_outbox", max_bytes=1 << 30)
    writer = InfluxWriter(config, InfluxV1Client(config), spool, DeadLetters(tmp_path / "dead.jsonl"))
    fill_disk(spool)
    acked: list[int] = []
    task = asyncio.create_task(writer.run())
    try:
        for i in range(3):
            writer.add([f'm,i={i} v="{"x" * PAYLOAD}" {i}'], lambda i=i: acked.append(i))

        async def refused() -> bool:
            return writer.faults.errors >= 2

        await eventually(refused, "the spool to refuse the batch twice")
        assert (acked, writer.pending, spool.rows) == ([], 3, 0)
        free_disk(spool)

        async def spooled() -> bool:
            return acked == [0, 1, 2]

        await eventually(spooled, "every message spooled and acknowledged, in order")
        assert spool.rows >= 1 and not writer.faults.failing
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await writer.sink.aclose()
        writer.close()


def test_a_dead_letter_the_disk_refuses_raises_and_is_not_counted_kept() -> None:
    letters = DeadLetters(Path("/dev/full"))  # every write: ENOSPC
    with pytest.raises(OSError, match="No space left"):
        letters.add(["m v=1 1"], InfluxError("field type conflict", 400, retryable=False), 0)
    assert (letters.batches, letters.write_errors) == (0, 1)

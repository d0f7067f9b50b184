"""What a spool keeps in memory costs what its payloads' lengths say, whoever made the bytes.

orjson returns bytes with several times their length allocated (a telemetry batch of 2,044 bytes
holds 16 KiB); the spool's in-memory tail and the memory behind a refusing disk keep right-sized
copies (issue 15). Measured with tracemalloc, which sees each allocation's real size."""

from __future__ import annotations

import gc
import logging
import tracemalloc
from pathlib import Path

import orjson
import pytest

from ferrogate.gateway.spool import CACHE_KIB, Spool
from ferrogate.gateway.spool_faults import MemoryOverflow
from tests.test_spool_faults import fill_disk

ENTRIES = 200
# a device scan as ferrogate/2 encodes it: 100 values (about 2 KB of JSON)
DOC = {"schema": "ferrogate/2", "device": "d000", "ids": [f"p{i:03d}" for i in range(100)], "v": list(range(100))}


def held_bytes_per_payload_byte(keep) -> float:
    """Memory still allocated, per payload byte, after `keep` took ENTRIES payloads fresh from
    orjson and the caller dropped its own references."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        payloads = [orjson.dumps(DOC) for _ in range(ENTRIES)]
        length = sum(map(len, payloads))
        holder = keep(payloads)
        del payloads
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert holder is not None
    return held / length


def test_orjson_over_allocates_so_the_checks_below_can_fail() -> None:
    # the bytes as orjson makes them, kept as they are: what the spool held before
    assert held_bytes_per_payload_byte(list) > 3


def test_the_tail_in_memory_holds_what_its_payloads_weigh() -> None:
    def keep(payloads: list[bytes]) -> Spool:
        spool = Spool(None, "outbox", max_bytes=1 << 30)
        spool.append_many([("t", p, 100, False) for p in payloads])
        assert len(spool._tail) == ENTRIES  # all of them stay in memory (under TAIL_MAX_BYTES)
        return spool

    assert held_bytes_per_payload_byte(keep) < 1.5


def test_entries_held_behind_a_refusing_disk_hold_what_they_weigh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # pytest would keep the logged error, whose traceback holds the caller's payloads
    caplog.set_level(logging.CRITICAL, logger="ferrogate.gateway.spool_faults")
    spool = Spool(tmp_path / "full.sqlite", "outbox", max_bytes=1 << 30)
    fill_disk(spool)  # SQLite's own SQLITE_FULL from here on

    def keep(payloads: list[bytes]) -> MemoryOverflow:
        overflow = MemoryOverflow(spool, max_bytes=1 << 30)
        overflow.append_many([("t", p, 100, False) for p in payloads])
        assert len(overflow.held) == ENTRIES and overflow.faults.errors == 1  # the disk refused them
        return overflow

    try:
        assert held_bytes_per_payload_byte(keep) < 1.5
    finally:
        spool.close()


def test_a_spool_file_keeps_a_small_page_cache(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite", "outbox", max_bytes=1 << 20)
    try:
        # negative: KiB (SQLite's default is -2000)
        assert spool._db.execute("PRAGMA cache_size").fetchone()[0] == -CACHE_KIB
    finally:
        spool.close()

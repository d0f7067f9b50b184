"""A durable, ordered outbox on SQLite (WAL): what cannot be delivered yet waits here.

Each entry is committed before `append` returns, so it survives a killed process (SIGKILL) with
`sync: normal` and also a power cut with `sync: full`. Entries come back in the order they went in
(`peek`) and leave only when the caller confirms delivery (`remove_through`), so a crash between
sending and confirming sends an entry twice, never zero times. Entry ids only grow (AUTOINCREMENT:
never reused, even after deletes) for the life of the file, whose random `epoch` tells a new file
(same path, ids from 1 again) from the old one. The outbox is bounded by the payload
bytes it holds; when full, the configured policy drops the oldest (or the newest) entries, and every
drop is counted and logged.

The newest committed entries are also kept in memory (up to TAIL_MAX_BYTES of payload), so that a
sender reading what was just appended (`peek` past what it sent) gets them without a query.
"""

from __future__ import annotations

import asyncio
import bisect
import fcntl
import logging
import os
import secrets
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import IO

from ferrogate.gateway.model_base import SpoolConfig

log = logging.getLogger(__name__)

MIB = 1 << 20
# a full spool logs its drops at most this often (seconds), with the running totals
DROP_LOG_INTERVAL_S = 60.0
# payload bytes of the newest entries kept in memory for `peek` (a sender's next window); older
# entries are read from the file
TAIL_MAX_BYTES = 1 * MIB  # a sender's window is max_inflight (100) entries
_ID = attrgetter("id")
# SQLite's page cache per spool, KiB (its default: 2,000 KiB, filled within a minute by a collector's
# appends and prunes: about 2 MiB of the process). Appends touch the table's last pages and prunes
# its first; the newest entries are read from `_tail`, older ones once, in order, from the OS's cache
# of the file. 512 KiB holds a scan round of 100 devices (about 250 KB) in one transaction.
CACHE_KIB = 512


def right_sized(payload: bytes) -> bytes:
    """A copy of `payload` whose allocation is its length, for bytes that are kept. orjson (3.12
    on) returns bytes with several times their length allocated and never shrinks them (as
    home-assistant/core#181240 found): a 2,044-byte telemetry batch holds 16 KiB (tracemalloc),
    so the tail's 1 MiB of payload held about 7 MiB of a collect process (issue 15). One memcpy
    per entry."""
    return bytes(memoryview(payload))


class SpoolInUse(RuntimeError):
    """Another live process holds this spool; two senders on one outbox would race."""


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    id: int
    topic: str
    payload: bytes
    items: int  # readings (MQTT batch) or lines (InfluxDB batch) inside the payload
    retain: bool


class Spool:
    """One outbox table `name` in the SQLite file `path` (None: an in-memory database)."""

    def __init__(
        self,
        path: Path | None,
        name: str,
        max_bytes: int,
        when_full: str = "drop_oldest",
        sync: str = "normal",
    ) -> None:
        if when_full not in ("drop_oldest", "drop_newest"):
            raise ValueError(f"unknown spool policy {when_full!r}")
        if not name.isidentifier():
            raise ValueError(f"spool name {name!r} must be an identifier (it names the table)")
        self.path, self.name, self.max_bytes, self.when_full = path, name, max_bytes, when_full
        self._lock_file = _lock(path, name) if path is not None else None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        # autocommit: every statement is its own transaction unless we open one with BEGIN
        self._db = sqlite3.connect(":memory:" if path is None else str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        if path is not None:  # an in-memory database is all cache
            self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        self._db.execute(f"PRAGMA synchronous={'FULL' if sync == 'full' else 'NORMAL'}")
        self._db.execute(
            f"CREATE TABLE IF NOT EXISTS {name} (id INTEGER PRIMARY KEY AUTOINCREMENT, created_ns INTEGER NOT NULL,"
            " topic TEXT NOT NULL, retain INTEGER NOT NULL, items INTEGER NOT NULL, payload BLOB NOT NULL)"
        )
        # the file's epoch: made once with the file, so ids of a new file are never taken for the old one's
        self._db.execute("CREATE TABLE IF NOT EXISTS spool_epoch (epoch TEXT NOT NULL)")
        self._db.execute(
            "INSERT INTO spool_epoch (epoch) SELECT ? WHERE NOT EXISTS (SELECT 1 FROM spool_epoch)",
            (secrets.token_hex(8),),
        )
        self.epoch: str = self._db.execute("SELECT epoch FROM spool_epoch").fetchone()[0]
        self._insert = f"INSERT INTO {name} (created_ns, topic, retain, items, payload) VALUES (?, ?, ?, ?, ?)"
        rows, size, items, last = self._db.execute(
            f"SELECT count(*), coalesce(sum(length(payload)), 0), coalesce(sum(items), 0), max(id) FROM {name}"
        ).fetchone()
        self.rows: int = rows
        self.bytes: int = size
        self.items: int = items
        self.last_id: int = last or 0
        self.recovered = rows  # entries left by an earlier run of the process
        self.appended = 0
        self.dropped = 0  # entries dropped because the spool was full
        self.dropped_items = 0
        self._next_drop_log = 0.0
        # the newest committed entries, in id order: every entry in the file from _tail[0] on
        self._tail: list[SpoolEntry] = []
        self._tail_bytes = 0

    def append(self, topic: str, payload: bytes, items: int, retain: bool = False) -> bool:
        """Commit one entry; False when the full-spool policy dropped this entry instead."""
        return self.append_many([(topic, payload, items, retain)]) == 1

    def append_many(self, entries: Sequence[tuple[str, bytes, int, bool]]) -> int:
        """Commit (topic, payload, items, retain) entries in order in ONE transaction (a scan round
        of many devices costs one commit); returns how many were kept, the others dropped by the
        full-spool policy. On an error nothing is kept and the error is raised."""
        db = self._db
        counters = (self.rows, self.bytes, self.items, self.last_id, self.dropped, self.dropped_items)
        kept: list[SpoolEntry] = []
        now = time.time_ns()
        db.execute("BEGIN IMMEDIATE")
        try:
            for topic, payload, items, retain in entries:
                size = len(payload)
                if self.bytes + size > self.max_bytes:
                    if self.when_full == "drop_newest" or size > self.max_bytes:
                        self._count_drop(1, items)
                        continue
                    self._drop_oldest(self.bytes + size - self.max_bytes)
                cursor = db.execute(self._insert, (now, topic, int(retain), items, payload))
                self.last_id = cursor.lastrowid or self.last_id
                kept.append(SpoolEntry(self.last_id, topic, right_sized(payload), items, retain))
                self.rows += 1
                self.bytes += size
                self.items += items
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            self.rows, self.bytes, self.items, self.last_id, self.dropped, self.dropped_items = counters
            raise
        self.appended += len(kept)
        self._remember(kept)
        return len(kept)

    def _remember(self, entries: list[SpoolEntry]) -> None:
        tail = self._tail
        tail += entries
        self._tail_bytes += sum(len(e.payload) for e in entries)
        if self._tail_bytes > TAIL_MAX_BYTES:  # forget the oldest half: they are read from the file
            cut = len(tail) // 2 or 1
            self._tail_bytes -= sum(len(e.payload) for e in tail[:cut])
            del tail[:cut]

    def _forget_through(self, last_id: int) -> None:
        tail = self._tail
        cut = bisect.bisect_right(tail, last_id, key=_ID)
        if cut:
            self._tail_bytes -= sum(len(e.payload) for e in tail[:cut])
            del tail[:cut]

    def peek(self, limit: int, max_items: int | None = None, after: int = 0) -> list[SpoolEntry]:
        """The oldest entries with an id above `after`, in order: at most `limit`, and stopping once
        `max_items` are reached."""
        tail = self._tail
        # in memory: every entry past `after` (the tail is the file's newest entries, or all of them)
        if tail and (after >= tail[0].id - 1 or len(tail) == self.rows):
            start = bisect.bisect_right(tail, after, key=_ID)
            if max_items is None:
                return tail[start : start + limit]
            out: list[SpoolEntry] = []
            total = 0
            for entry in tail[start : start + limit]:
                out.append(entry)
                total += entry.items
                if total >= max_items:
                    break
            return out
        cursor = self._db.execute(
            f"SELECT id, topic, payload, items, retain FROM {self.name} WHERE id > ? ORDER BY id LIMIT ?",
            (after, limit),
        )
        out: list[SpoolEntry] = []
        total = 0
        for row in cursor:
            out.append(SpoolEntry(row[0], row[1], row[2], row[3], bool(row[4])))
            total += row[3]
            if max_items is not None and total >= max_items:
                break
        cursor.close()
        return out

    def remove_through(self, last_id: int) -> None:
        """Delivered: forget every entry up to and including `last_id`."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            rows, size, items = db.execute(
                f"SELECT count(*), coalesce(sum(length(payload)), 0), coalesce(sum(items), 0) FROM {self.name}"
                " WHERE id <= ?",
                (last_id,),
            ).fetchone()
            db.execute(f"DELETE FROM {self.name} WHERE id <= ?", (last_id,))
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise
        self._forget_through(last_id)
        self.rows -= rows
        self.bytes -= size
        self.items -= items

    def head_id(self) -> int | None:
        return self._db.execute(f"SELECT min(id) FROM {self.name}").fetchone()[0]

    def close(self) -> None:
        self._db.close()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def _drop_oldest(self, need: int) -> None:
        freed = dropped = items = 0
        cutoff = None
        cursor = self._db.execute(f"SELECT id, length(payload), items FROM {self.name} ORDER BY id")
        for row_id, length, row_items in cursor:
            cutoff, freed, dropped, items = row_id, freed + length, dropped + 1, items + row_items
            if freed >= need:
                break
        cursor.close()
        if cutoff is not None:
            self._db.execute(f"DELETE FROM {self.name} WHERE id <= ?", (cutoff,))
            self._forget_through(cutoff)
        self.rows -= dropped
        self.bytes -= freed
        self.items -= items
        self._count_drop(dropped, items)

    def _count_drop(self, entries: int, items: int) -> None:
        self.dropped += entries
        self.dropped_items += items
        now = time.monotonic()
        if now >= self._next_drop_log:
            self._next_drop_log = now + DROP_LOG_INTERVAL_S
            log.warning(
                "spool %s full (%.1f MiB limit, policy %s): %d entries (%d items) dropped so far",
                self.name,
                self.max_bytes / MIB,
                self.when_full,
                self.dropped,
                self.dropped_items,
            )


async def wait_head(spool: Spool, wake: asyncio.Event) -> SpoolEntry:
    """The oldest entry, waiting for `wake` (set by whoever appends) while the spool is empty."""
    while True:
        head = spool.peek(1)
        if head:
            return head[0]
        wake.clear()
        await wake.wait()


def open_spool(config: SpoolConfig, name: str) -> Spool:
    spool = Spool(config.path, name, int(config.max_mib * MIB), config.when_full, config.sync)
    if config.path is None:
        log.warning("spool %s has no path: waiting entries are held in memory and lost if the process dies", name)
    elif spool.recovered:
        log.info("spool %s: %d entries (%d items) left by an earlier run", name, spool.rows, spool.items)
    return spool


def _rollback(db: sqlite3.Connection) -> None:
    """Roll back after a failed statement. SQLite may have rolled back already (a full disk, SQLITE_FULL,
    ends the transaction), and a ROLLBACK then would raise and hide the error that matters."""
    if db.in_transaction:
        db.execute("ROLLBACK")


def _lock(path: Path, name: str) -> IO[str]:
    """An advisory lock next to the spool; the kernel releases it when the holder dies (even SIGKILL)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(f"{path.name}.{name}.lock")
    handle = open(lock_path, "a+")  # noqa: SIM115 - held for the spool's lifetime
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise SpoolInUse(f"spool {name} in {path} is in use by another process (pid {holder})") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle

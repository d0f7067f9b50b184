"""A spool whose disk refuses writes (full: ENOSPC, SQLITE_FULL; or failing): nothing is lost, and it says so.

`SpoolFaults` counts the refused writes (for /metrics) and logs them: the first one at once, with
the spool's file and the error, then at most every FAULT_LOG_INTERVAL_S with the running totals,
and once more when the spool takes writes again.

`MemoryOverflow` is the collector's side: what the spool refuses is held in memory, in order,
bounded by `memory_mib` (beyond it the spool's own `when_full` policy applies, counted as drops),
and written to the spool ahead of anything newer as soon as the disk takes it again. Held entries
are not published meanwhile (only spooled entries carry the ids ingest's durable mark counts), so
they wait, as they would in the spool. A prune (`remove_through`) the disk refuses is skipped:
the entries stay spooled until the next mark prunes past them.

Ingest's side needs no memory: a batch it can neither write nor spool is not acknowledged, so the
broker and the collector keep it (gateway/ingest.py).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import deque
from collections.abc import Sequence
from typing import NamedTuple

from ferrogate.gateway.episodes import Episode
from ferrogate.gateway.spool import MIB, Spool, right_sized

log = logging.getLogger(__name__)

# what a spool write raises when its disk refuses it: SQLite reports ENOSPC as SQLITE_FULL or an
# SQLITE_IOERR (both OperationalError); a plain file (the dead letters) raises OSError
SPOOL_WRITE_ERRORS = (sqlite3.OperationalError, OSError)
# a disk that stays full logs at most this often (seconds), with the running totals
FAULT_LOG_INTERVAL_S = 60.0


class SpoolFaults:
    """Refused writes of one spool: counted, and logged without flooding."""

    def __init__(self, spool: Spool, holding: str) -> None:
        self.spool = spool
        self.holding = holding  # what happens to a refused entry, for the log line
        self._refusals = Episode(FAULT_LOG_INTERVAL_S)

    @property
    def failing(self) -> bool:
        """The disk refused the last write tried."""
        return self._refusals.active

    @property
    def errors(self) -> int:
        """Writes (appends, prunes) the spool's disk refused."""
        return self._refusals.occurrences

    def failed(self, exc: Exception, held: int) -> None:
        if self._refusals.occurred():
            log.error(
                "spool %s in %s cannot be written (%s: %s, disk full?): %s; %d writes refused so far, %d entries held",
                self.spool.name,
                self.spool.path or "memory",
                type(exc).__name__,
                exc,
                self.holding,
                self.errors,
                held,
            )

    def recovered(self) -> None:
        """A write went through after refused ones (cheap to call after every write)."""
        if self._refusals.ended():
            log.warning(
                "spool %s in %s: writes go through again (%d were refused)",
                self.spool.name,
                self.spool.path or "memory",
                self.errors,
            )


class _Held(NamedTuple):
    topic: str
    payload: bytes
    items: int
    retain: bool


class MemoryOverflow:
    """Appends to `spool`, holding in memory (up to `max_bytes` of payload) what its disk refuses."""

    def __init__(self, spool: Spool, max_bytes: int) -> None:
        self.spool = spool
        self.max_bytes = max_bytes
        self.faults = SpoolFaults(spool, f"holding entries in memory (up to {max_bytes / MIB:.1f} MiB)")
        self.held: deque[_Held] = deque()
        self.held_bytes = 0
        self.dropped = 0  # held entries dropped at the memory bound (the spool's `when_full` policy)
        self.dropped_items = 0
        self._next_drop_log = 0.0

    def append(self, topic: str, payload: bytes, items: int, retain: bool = False) -> None:
        """Commit an entry to the spool, or hold it (behind any entry already held)."""
        self.append_many([(topic, payload, items, retain)])

    def append_many(self, entries: Sequence[tuple[str, bytes, int, bool]]) -> None:
        """Commit (topic, payload, items, retain) entries to the spool in one transaction, or hold
        them all, in order, behind any entry already held (the transaction keeps none of them)."""
        if not self.held or self.flush():
            try:
                self.spool.append_many(entries)
            except SPOOL_WRITE_ERRORS as exc:
                self.faults.failed(exc, len(self.held) + len(entries))
            else:
                self.faults.recovered()
                return
        for topic, payload, items, retain in entries:
            self._hold(_Held(topic, right_sized(payload), items, retain))  # held for as long as the disk refuses

    def flush(self) -> bool:
        """Write held entries to the spool, oldest first; True once none is held."""
        while self.held:
            entry = self.held[0]
            try:
                self.spool.append(*entry)
            except SPOOL_WRITE_ERRORS as exc:
                self.faults.failed(exc, len(self.held))
                return False
            self.held.popleft()
            self.held_bytes -= len(entry.payload)
        self.faults.recovered()
        return True

    def remove_through(self, last_id: int) -> bool:
        """Prune the spool; False (entries kept, pruned by a later call) when the disk refuses."""
        try:
            self.spool.remove_through(last_id)
        except SPOOL_WRITE_ERRORS as exc:
            self.faults.failed(exc, len(self.held))
            return False
        return True

    def _hold(self, entry: _Held) -> None:
        size = len(entry.payload)
        if self.held_bytes + size > self.max_bytes and self.spool.when_full == "drop_newest":
            self._count_drop(1, entry.items)
            return
        self.held.append(entry)
        self.held_bytes += size
        dropped = items = 0
        while self.held_bytes > self.max_bytes and self.held:
            old = self.held.popleft()
            self.held_bytes -= len(old.payload)
            dropped, items = dropped + 1, items + old.items
        if dropped:
            self._count_drop(dropped, items)

    def _count_drop(self, entries: int, items: int) -> None:
        self.dropped += entries
        self.dropped_items += items
        now = time.monotonic()
        if now < self._next_drop_log:
            return
        self._next_drop_log = now + FAULT_LOG_INTERVAL_S
        log.error(
            "spool %s: memory for entries its disk refused is full (%.1f MiB): %d entries (%d items) dropped so far",
            self.spool.name,
            self.max_bytes / MIB,
            self.dropped,
            self.dropped_items,
        )


class SpoolState(NamedTuple):
    """One role's spool, for /metrics."""

    role: str
    spool: Spool
    write_errors: int  # writes its disk refused (and, for ingest, dead letters it could not keep)
    held: int  # entries waiting outside the spool: in memory (collector), or not acknowledged (ingest)
    dropped: int  # entries dropped by `when_full` (the spool's limit, or the memory behind a full disk)


def render_prometheus(states: list[SpoolState]) -> str:
    """Prometheus text format 0.0.4: per role, the spool's entries, refused writes, held and dropped entries."""
    families = [
        ("ferrogate_spool_entries", "gauge", "entries waiting in the disk spool", lambda s: s.spool.rows),
        ("ferrogate_spool_write_errors_total", "counter", "spool writes refused (disk full)", lambda s: s.write_errors),
        ("ferrogate_spool_held_entries", "gauge", "entries waiting outside the spool", lambda s: s.held),
        ("ferrogate_spool_dropped_total", "counter", "entries dropped by the when_full policy", lambda s: s.dropped),
    ]
    out: list[str] = []
    for name, kind, help_text, value in families:
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        out += [f'{name}{{role="{s.role}",spool="{s.spool.name}"}} {value(s)}' for s in states]
    return "\n".join(out) + "\n"

"""The store of monthly manual inputs (laboratory values, unmetered consumptions, corrections) and
their audit trail: one SQLite file next to the gateway's other state (`compliance.inputs_path`).

Why SQLite and not InfluxDB: a change and its audit entry must commit together (one transaction),
and an audit trail must never be overwritten, while InfluxDB silently replaces a point with the same
series and time and has no transactions. Every statement commits with `synchronous=FULL` (an input
is entered by hand, rarely: one fsync each is nothing), so an acknowledged input survives a killed
process and a power cut. The audit table refuses UPDATE and DELETE (triggers).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from ferrogate.gateway.compliance.inputs import AuditEntry, InputValue

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS input (month TEXT NOT NULL, subject TEXT NOT NULL, name TEXT NOT NULL,"
    " value TEXT NOT NULL, unit TEXT NOT NULL, source TEXT NOT NULL, note TEXT NOT NULL,"
    " entered_by TEXT NOT NULL, entered_at_ns INTEGER NOT NULL, PRIMARY KEY (month, subject, name))",
    "CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, month TEXT NOT NULL,"
    " subject TEXT NOT NULL, name TEXT NOT NULL, action TEXT NOT NULL, old_value TEXT, new_value TEXT,"
    " unit TEXT NOT NULL, source TEXT NOT NULL, entered_by TEXT NOT NULL, at_ns INTEGER NOT NULL)",
    "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit"
    " BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit"
    " BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END",
)


def _dump(value: float | str | None) -> str | None:
    return None if value is None else json.dumps(value)


def _load(text: str | None) -> float | str | None:
    return None if text is None else json.loads(text)


class InputStore:
    """Thread-safe (the API calls it from worker threads); one connection, serialised by a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        for statement in _SCHEMA:
            self._db.execute(statement)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def set(self, value: InputValue) -> tuple[InputValue | None, AuditEntry]:
        """Store (or replace) an input; returns the value it replaced and the audit entry."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                old = self._get(value.month, value.subject, value.name)
                self._db.execute(
                    "INSERT OR REPLACE INTO input VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        value.month,
                        value.subject,
                        value.name,
                        _dump(value.value),
                        value.unit,
                        value.source,
                        value.note,
                        value.entered_by,
                        value.entered_at_ns,
                    ),
                )
                audit = self._audit(value, "set", old.value if old else None, value.value)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return old, audit

    def delete(self, month: str, subject: str, name: str, who: str, at_ns: int) -> AuditEntry | None:
        """Remove an input (audited); None when there was none."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                old = self._get(month, subject, name)
                if old is None:
                    self._db.execute("ROLLBACK")
                    return None
                self._db.execute("DELETE FROM input WHERE month=? AND subject=? AND name=?", (month, subject, name))
                gone = InputValue(month, subject, name, old.value, old.unit, old.source, "", who, at_ns)
                audit = self._audit(gone, "delete", old.value, None)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return audit

    def month(self, month: str) -> list[InputValue]:
        return self.months([month])

    def months(self, months: list[str]) -> list[InputValue]:
        marks = ",".join("?" for _ in months)
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM input WHERE month IN ({marks}) ORDER BY month, subject, name", months
            ).fetchall()
        return [_value(r) for r in rows]

    def audit(self, month: str | None = None) -> list[AuditEntry]:
        query, args = "SELECT * FROM audit ORDER BY id", ()
        if month is not None:
            query, args = "SELECT * FROM audit WHERE month=? ORDER BY id", (month,)
        with self._lock:
            rows = self._db.execute(query, args).fetchall()
        return [
            AuditEntry(r[0], r[1], r[2], r[3], r[4], _load(r[5]), _load(r[6]), r[7], r[8], r[9], r[10]) for r in rows
        ]

    def _get(self, month: str, subject: str, name: str) -> InputValue | None:
        row = self._db.execute(
            "SELECT * FROM input WHERE month=? AND subject=? AND name=?", (month, subject, name)
        ).fetchone()
        return None if row is None else _value(row)

    def _audit(self, value: InputValue, action: str, old: float | str | None, new: float | str | None) -> AuditEntry:
        cur = self._db.execute(
            "INSERT INTO audit (month, subject, name, action, old_value, new_value, unit, source, entered_by, at_ns)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                value.month,
                value.subject,
                value.name,
                action,
                _dump(old),
                _dump(new),
                value.unit,
                value.source,
                value.entered_by,
                value.entered_at_ns,
            ),
        )
        assert cur.lastrowid is not None
        return AuditEntry(
            cur.lastrowid,
            value.month,
            value.subject,
            value.name,
            action,
            old,
            new,
            value.unit,
            value.source,
            value.entered_by,
            value.entered_at_ns,
        )


def _value(row: tuple) -> InputValue:
    value = _load(row[3])
    assert value is not None
    return InputValue(row[0], row[1], row[2], value, row[4], row[5], row[6], row[7], row[8])

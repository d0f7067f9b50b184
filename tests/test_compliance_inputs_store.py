"""The manual-input store: values and their audit trail survive a restart (a reopened file), the
audit trail records who, when, old and new value, and refuses to be rewritten."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ferrogate.gateway.compliance.inputs import InputValue
from ferrogate.gateway.compliance_inputs import InputStore


def value(v: float | str, who: str, at: int, source: str = "lab report 11/07") -> InputValue:
    return InputValue("2026-11", "coke", "ncv", v, "GJ/t", source, "", who, at)


def test_inputs_and_their_audit_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state" / "compliance.sqlite"
    store = InputStore(path)
    old, first = store.set(value(28.4, "lab", 1_000))
    assert old is None and (first.action, first.old_value, first.new_value, first.entered_by) == (
        "set",
        None,
        28.4,
        "lab",
    )
    old, _ = store.set(value(28.9, "energy_manager", 2_000, "lab report 11/07 (corrected)"))
    assert old is not None and old.value == 28.4 and old.entered_by == "lab"
    store.set(InputValue("2026-11", "industrial_silicon", "reductant", "coal", "", "log", "", "ops", 3_000))
    gone = store.delete("2026-11", "industrial_silicon", "reductant", "ops", 4_000)
    assert gone is not None and (gone.old_value, gone.new_value, gone.action) == ("coal", None, "delete")
    assert store.delete("2026-11", "industrial_silicon", "reductant", "ops", 5_000) is None
    store.close()

    reopened = InputStore(path)
    [kept] = reopened.month("2026-11")
    assert (kept.value, kept.entered_by, kept.entered_at_ns, kept.source) == (
        28.9,
        "energy_manager",
        2_000,
        "lab report 11/07 (corrected)",
    )
    trail = [(e.name, e.action, e.old_value, e.new_value, e.entered_by, e.at_ns) for e in reopened.audit("2026-11")]
    assert trail == [
        ("ncv", "set", None, 28.4, "lab", 1_000),
        ("ncv", "set", 28.4, 28.9, "energy_manager", 2_000),
        ("reductant", "set", None, "coal", "ops", 3_000),
        ("reductant", "delete", "coal", None, "ops", 4_000),
    ]
    assert reopened.month("2026-10") == [] and reopened.audit("2026-10") == []
    reopened.close()


def test_the_audit_trail_cannot_be_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "compliance.sqlite"
    store = InputStore(path)
    store.set(value(28.4, "lab", 1_000))
    store.close()
    db = sqlite3.connect(path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE audit SET new_value = '1.0'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM audit")
    db.close()

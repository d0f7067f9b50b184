"""How far building got, kept across restarts (JSON next to the spool, replaced atomically): per
period kind the start of the last period built, and what each unfinished day's and month's parts
were sent with (the parts rule, quality.py)."""

from __future__ import annotations

import json
import os
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from ferrogate.gateway.energy.books import IntervalRow
from ferrogate.gateway.energy.production import ProductionRecord
from ferrogate.gateway.uplink.energy_platform.builder import Built, MessageBuilder
from ferrogate.gateway.uplink.energy_platform.periods import PlatformPeriod, period_at

PARENT = {"quarter": "day", "day": "month"}


@dataclass
class BuildState:
    made_through: dict[str, int] = field(default_factory=dict)  # kind -> start of the last period built
    parts: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # "day:2026-11-03" -> code -> [sum, n]

    @classmethod
    def load(cls, path: Path | None) -> BuildState:
        if path is None or not path.exists():
            return cls()
        doc = json.loads(path.read_text(encoding="utf-8"))
        return cls({k: int(v) for k, v in doc["made_through"].items()}, doc["parts"])

    def save(self, path: Path | None) -> None:
        if path is None:
            return
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"made_through": self.made_through, "parts": self.parts}), encoding="utf-8")
        os.replace(tmp, path)

    def parts_of(self, p: PlatformPeriod) -> dict[str, tuple[float, int]]:
        return {code: (v[0], int(v[1])) for code, v in self.parts.get(f"{p.kind}:{p.label}", {}).items()}

    def record(self, p: PlatformPeriod, sums: dict[str, float], zone: ZoneInfo) -> None:
        """`p` was built: remember how far, add its sums to its parent's, forget its own parts
        (and those of parents skipped before the first one built)."""
        self.made_through[p.kind] = p.start_ns
        parent_kind = PARENT.get(p.kind)
        if parent_kind is not None:
            parent = period_at(parent_kind, p.start_ns, zone)  # type: ignore[arg-type]
            acc = self.parts.setdefault(f"{parent.kind}:{parent.label}", {})
            for code, value in sums.items():
                total = acc.setdefault(code, [0.0, 0])
                total[0] += value
                total[1] += 1
        mine = f"{p.kind}:{p.label}"
        for key in [k for k in self.parts if k.startswith(f"{p.kind}:") and k <= mine]:
            del self.parts[key]


def build_in_order(
    builder: MessageBuilder,
    state: BuildState,
    due: Sequence[PlatformPeriod],
    records: Iterable[ProductionRecord],
    intervals: Iterable[IntervalRow],
) -> list[Built]:
    """The messages of `due` (in sending order), each period's sums passed on to its parent. Each
    period is given only its own slice of the rows (sorted once, bisected): a month's window holds
    every bucket of the month, and each of its quarter-hours would otherwise scan them all."""
    recs = sorted(records, key=lambda r: r.end_ns)
    rows = sorted(intervals, key=lambda r: r.start_ns)
    rec_ends = [r.end_ns for r in recs]
    row_starts = [r.start_ns for r in rows]
    longest = max((r.end_ns - r.start_ns for r in rows), default=0)
    out = []
    for p in due:
        mine = recs[bisect_right(rec_ends, p.start_ns) : bisect_right(rec_ends, p.end_ns)]  # ends in (start, end]
        # buckets that start in the period, or earlier and reach into it (they fail the alignment rule)
        near = rows[bisect_left(row_starts, p.start_ns - longest + 1) : bisect_left(row_starts, p.end_ns)]
        built = builder.build(p, mine, near, state.parts_of(p))
        state.record(p, built.sums, builder.zone)
        out.append(built)
    return out

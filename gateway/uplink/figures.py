"""The energy books' computed figures as HJ 212 factors: a furnace's (or product's, or the plant's)
direct CO2 of a local day, from the daily KPIs the books publish (schema `ferrogate-energy/1`),
sent as `Cou` in the platform's unit in a daily record (2031) of their own.

A day's record is made once every configured subject's KPI of that day has arrived complete, or
once a later day's has (then the missing subjects' factors go with flag D and no number, never as
zero). Figures of several subjects under one code add up (e.g. the plant's CO2 from each furnace);
if any of them is missing or not good, the factor is sent with flag D and no number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ferrogate.drivers.hj212.protocol.period import NORMAL, fmt
from ferrogate.gateway.energy.wire import SCHEMA
from ferrogate.gateway.payload import PayloadError
from ferrogate.gateway.timeutil import datetime_to_ns
from ferrogate.gateway.uplink.aggregate import FAULT_FLAG, Record

MADE_KEY = "day_figures"  # its `made_through` entry, next to the aggregator's kinds


@dataclass(frozen=True, slots=True)
class FigureItem:
    code: str  # HJ 212 factor code on the platform's side, e.g. a05001
    scope: str  # unit, product, plant
    subject: str  # asset id, product id or site id
    field: str  # a KPI field, e.g. tco2_direct (tonnes)
    scale: float  # the books' unit to the platform's (t -> kg: 1000)


def kpi_day(doc: Mapping[str, Any]) -> tuple[str, str, int] | None:
    """(scope, subject, start ns) of a complete daily KPI document; None for any other KPI."""
    if doc.get("schema") != SCHEMA or doc.get("type") != "kpi":
        raise PayloadError(f"not a {SCHEMA} KPI")
    period = doc.get("period")
    if not isinstance(period, dict) or period.get("kind") != "day" or doc.get("complete") is not True:
        return None
    try:
        start = datetime_to_ns(datetime.fromisoformat(str(period["start"])))
    except (KeyError, ValueError) as exc:
        raise PayloadError(f"bad period start: {exc}") from exc
    return str(doc.get("scope")), str(doc.get("subject")), start


class DayFigures:
    def __init__(self, items: Iterable[FigureItem], made_through: Mapping[str, int] | None = None) -> None:
        self.items = list(items)
        self.subjects = {(i.scope, i.subject) for i in self.items}
        self.made_through = {MADE_KEY: (made_through or {}).get(MADE_KEY, -1)}
        self._days: dict[int, dict[tuple[str, str], Mapping[str, Any]]] = {}
        self.late = 0  # complete KPIs of days already sent

    def add(self, doc: Mapping[str, Any]) -> list[Record]:
        """Take one KPI document; returns the daily records it completes, oldest first."""
        day = kpi_day(doc)
        if day is None or day[:2] not in self.subjects:
            return []
        scope, subject, start = day
        if start <= self.made_through[MADE_KEY]:
            self.late += 1
            return []
        self._days.setdefault(start, {})[(scope, subject)] = doc
        newest = max(self._days)
        ready = sorted(s for s, got in self._days.items() if s < newest or got.keys() >= self.subjects)
        out = [self._record(s, self._days.pop(s)) for s in ready]
        if out:
            self.made_through[MADE_KEY] = out[-1].start_ns
        return out

    def _record(self, start: int, got: Mapping[tuple[str, str], Mapping[str, Any]]) -> Record:
        """One code's figures add up; any of them missing or not good makes the factor flag D."""
        sums: dict[str, float | None] = {}
        for item in self.items:
            value = figure(got.get((item.scope, item.subject)), item.field)
            previous = sums.get(item.code, 0.0)
            sums[item.code] = None if value is None or previous is None else previous + value * item.scale
        factors = {
            code: {"Cou": fmt(total), "Flag": NORMAL} if total is not None else {"Flag": FAULT_FLAG}
            for code, total in sums.items()
        }
        return Record("day", start, factors)


def figure(doc: Mapping[str, Any] | None, name: str) -> float | None:
    """A good KPI's figure; None when the KPI is missing, not good, or has no such number."""
    if doc is None or doc.get("quality") != "good":
        return None
    value = doc.get("fields", {}).get(name)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

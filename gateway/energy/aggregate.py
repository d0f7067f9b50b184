"""Periods (shift, day, month in plant-local time) and sums over them.

A production day starts with the first shift; a month starts at the first production day's start.
Period figures are sums of energy over sums of tonnes of the records that ended in the period,
never means of per-heat ratios.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from ferrogate.gateway.energy.production import NO_PREVIOUS_TAP, ProductionRecord
from ferrogate.gateway.reading import Quality
from ferrogate.gateway.timeutil import datetime_to_ns, ns_to_datetime


class PeriodKind(StrEnum):
    shift = "shift"
    day = "day"
    month = "month"


@dataclass(frozen=True, slots=True)
class Period:
    kind: PeriodKind
    start_ns: int
    end_ns: int
    label: str  # e.g. 2026-11-23/B, 2026-11-23, 2026-11

    def holds_end(self, t_ns: int) -> bool:
        """A record ending at `t_ns` belongs to this period: (start, end], a heat to the period of its tap."""
        return self.start_ns < t_ns <= self.end_ns

    @property
    def local_date(self) -> date:
        return (
            date.fromisoformat(self.label[:10])
            if self.kind is not PeriodKind.month
            else date.fromisoformat(self.label + "-01")
        )


class ShiftCalendar:
    """Shifts given as (name, 'HH:MM') in increasing order; times in `timezone`."""

    def __init__(self, timezone: str, shifts: list[tuple[str, str]]) -> None:
        self.tz = ZoneInfo(timezone)
        self.shifts = [(name, time.fromisoformat(start)) for name, start in shifts]
        self.day_start = self.shifts[0][1]

    def _local(self, d: date, at: time) -> int:
        return datetime_to_ns(datetime.combine(d, at, tzinfo=self.tz))

    def production_date(self, t_ns: int) -> date:
        local = ns_to_datetime(t_ns).astimezone(self.tz)
        return local.date() if local.time() >= self.day_start else local.date() - timedelta(days=1)

    def day(self, d: date) -> Period:
        return Period(
            PeriodKind.day,
            self._local(d, self.day_start),
            self._local(d + timedelta(days=1), self.day_start),
            d.isoformat(),
        )

    def shifts_of(self, d: date) -> list[Period]:
        starts = [self._local(d, at) for _, at in self.shifts]
        # a shift that starts before the day start on the clock (e.g. 00:00 after 08:00) is on the next date
        starts = [s if s >= starts[0] else s + 86_400_000_000_000 for s in starts]
        ends = [*starts[1:], self._local(d + timedelta(days=1), self.day_start)]
        return [
            Period(PeriodKind.shift, s, e, f"{d.isoformat()}/{name}")
            for (name, _), s, e in zip(self.shifts, starts, ends, strict=True)
        ]

    def month(self, d: date) -> Period:
        first = d.replace(day=1)
        nxt = (first + timedelta(days=32)).replace(day=1)
        return Period(
            PeriodKind.month,
            self._local(first, self.day_start),
            self._local(nxt, self.day_start),
            first.strftime("%Y-%m"),
        )

    def period_of(self, kind: PeriodKind, t_ns: int) -> Period:
        d = self.production_date(t_ns)
        if kind is PeriodKind.day:
            return self.day(d)
        if kind is PeriodKind.month:
            return self.month(d)
        return next(p for p in self.shifts_of(d) if p.start_ns <= t_ns < p.end_ns)

    def periods(self, kind: PeriodKind, start_ns: int, end_ns: int) -> list[Period]:
        """Every period of `kind` that overlaps [start_ns, end_ns)."""
        out: list[Period] = []
        t = start_ns
        while t < end_ns:
            p = self.period_of(kind, t)
            out.append(p)
            t = p.end_ns
        return out


@dataclass(slots=True)
class Totals:
    """Sums over records: the only way period figures are formed."""

    records: int = 0
    excluded: int = 0  # records left out of the sums (partial heats, see totals_by_period)
    tonnes: float = 0.0
    electricity_kwh: float = 0.0
    waste_heat_kwh: float = 0.0
    consumables: dict[str, float] = field(default_factory=dict)
    quality: Quality = Quality.GOOD
    flags: set[str] = field(default_factory=set)
    first_start_ns: int | None = None
    last_end_ns: int | None = None

    def add(self, rec: ProductionRecord) -> None:
        self.records += 1
        self.tonnes += rec.tonnes or 0.0
        self.electricity_kwh += rec.electricity_kwh
        self.waste_heat_kwh += rec.waste_heat_kwh
        for material, qty in rec.consumables.items():
            self.consumables[material] = self.consumables.get(material, 0.0) + qty
        self._merge_quality(rec.quality, rec.flags)
        if self.first_start_ns is None or rec.start_ns < self.first_start_ns:
            self.first_start_ns = rec.start_ns
        if self.last_end_ns is None or rec.end_ns > self.last_end_ns:
            self.last_end_ns = rec.end_ns

    def merge(self, other: Totals) -> None:
        self.records += other.records
        self.excluded += other.excluded
        self.tonnes += other.tonnes
        self.electricity_kwh += other.electricity_kwh
        self.waste_heat_kwh += other.waste_heat_kwh
        for material, qty in other.consumables.items():
            self.consumables[material] = self.consumables.get(material, 0.0) + qty
        self._merge_quality(other.quality, other.flags)
        t = other.first_start_ns
        if t is not None and (self.first_start_ns is None or t < self.first_start_ns):
            self.first_start_ns = t
        if other.last_end_ns is not None and (self.last_end_ns is None or other.last_end_ns > self.last_end_ns):
            self.last_end_ns = other.last_end_ns

    def _merge_quality(self, quality: Quality, flags: set[str]) -> None:
        if quality is Quality.BAD or (quality is Quality.UNCERTAIN and self.quality is Quality.GOOD):
            self.quality = quality
        self.flags |= flags

    @property
    def kwh_per_t(self) -> float | None:
        return self.electricity_kwh / self.tonnes if self.tonnes > 0 else None


def totals_by_period(records: list[ProductionRecord], period: Period) -> Totals:
    """Sum of the records that ended inside the period, (start, end]: a heat belongs to the period
    of its tap, a continuous record to the period its last instant falls in.

    A heat whose previous tap is unknown (data started mid-heat) is counted as excluded, not
    summed: its energy is incomplete and would flatter the period's kWh/t.
    """
    out = Totals()
    for rec in records:
        if period.holds_end(rec.end_ns):
            if NO_PREVIOUS_TAP in rec.flags:
                out.excluded += 1
                out.flags.add(NO_PREVIOUS_TAP)
            else:
                out.add(rec)
    return out

"""The tariff as a function of time: which time-of-use period and price apply at any instant.

A day's bands come from the tariff edition in force on that plant-local date (the latest
`effective_from` on or before it), the schedule for the date's month and day type (holiday, weekend
or workday), and the schedule's bands turned into absolute times in the plant's time zone. Time
before the first edition has no tariff: its bands say so (period None) and costs there are flagged,
never priced at zero.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ferrogate.gateway.cost.config import DayType, Schedule, Tariff, TouPeriod
from ferrogate.gateway.timeutil import datetime_to_ns, ns_to_datetime


@dataclass(frozen=True, slots=True)
class Band:
    """[start_ns, end_ns) under one period and price; period None where no tariff is in force."""

    start_ns: int
    end_ns: int
    period: TouPeriod | None
    yuan_per_kwh: float | None
    tariff: str | None


def minutes(hhmm: str) -> int:
    hours, mins = hhmm.split(":")
    return int(hours) * 60 + int(mins)


class TouSchedule:
    def __init__(
        self, tariffs: Sequence[Tariff], timezone: str, weekend_days: Iterable[int], holidays: Iterable[date]
    ) -> None:
        self.tariffs = sorted(tariffs, key=lambda t: t.effective_from)
        self._starts = [t.effective_from for t in self.tariffs]
        self.tz = ZoneInfo(timezone)
        self.weekend_days = frozenset(weekend_days)
        self.holidays = frozenset(holidays)
        self._lookup = [_schedule_lookup(t) for t in self.tariffs]
        self._prices = [{p.period: p.yuan_per_kwh for p in t.prices} for t in self.tariffs]
        self._days: dict[date, list[Band]] = {}
        self._recent: list[Band] = []  # the bands of the day last asked for

    def local_date(self, t_ns: int) -> date:
        return ns_to_datetime(t_ns).astimezone(self.tz).date()

    def day_type(self, d: date) -> DayType:
        if d in self.holidays:
            return DayType.holiday
        return DayType.weekend if d.isoweekday() in self.weekend_days else DayType.workday

    def edition(self, d: date) -> int | None:
        """Index of the tariff edition in force on plant-local date `d`."""
        i = bisect_right(self._starts, d) - 1
        return i if i >= 0 else None

    def tariff_on(self, d: date) -> Tariff | None:
        i = self.edition(d)
        return None if i is None else self.tariffs[i]

    def _at(self, d: date, minute: int) -> int:
        return datetime_to_ns(datetime.combine(d, time(0), tzinfo=self.tz) + timedelta(minutes=minute))

    def day_bands(self, d: date) -> list[Band]:
        bands = self._days.get(d)
        if bands is None:
            bands = self._days[d] = self._make_day(d)
        return bands

    def _make_day(self, d: date) -> list[Band]:
        i = self.edition(d)
        schedule = None if i is None else self._lookup[i].get((d.month, self.day_type(d)))
        if i is None or schedule is None:
            return [Band(self._at(d, 0), self._at(d + timedelta(days=1), 0), None, None, None)]
        tariff, prices = self.tariffs[i], self._prices[i]
        return [
            Band(
                self._at(d, minutes(b.start)),
                self._at(d, minutes(b.end)),
                b.period,
                prices.get(b.period),
                tariff.id,
            )
            for b in schedule.bands
        ]

    def bands(self, t0_ns: int, t1_ns: int) -> list[Band]:
        """The bands covering [t0_ns, t1_ns), clipped to it, in time order."""
        out: list[Band] = []
        if t1_ns <= t0_ns:
            return out
        recent = self._recent  # consecutive buckets fall in one day: no date arithmetic for them
        if recent and recent[0].start_ns <= t0_ns and t1_ns <= recent[-1].end_ns:
            days = [recent]
        else:
            days = self._days_between(t0_ns, t1_ns)
            self._recent = days[-1]
        for day in days:
            for b in day:
                start, end = max(b.start_ns, t0_ns), min(b.end_ns, t1_ns)
                if start < end:
                    out.append(b if (start, end) == (b.start_ns, b.end_ns) else _clip(b, start, end))
        return out

    def _days_between(self, t0_ns: int, t1_ns: int) -> list[list[Band]]:
        days = []
        d, last = self.local_date(t0_ns), self.local_date(t1_ns - 1)
        while d <= last:
            days.append(self.day_bands(d))
            d += timedelta(days=1)
        return days

    def band_at(self, t_ns: int) -> Band:
        for b in self.day_bands(self.local_date(t_ns)):
            if b.start_ns <= t_ns < b.end_ns:
                return b
        raise LookupError(f"no band at {t_ns}")  # the bands of a day cover it (checked when resolved)


def _clip(b: Band, start: int, end: int) -> Band:
    return Band(start, end, b.period, b.yuan_per_kwh, b.tariff)


def _schedule_lookup(tariff: Tariff) -> dict[tuple[int, DayType], Schedule]:
    out: dict[tuple[int, DayType], Schedule] = {}
    for schedule in tariff.schedules:
        for month in schedule.months:
            for day_type in schedule.day_types:
                out.setdefault((month, day_type), schedule)
    return out

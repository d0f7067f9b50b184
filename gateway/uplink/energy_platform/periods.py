"""The platform's periods in the site's local time: quarter-hours on :00, :15, :30 and :45, days
from 00:00 to 00:00, months from the 1st at 00:00 (not the books' production day, which starts
with the first shift). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from ferrogate.gateway.timeutil import datetime_to_ns, ns_to_datetime
from ferrogate.gateway.uplink.energy_platform.mapping import KINDS, Kind

QUARTER_NS = 15 * 60 * 1_000_000_000
RANK = {
    kind: i for i, kind in enumerate(KINDS)
}  # at one instant a quarter closes before its day, a day before its month


@dataclass(frozen=True, slots=True)
class PlatformPeriod:
    kind: Kind
    start_ns: int
    end_ns: int
    label: str  # local start: 2026-11-03T08:15, 2026-11-03, 2026-11

    @property
    def order(self) -> tuple[int, int]:
        """Sending order: by end, the finer period first."""
        return (self.end_ns, RANK[self.kind])


def _local(d: date, zone: ZoneInfo) -> int:
    return datetime_to_ns(datetime(d.year, d.month, d.day, tzinfo=zone))


def _next_month(d: date) -> date:
    return (d.replace(day=1) + timedelta(days=32)).replace(day=1)


def period_at(kind: Kind, t_ns: int, zone: ZoneInfo) -> PlatformPeriod:
    """The period of `kind` that holds the instant `t_ns`: [start, end)."""
    local = ns_to_datetime(t_ns).astimezone(zone)
    d = local.date()
    if kind == "quarter":
        # every zone's offset is a whole number of quarter-hours, so local quarter-hours are UTC ones;
        # counting on the UTC axis also keeps the repeated hour of a DST change apart
        start = t_ns - t_ns % QUARTER_NS
        at = ns_to_datetime(start).astimezone(zone)
        label = f"{at.date().isoformat()}T{at.hour:02d}:{at.minute:02d}"
        if at.fold:  # the second pass through a repeated local hour: name it by its offset
            label += at.strftime("%z")[:3] + ":" + at.strftime("%z")[3:]
        return PlatformPeriod(kind, start, start + QUARTER_NS, label)
    if kind == "day":
        return PlatformPeriod(kind, _local(d, zone), _local(d + timedelta(days=1), zone), d.isoformat())
    first = d.replace(day=1)
    return PlatformPeriod(kind, _local(first, zone), _local(_next_month(first), zone), first.strftime("%Y-%m"))


def first_period(kind: Kind, day: date, zone: ZoneInfo) -> PlatformPeriod:
    """The first period of `kind` wholly on or after 00:00 of `day` (a month from the next 1st unless `day` is one)."""
    start = _local(day, zone)
    p = period_at(kind, start, zone)
    return p if p.start_ns == start else period_at(kind, p.end_ns, zone)


def following(p: PlatformPeriod, zone: ZoneInfo) -> PlatformPeriod:
    return period_at(p.kind, p.end_ns, zone)


def parts(p: PlatformPeriod, zone: ZoneInfo) -> list[PlatformPeriod]:
    """The finer periods that make up `p`: a day's 96 quarter-hours (92/100 on a DST change), a month's days."""
    if p.kind == "quarter":
        return []
    kind: Kind = "quarter" if p.kind == "day" else "day"
    out = [period_at(kind, p.start_ns, zone)]
    while out[-1].end_ns < p.end_ns:
        out.append(following(out[-1], zone))
    return out


def closable(
    kinds: tuple[Kind, ...], made_through: dict[str, int], first: date, zone: ZoneInfo, horizon_ns: int, limit: int
) -> list[PlatformPeriod]:
    """Periods not made yet that end at or before `horizon_ns`, in sending order, at most `limit`.
    `made_through`: kind -> start of the last period made."""
    out: list[PlatformPeriod] = []
    for kind in kinds:
        last = made_through.get(kind)
        p = first_period(kind, first, zone) if last is None else following(period_at(kind, last, zone), zone)
        n = 0
        while p.end_ns <= horizon_ns and n < limit:
            out.append(p)
            p = following(p, zone)
            n += 1
    out.sort(key=lambda x: x.order)
    return out[:limit]


def misaligned(p: PlatformPeriod, zone: ZoneInfo) -> str | None:
    """Why the period's timestamps are not on the platform's boundaries, or None when they are."""
    expected = period_at(p.kind, p.start_ns, zone)
    if expected.start_ns != p.start_ns or expected.end_ns != p.end_ns:
        return f"{p.kind} {p.label}: starts/ends off the 00:00-local grid (expected {expected.label})"
    return None

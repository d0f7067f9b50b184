"""Maximum demand (最大需量) from the billing meter's interval energy, and the demand charge.

A demand window is `window_s` (15 minutes on Chinese revenue meters) aligned to the plant-local
clock; its demand is the window's kWh x 3600 / window_s, i.e. the average kW. The window's kWh is
the sum of the counter-derived buckets inside it (`energy_interval`, whose size divides the window),
so the month's maximum demand is read from the same counter data as the books. A window missing
buckets, or holding a Bad one, cannot be trusted to be below the maximum: the month is flagged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from ferrogate.gateway.cost.config import DemandCharge
from ferrogate.gateway.energy.books import IntervalRow
from ferrogate.gateway.energy.counters import worst
from ferrogate.gateway.reading import Quality
from ferrogate.gateway.timeutil import ns_to_datetime

NS_PER_S = 1_000_000_000
NS_PER_H = 3600 * NS_PER_S
PARTIAL_WINDOW = "partial_window"  # a demand window without all its buckets


@dataclass(frozen=True, slots=True)
class DemandWindow:
    start_ns: int
    end_ns: int
    kwh: float
    kw: float
    quality: Quality
    complete: bool  # every bucket of the window is there


def window_start(t_ns: int, window_ns: int, tz: ZoneInfo) -> int:
    """Start of the demand window holding `t_ns`, aligned to the plant-local clock."""
    offset = ns_to_datetime(t_ns).astimezone(tz).utcoffset() or timedelta(0)
    local = t_ns + int(offset.total_seconds()) * NS_PER_S
    return t_ns - local % window_ns


def window_demands(rows: Iterable[IntervalRow], window_ns: int, tz: ZoneInfo) -> list[DemandWindow]:
    """Demand of each window the buckets fall in (one meter's import buckets), in time order."""
    grouped: dict[int, list[IntervalRow]] = {}
    starts: dict[int, int] = {}  # bucket start -> window start, the zone's offset looked up once per hour
    for row in rows:
        hour = row.start_ns - row.start_ns % NS_PER_H
        if hour not in starts:
            starts[hour] = window_start(hour, window_ns, tz) - hour  # <= 0: windows divide the hour
        start = row.start_ns - (row.start_ns - hour - starts[hour]) % window_ns
        grouped.setdefault(start, []).append(row)
    out = []
    for start in sorted(grouped):
        members = grouped[start]
        kwh = sum(r.value for r in members)
        quality = Quality.GOOD
        for r in members:
            if r.quality is not Quality.GOOD:  # rare: only then rank
                quality = worst(quality, r.quality)
        covered = sum(r.end_ns - r.start_ns for r in members) == window_ns
        out.append(DemandWindow(start, start + window_ns, kwh, kwh * 3600 * NS_PER_S / window_ns, quality, covered))
    return out


@dataclass(frozen=True, slots=True)
class Charge:
    billed_kw: float | None  # max_demand basis
    excess_kw: float  # above the over-contract threshold, charged at the multiplier
    charge_yuan: float


def demand_charge(spec: DemandCharge, max_kw: float | None) -> Charge:
    """基本电费 of a month. Max demand: price x max(max_kw, minimum_kw) + price x (multiplier - 1) x
    the demand above the over-contract threshold. Capacity: price x kVA, whatever the demand."""
    if spec.basis == "capacity":
        assert spec.yuan_per_kva_month is not None and spec.capacity_kva is not None
        return Charge(None, 0.0, spec.yuan_per_kva_month * spec.capacity_kva)
    assert spec.yuan_per_kw_month is not None
    actual = max_kw or 0.0
    billed = max(actual, spec.minimum_kw or 0.0)
    excess = 0.0
    extra = 0.0
    if spec.over_contract is not None and spec.contracted_kw is not None:
        excess = max(0.0, actual - spec.contracted_kw * spec.over_contract.above_percent / 100.0)
        extra = spec.yuan_per_kw_month * (spec.over_contract.multiplier - 1.0) * excess
    return Charge(billed, excess, spec.yuan_per_kw_month * billed + extra)

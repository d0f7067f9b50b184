"""Energy split across time-of-use bands, and what it costs.

A window (a heat, a tap) is cut at every band boundary inside it and each piece's kWh is read off
the unit's cumulative electricity curve (`energy/events.Curve`, built from the counter readings):
exact where a reading falls on the boundary, linearly interpolated between the two readings around
it otherwise, so the pieces add up to the window's own kWh. Buckets (15-minute interval energy)
are priced by the band they lie in; the configuration puts band boundaries on the bucket grid, so
no bucket is cut.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ferrogate.gateway.cost.config import VALLEY_PERIODS, TouPeriod
from ferrogate.gateway.cost.tariff import TouSchedule
from ferrogate.gateway.energy.allocation import Windowed
from ferrogate.gateway.energy.books import IntervalRow

NO_TARIFF = "no_tariff"  # some kWh fell where no tariff edition was in force: not priced


@dataclass(slots=True)
class TouSplit:
    """kWh per time-of-use period and their energy cost (in total and per period)."""

    kwh: dict[TouPeriod, float] = field(default_factory=dict)
    yuan: dict[TouPeriod, float] = field(default_factory=dict)
    cost_yuan: float = 0.0
    untariffed_kwh: float = 0.0
    tariffs: set[str] = field(default_factory=set)

    def add(self, period: TouPeriod | None, price: float | None, tariff: str | None, kwh: float) -> None:
        if period is None or price is None:
            self.untariffed_kwh += kwh
            return
        self.kwh[period] = self.kwh.get(period, 0.0) + kwh
        self.yuan[period] = self.yuan.get(period, 0.0) + kwh * price
        self.cost_yuan += kwh * price
        if tariff is not None:
            self.tariffs.add(tariff)

    def merge(self, other: TouSplit) -> None:
        for period, kwh in other.kwh.items():
            self.kwh[period] = self.kwh.get(period, 0.0) + kwh
        for period, yuan in other.yuan.items():
            self.yuan[period] = self.yuan.get(period, 0.0) + yuan
        self.cost_yuan += other.cost_yuan
        self.untariffed_kwh += other.untariffed_kwh
        self.tariffs |= other.tariffs

    @property
    def priced_kwh(self) -> float:
        return sum(self.kwh.values())

    @property
    def total_kwh(self) -> float:
        return self.priced_kwh + self.untariffed_kwh

    @property
    def yuan_per_kwh(self) -> float | None:
        """Average price paid (energy charge only)."""
        priced = self.priced_kwh
        return self.cost_yuan / priced if priced > 0 else None

    @property
    def valley_share_percent(self) -> float | None:
        total = self.total_kwh
        if total <= 0:
            return None
        return sum(kwh for p, kwh in self.kwh.items() if p in VALLEY_PERIODS) / total * 100.0

    @property
    def flags(self) -> set[str]:
        return {NO_TARIFF} if self.untariffed_kwh else set()


def split_window(energy: Windowed, schedule: TouSchedule, t0_ns: int, t1_ns: int) -> TouSplit:
    """kWh of [t0_ns, t1_ns) per band, read off the cumulative curve at each band boundary."""
    out = TouSplit()
    for band in schedule.bands(t0_ns, t1_ns):
        out.add(band.period, band.yuan_per_kwh, band.tariff, energy.between(band.start_ns, band.end_ns).value)
    return out


def split_buckets(rows: Iterable[IntervalRow], schedule: TouSchedule) -> TouSplit:
    """Interval energy priced band by band (a bucket cut by a boundary, which the configuration
    rules out, would be shared in proportion to time)."""
    out = TouSplit()
    for row in rows:
        span = row.end_ns - row.start_ns
        for band in schedule.bands(row.start_ns, row.end_ns):
            share = (band.end_ns - band.start_ns) / span
            out.add(band.period, band.yuan_per_kwh, band.tariff, row.value * share)
    return out

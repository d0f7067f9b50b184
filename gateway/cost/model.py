"""Resolve the `cost:` section against the plant and its accounting model: the billing meter, the
tariff editions as one schedule, the demand and surcharge rules. Every problem is reported with its
YAML path (a gap or overlap between two bands names the band), so `ferrogate check-config` prints
file, line and reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from ferrogate.gateway.cost.config import CostConfig, DayType, DemandCharge, Schedule, Tariff
from ferrogate.gateway.cost.tariff import TouSchedule, minutes
from ferrogate.gateway.energy.config import AccountingConfig
from ferrogate.gateway.energy.model import AccountingModel, EnergySource, Location, Problem, resolve

if TYPE_CHECKING:
    from ferrogate.gateway.config import PlantConfig

DAY_MINUTES = 24 * 60
ErrFn = Callable[[Location, str], None]


@dataclass
class CostModel:
    config: CostConfig
    accounting: AccountingModel
    schedule: TouSchedule
    meter: str  # asset of the billing meter
    meter_source: EnergySource

    @property
    def site(self) -> str:
        return self.accounting.site

    def demand_charge_on(self, d: date) -> tuple[Tariff, DemandCharge] | None:
        """The demand charge of the tariff edition in force on plant-local date `d`."""
        tariff = self.schedule.tariff_on(d)
        if tariff is None or tariff.demand_charge is None:
            return None
        return tariff, tariff.demand_charge

    def demand_limit_kw(self, d: date) -> float | None:
        """The live alarm's maximum: configured, else the contracted maximum demand in force."""
        alarm = self.config.demand_alarm
        if alarm is not None and alarm.limit_kw is not None:
            return alarm.limit_kw
        found = self.demand_charge_on(d)
        return found[1].contracted_kw if found is not None else None


def resolve_cost(
    plant: PlantConfig, cfg: CostConfig, accounting_cfg: AccountingConfig | None
) -> tuple[CostModel | None, list[Problem]]:
    """The cost section resolved against the plant model and its (resolved) accounting section."""
    if accounting_cfg is None:
        return None, [(("cost",), "the cost section prices the books' energy: it needs an 'accounting' section")]
    accounting, _ = resolve(plant, accounting_cfg)
    if accounting is None:
        return None, []  # reported by the accounting section's own check
    problems: list[Problem] = []

    def err(where: Location, msg: str) -> None:
        problems.append((("cost", *where), msg))

    meter = cfg.meter or accounting_cfg.incomer
    source = accounting.consumers.get(meter) if meter is not None else None
    if meter is None:
        err(("meter",), "no billing meter: set cost.meter or accounting.incomer")
    elif source is None:
        err(("meter",), f"{meter!r} is not metered by the books: use accounting.incomer or a unit's electricity asset")
    interval_s = accounting_cfg.interval_s
    _check_tariffs(cfg, interval_s, err)
    products = {p.id for p in accounting_cfg.products}
    seen: set[str] = set()
    for i, rule in enumerate(cfg.surcharges):
        if rule.id in seen:
            err(("surcharges", i, "id"), f"duplicate surcharge id {rule.id!r}")
        seen.add(rule.id)
        for j, product in enumerate(rule.products):
            if product not in products:
                err(("surcharges", i, "products", j), f"{product!r} is not in accounting.products")
    contracted = any(t.demand_charge is not None and t.demand_charge.contracted_kw for t in cfg.tariffs)
    if cfg.demand_alarm is not None and cfg.demand_alarm.limit_kw is None and not contracted:
        err(("demand_alarm", "limit_kw"), "give limit_kw, or contracted_kw in a tariff's demand_charge")
    if cfg.demand_alarm is not None and source is not None and source.counter is None:
        err(("demand_alarm",), f"the demand alarm needs an electricity_import counter on {meter!r}")
    if problems or meter is None or source is None:
        return None, problems
    timezone = accounting_cfg.calendar.timezone or plant.site.timezone
    schedule = TouSchedule(cfg.tariffs, timezone, cfg.weekend_days, cfg.holidays)
    return CostModel(cfg, accounting, schedule, meter, source), problems


def _check_tariffs(cfg: CostConfig, interval_s: int, err: ErrFn) -> None:
    ids: set[str] = set()
    starts: dict[date, int] = {}
    for i, tariff in enumerate(cfg.tariffs):
        where: Location = ("tariffs", i)
        if tariff.id in ids:
            err((*where, "id"), f"duplicate tariff id {tariff.id!r}")
        ids.add(tariff.id)
        if tariff.effective_from in starts:
            err((*where, "effective_from"), f"tariffs[{starts[tariff.effective_from]}] starts on the same date")
        starts.setdefault(tariff.effective_from, i)
        priced = set()
        for j, price in enumerate(tariff.prices):
            if price.period in priced:
                err((*where, "prices", j, "period"), f"period {price.period.value!r} is priced twice")
            priced.add(price.period)
        covered: dict[tuple[int, DayType], int] = {}
        for j, schedule in enumerate(tariff.schedules):
            _check_bands(schedule, (*where, "schedules", j), {p.value for p in priced}, interval_s, err)
            for month in schedule.months:
                for day_type in schedule.day_types:
                    if (month, day_type) in covered:
                        err(
                            (*where, "schedules", j),
                            f"month {month} {day_type.value} is already in schedules[{covered[(month, day_type)]}]",
                        )
                    covered.setdefault((month, day_type), j)
        missing = [(m, d) for m in range(1, 13) for d in DayType if (m, d) not in covered]
        if missing:
            listed = ", ".join(f"{m}/{d.value}" for m, d in missing[:6]) + (" ..." if len(missing) > 6 else "")
            err((*where, "schedules"), f"no schedule for month/day type {listed}: every day needs its bands")
        charge = tariff.demand_charge
        if charge is not None and (charge.window_s % interval_s or 3600 % charge.window_s):
            err(
                (*where, "demand_charge", "window_s"),
                f"must be a multiple of accounting.interval_s ({interval_s} s) and divide 3600",
            )


def _check_bands(schedule: Schedule, where: Location, priced: set[str], interval_s: int, err: ErrFn) -> None:
    """Bands in order from 00:00 to 24:00, each starting where the previous one ended, on the
    accounting bucket grid (so every bucket lies in one band), each period priced."""
    previous_end = 0
    for k, band in enumerate(schedule.bands):
        at: Location = (*where, "bands", k)
        start, end = minutes(band.start), minutes(band.end)
        if k == 0 and start != 0:
            err((*at, "start"), f"the first band must start at 00:00, not {band.start}")
        elif start > previous_end:
            err((*at, "start"), f"gap: {band.start} leaves {_hhmm(previous_end)}-{band.start} without a period")
        elif start < previous_end:
            err((*at, "start"), f"overlap: {band.start} is before the previous band's end {_hhmm(previous_end)}")
        if end <= start:
            err((*at, "end"), f"{band.end} is not after the start {band.start}")
        for name, value in (("start", start), ("end", end)):
            if (value * 60) % interval_s:
                err((*at, name), f"{_hhmm(value)} is not on the {interval_s} s bucket grid (accounting.interval_s)")
        if band.period.value not in priced:
            err((*at, "period"), f"no price for period {band.period.value!r} in this tariff's prices")
        previous_end = max(previous_end, end)
    if previous_end != DAY_MINUTES:
        last = (*where, "bands", len(schedule.bands) - 1, "end")
        err(last, f"the last band must end at 24:00, not {_hhmm(previous_end)}")


def _hhmm(total_minutes: int) -> str:
    return f"{total_minutes // 60:02d}:{total_minutes % 60:02d}"

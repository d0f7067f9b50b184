"""The cost books: what the energy books' heats, taps and buckets cost under the plant's tariff.

- per record (heat, tap, continuous interval): kWh in each time-of-use period, split at the band
  boundaries by the unit's counter curve (`tou.split_window`), energy cost, yuan/t, valley share;
- per shift, day and month, per unit and product: sums over the records that ended in the period
  (a heat belongs to the period of its tap, records without a known previous tap are left out, as
  in the energy books), so a period's cost is exactly the sum of its heats' costs;
- per period for the plant: the billing meter's buckets priced band by band (the calendar window);
- per month: the maximum demand and its charge, and each product's efficiency surcharge.

Pure: the caller supplies records, curves, buckets and positions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ferrogate.gateway.cost.config import DEMAND_WINDOW_S, TouPeriod
from ferrogate.gateway.cost.demand import PARTIAL_WINDOW, DemandWindow, demand_charge, window_demands
from ferrogate.gateway.cost.model import CostModel
from ferrogate.gateway.cost.positions import positions
from ferrogate.gateway.cost.surcharge import PositionInput, SurchargeResult, assess
from ferrogate.gateway.cost.tou import TouSplit, split_buckets, split_window
from ferrogate.gateway.energy.aggregate import Period, PeriodKind
from ferrogate.gateway.energy.allocation import Windowed
from ferrogate.gateway.energy.books import ALL_PERIODS, IMPORT, BooksResult, IntervalRow, Kpi
from ferrogate.gateway.energy.counters import worst
from ferrogate.gateway.energy.production import NO_PREVIOUS_TAP, ProductionRecord
from ferrogate.gateway.reading import Quality

NS_PER_S = 1_000_000_000


def split_fields(split: TouSplit, tonnes: float | None) -> dict[str, Any]:
    """The figures of a split, as written to InfluxDB and MQTT and served by the API."""
    fields: dict[str, Any] = {"electricity_kwh": split.total_kwh}
    for period in TouPeriod:
        if period in split.kwh:
            fields[f"kwh_{period.value}"] = split.kwh[period]
            fields[f"yuan_{period.value}"] = split.yuan.get(period)  # none in rows stored before it existed
    fields |= {
        "cost_yuan": split.cost_yuan,
        "yuan_per_kwh": split.yuan_per_kwh,
        "yuan_per_t": split.cost_yuan / tonnes if tonnes else None,
        "valley_share_percent": split.valley_share_percent,
        "untariffed_kwh": split.untariffed_kwh or None,
        "tariffs": ",".join(sorted(split.tariffs)) or None,
    }
    return fields


@dataclass(slots=True)
class RecordCost:
    """What one heat, tap or continuous interval's electricity cost."""

    id: str
    unit: str
    product: str
    kind: str
    start_ns: int
    end_ns: int
    tonnes: float | None
    split: TouSplit
    quality: Quality
    flags: set[str] = field(default_factory=set)

    def fields(self) -> dict[str, Any]:
        head = {"id": self.id, "start_ns": self.start_ns, "tonnes_t": self.tonnes}
        return {**head, **split_fields(self.split, self.tonnes)}


@dataclass(slots=True)
class CostPeriod:
    scope: str  # unit, product, plant
    subject: str
    period: Period
    complete: bool
    records: int
    excluded: int
    tonnes: float | None  # None for the plant (a calendar window of the billing meter)
    split: TouSplit
    quality: Quality
    flags: set[str] = field(default_factory=set)

    def fields(self) -> dict[str, Any]:
        counts = {"records": self.records, "excluded_records": self.excluded} if self.scope != "plant" else {}
        return {**counts, "tonnes_t": self.tonnes, **split_fields(self.split, self.tonnes)}


@dataclass(slots=True)
class MonthDemand:
    period: Period
    complete: bool
    meter: str
    window_s: int
    max_kw: float | None
    max_window_start_ns: int | None
    windows: int
    tariff: str | None
    basis: str | None  # max_demand, capacity; None: the tariff has no demand charge
    price: float | None  # yuan/kW-month or yuan/kVA-month
    contracted_kw: float | None
    capacity_kva: float | None
    billed_kw: float | None
    excess_kw: float | None
    charge_yuan: float | None
    quality: Quality
    flags: set[str] = field(default_factory=set)

    def fields(self) -> dict[str, Any]:
        return {
            "window_s": self.window_s,
            "max_kw": self.max_kw,
            "max_window_start_ns": self.max_window_start_ns,
            "windows": self.windows,
            "tariff": self.tariff,
            "basis": self.basis,
            "price": self.price,
            "contracted_kw": self.contracted_kw,
            "capacity_kva": self.capacity_kva,
            "billed_kw": self.billed_kw,
            "excess_kw": self.excess_kw,
            "charge_yuan": self.charge_yuan,
        }


@dataclass(slots=True)
class MonthSurcharge:
    period: Period
    complete: bool
    result: SurchargeResult


@dataclass
class CostResult:
    records: list[RecordCost] = field(default_factory=list)
    periods: list[CostPeriod] = field(default_factory=list)
    demands: list[MonthDemand] = field(default_factory=list)
    surcharges: list[MonthSurcharge] = field(default_factory=list)


def month_kpis(kpis: Iterable[Kpi], month: Period) -> dict[str, dict[str, Any]]:
    """Product id -> fields of the product's KPI for `month` (the benchmark position's input)."""
    return {
        k.subject: k.fields
        for k in kpis
        if k.scope == "product" and k.period.kind is PeriodKind.month and k.period.start_ns == month.start_ns
    }


def _excluded(rec: ProductionRecord | RecordCost) -> bool:
    return NO_PREVIOUS_TAP in rec.flags


class CostBooks:
    def __init__(self, model: CostModel) -> None:
        self.model = model
        self.schedule = model.schedule
        self.tz = model.schedule.tz

    # --- records ------------------------------------------------------------------------------

    def record_cost(self, rec: ProductionRecord, electricity: Windowed) -> RecordCost:
        split = split_window(electricity, self.schedule, rec.start_ns, rec.end_ns)
        quality = rec.quality if not split.untariffed_kwh else worst(rec.quality, Quality.UNCERTAIN)
        return RecordCost(
            rec.id, rec.unit, rec.product, rec.kind, rec.start_ns, rec.end_ns, rec.tonnes, split, quality,
            set(rec.flags) | split.flags,
        )  # fmt: skip

    def record_costs(
        self, records: Iterable[ProductionRecord], electricity: Mapping[str, Windowed]
    ) -> list[RecordCost]:
        """Costs of the records whose unit's curve is at hand (records just derived)."""
        return [self.record_cost(r, electricity[r.unit]) for r in records if r.unit in electricity]

    # --- periods ------------------------------------------------------------------------------

    def periods(
        self, period: Period, complete: bool, costs: Iterable[RecordCost], intervals: Iterable[IntervalRow]
    ) -> list[CostPeriod]:
        """Unit and product costs of the records that ended in the period; the plant's from the
        billing meter's buckets inside it."""
        by_unit: dict[str, CostPeriod] = {}
        for unit in self.model.accounting.units:
            by_unit[unit.asset] = self._empty("unit", unit.asset, period, complete)
        for cost in costs:
            row = by_unit.get(cost.unit)
            if row is None or not period.holds_end(cost.end_ns):
                continue
            if _excluded(cost):
                row.excluded += 1
                row.flags.add(NO_PREVIOUS_TAP)
                continue
            row.records += 1
            row.tonnes = (row.tonnes or 0.0) + (cost.tonnes or 0.0)
            row.split.merge(cost.split)
            row.quality = worst(row.quality, cost.quality)
            row.flags |= cost.flags
        by_product: dict[str, CostPeriod] = {}
        for unit in self.model.accounting.units:
            product = by_product.setdefault(unit.product, self._empty("product", unit.product, period, complete))
            _merge(product, by_unit[unit.asset])
        return [*by_unit.values(), *by_product.values(), self._plant(period, complete, intervals)]

    def _empty(self, scope: str, subject: str, period: Period, complete: bool) -> CostPeriod:
        quality = Quality.GOOD if complete else Quality.UNCERTAIN
        return CostPeriod(scope, subject, period, complete, 0, 0, 0.0, TouSplit(), quality)

    def _plant(self, period: Period, complete: bool, intervals: Iterable[IntervalRow]) -> CostPeriod:
        rows = self.meter_rows(period, intervals)
        out = self._empty("plant", self.model.site, period, complete)
        out.tonnes = None
        out.split = split_buckets(rows, self.schedule)
        for r in rows:
            if r.quality is not Quality.GOOD or r.flags:
                out.quality = worst(out.quality, r.quality)
                out.flags.update(r.flags)
        out.flags |= out.split.flags
        return out

    def meter_rows(self, period: Period, intervals: Iterable[IntervalRow]) -> list[IntervalRow]:
        """The billing meter's import buckets inside the period, in time order."""
        meter = self.model.meter
        rows = [
            r
            for r in intervals
            if r.asset == meter and r.role == IMPORT and period.start_ns <= r.start_ns and r.end_ns <= period.end_ns
        ]
        return sorted(rows, key=lambda r: r.start_ns)

    # --- month: demand and surcharges -----------------------------------------------------------

    def demand(self, month: Period, complete: bool, intervals: Iterable[IntervalRow]) -> MonthDemand:
        """The month's maximum demand of the billing meter and the demand charge of the tariff in
        force on the month's first day."""
        found = self.model.demand_charge_on(month.local_date)
        tariff, spec = found if found is not None else (None, None)
        window_s = spec.window_s if spec is not None else DEMAND_WINDOW_S
        windows = window_demands(self.meter_rows(month, intervals), window_s * NS_PER_S, self.tz)
        top: DemandWindow | None = max(windows, key=lambda w: w.kw, default=None)
        quality = Quality.GOOD if complete else Quality.UNCERTAIN
        flags: set[str] = set()
        for w in windows:
            if w.quality is not Quality.GOOD:
                quality = worst(quality, w.quality)
            if not w.complete:
                flags.add(PARTIAL_WINDOW)
        out = MonthDemand(
            month, complete, self.model.meter, window_s, top.kw if top else None, top.start_ns if top else None,
            len(windows), tariff.id if tariff else None, None, None, None, None, None, None, None, quality, flags,
        )  # fmt: skip
        if spec is not None:
            charge = demand_charge(spec, out.max_kw)
            out.basis = spec.basis
            out.price = spec.yuan_per_kw_month if spec.basis == "max_demand" else spec.yuan_per_kva_month
            out.contracted_kw, out.capacity_kva = spec.contracted_kw, spec.capacity_kva
            out.billed_kw, out.excess_kw, out.charge_yuan = charge.billed_kw, charge.excess_kw, charge.charge_yuan
        return out

    def month_surcharges(
        self,
        month: Period,
        complete: bool,
        costs: Sequence[CostPeriod],
        kpis: Iterable[Kpi],
        limit_grades: PositionInput | None = None,
    ) -> list[MonthSurcharge]:
        """The month's surcharges, positions from the books' month KPIs (and a limit-grade input)."""
        found = self.surcharges(month, costs, positions(month_kpis(kpis, month), limit_grades))
        return [MonthSurcharge(month, complete, r) for r in found]

    def compute(self, books: BooksResult, limit_grades: PositionInput | None = None) -> CostResult:
        """Every cost figure of the periods the energy books computed (tests, one-off recomputes)."""
        out = CostResult(self.record_costs(books.records, books.electricity))
        calendar = self.model.accounting.calendar
        for kind in ALL_PERIODS:
            for period in calendar.periods(kind, books.start_ns, books.end_ns):
                complete = books.start_ns <= period.start_ns and period.end_ns <= books.horizon_ns
                rows = self.periods(period, complete, out.records, books.intervals)
                out.periods.extend(rows)
                if kind is PeriodKind.month:
                    out.demands.append(self.demand(period, complete, books.intervals))
                    out.surcharges.extend(self.month_surcharges(period, complete, rows, books.kpis, limit_grades))
        return out

    def surcharges(
        self, month: Period, product_costs: Sequence[CostPeriod], position: PositionInput
    ) -> list[SurchargeResult]:
        """Each surcharge rule on each of its products' month electricity (kWh of the records that
        ended in the month), at the product's position."""
        kwh = {c.subject: c.split.total_kwh for c in product_costs if c.scope == "product"}
        return [
            assess(rule, product, kwh.get(product, 0.0), position(rule, product, month))
            for rule in self.model.config.surcharges
            for product in rule.products
        ]


def _merge(into: CostPeriod, other: CostPeriod) -> None:
    into.records += other.records
    into.excluded += other.excluded
    into.tonnes = (into.tonnes or 0.0) + (other.tonnes or 0.0)
    into.split.merge(other.split)
    into.quality = worst(into.quality, other.quality)
    into.flags |= other.flags

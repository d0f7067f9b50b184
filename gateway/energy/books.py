"""The books, in two stages (docs/accounting.md §1):

1. `derive`: from the readings of a time window to interval quantities (fixed buckets per asset and
   meter role) and heat/tap records (every quantity a unit was charged with between two taps);
2. `kpis` / `balances`: period figures (per unit, product and plant; shift, day, month) summed
   from stage-1 rows only, so a month needs its records and buckets, not a month of raw readings.

Pure: the caller supplies the readings (live from MQTT or re-read from InfluxDB) and decides what
to write and publish.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ferrogate.gateway.energy import reference as ref
from ferrogate.gateway.energy.aggregate import Period, PeriodKind, Totals, totals_by_period
from ferrogate.gateway.energy.allocation import (
    Balance,
    Windowed,
    balance,
    fixed_shares,
    pro_rata_remainder,
    windows,
)
from ferrogate.gateway.energy.benchmark import BenchmarkResult, assess
from ferrogate.gateway.energy.carbon import carbon
from ferrogate.gateway.energy.config import AllocationRule, ProductionKind
from ferrogate.gateway.energy.counters import counter_columns, power_intervals, worst
from ferrogate.gateway.energy.crosscheck import Readings, checked
from ferrogate.gateway.energy.events import Amount, Curve, bridged
from ferrogate.gateway.energy.indicators import green_share, waste_heat_share, water_reuse_rate
from ferrogate.gateway.energy.kgce import comprehensive
from ferrogate.gateway.energy.model import AccountingModel, EnergySource, Meter, UnitModel
from ferrogate.gateway.energy.production import (
    ProductionRecord,
    UnitSources,
    continuous_records,
    detect_taps,
    tap_records,
)
from ferrogate.gateway.energy.reference import Factor, GridChoice
from ferrogate.gateway.energy.series import Series, usable
from ferrogate.gateway.reading import Quality

Store = Mapping[tuple[str, str], Series]
NS_PER_S = 1_000_000_000
ALL_PERIODS = (PeriodKind.shift, PeriodKind.day, PeriodKind.month)
IMPORT, EXPORT = "electricity_import", "electricity_export"
WATER_FRESH, WATER_RECIRCULATED = "water_fresh_intake", "water_recirculated"
_EMPTY = Series()
# (asset, role, source, unit, curve) of one derived bucket series
Bucket = tuple[str, str, str, str, Windowed]


class Summed:
    """Several windowed quantities as one (a unit fed by two meters, plus allocated shares)."""

    def __init__(self, parts: Sequence[Windowed]) -> None:
        self.parts = list(parts)

    def between(self, t0_ns: int, t1_ns: int) -> Amount:
        out = Amount()
        for part in self.parts:
            out.add(part.between(t0_ns, t1_ns))
        return out

    def windows(self, t0s: Sequence[int], t1s: Sequence[int]) -> tuple[list[float], list[Quality]]:
        """`between`'s value and quality for many windows in time order (as `Curve.windows`)."""
        values = [0.0] * len(t0s)
        qualities = [Quality.GOOD] * len(t0s)
        for part in self.parts:
            part_values, part_qualities = windows(part, t0s, t1s)
            values = [v + p for v, p in zip(values, part_values, strict=True)]  # Amount.add's sum, in order
            if any(p is not Quality.GOOD for p in part_qualities):
                qualities = [worst(q, p) for q, p in zip(qualities, part_qualities, strict=True)]
        return values, qualities


@dataclass(slots=True)
class IntervalRow:
    """Derived quantity of one meter role of an asset over one bucket [start, end)."""

    asset: str
    role: str  # electricity_import, electricity_export, product_counter, water_..., or a consumable's meter role
    source: str  # counter, power
    unit: str
    start_ns: int
    end_ns: int
    value: float
    quality: Quality
    flags: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.asset, self.role, self.start_ns)


@dataclass(slots=True)
class Kpi:
    scope: str  # unit, product, plant
    subject: str  # asset id, product id or site id
    period: Period
    complete: bool  # the period ended before the data horizon
    fields: dict[str, Any]
    quality: Quality
    flags: list[str]
    provenance: dict[str, dict[str, Any]]


@dataclass(slots=True)
class BalanceRow:
    period: Period
    complete: bool
    balance: Balance


@dataclass
class Derived:
    start_ns: int
    end_ns: int
    horizon_ns: int  # readings of every meter reach at least this far
    intervals: list[IntervalRow] = field(default_factory=list)
    records: list[ProductionRecord] = field(default_factory=list)
    # unit -> its electricity (own meters + allocated shares) over any window, from the counter
    # curves: finer than the buckets (what the cost layer splits heats by at tariff boundaries)
    electricity: dict[str, Windowed] = field(default_factory=dict)


@dataclass
class BooksResult(Derived):
    kpis: list[Kpi] = field(default_factory=list)
    balances: list[BalanceRow] = field(default_factory=list)


def _scaled(series: Series, factor: float) -> tuple[list[int], list[float], list[Quality]]:
    times, values, qualities = usable(series)
    if factor != 1.0:
        values = [v * factor for v in values]
    return times, values, qualities


class Books:
    def __init__(self, model: AccountingModel) -> None:
        self.model = model
        self.interval_ns = model.config.interval_s * NS_PER_S

    # --- stage 1: readings -> curves -> buckets and records --------------------------------------

    def counter_curve(
        self, store: Store, meter: Meter, power: Curve | None = None, power_readings: Readings | None = None
    ) -> Curve:
        """A counter's curve; with the asset's active power, intervals that disagree with its
        integral are flagged (`crosscheck`) and those the counter could not account are bridged."""
        cols = counter_columns(*_scaled(store.get(meter.key, _EMPTY), meter.to_base), meter.spec)
        gap_ns = int(self.model.config.interpolation_gap_s * NS_PER_S)
        if power_readings is not None:
            cols = checked(cols, power_readings, meter.spec, self.model.config.power_check_tolerance, gap_ns)
        return Curve(bridged(cols, power, gap_ns), gap_ns)

    def power_curve(self, readings: Readings) -> Curve:
        return Curve(power_intervals(*readings, self.model.config.power_gap_s))

    def energy_curve(self, store: Store, src: EnergySource) -> tuple[Curve, str]:
        readings = _scaled(store.get(src.power.key, _EMPTY), src.power.to_base) if src.power is not None else None
        power = self.power_curve(readings) if readings is not None else None
        if src.counter is not None:
            return self.counter_curve(store, src.counter, power, readings), "counter"
        assert power is not None
        return power, "power"

    def horizon(self, store: Store, end_ns: int) -> int:
        """The time up to which every reporting meter has readings. A meter silent for longer than
        `max_wait_s` behind the newest one does not hold the books back: its gap shows as
        partial coverage (Uncertain) in the buckets and records it touches."""
        series = (store.get(m.key) for m in self.model.meters())
        lasts = [t for s in series if s is not None and (t := s.last_usable_ns) is not None]
        if not lasts:
            return end_ns
        wait = int(self.model.config.max_wait_s * NS_PER_S)
        newest = max(lasts)
        return min([end_ns, *(t for t in lasts if t >= newest - wait)])

    def derive(self, store: Store, start_ns: int, end_ns: int, since_ns: int | None = None) -> Derived:
        """Buckets and records ending in (start_ns, end_ns] and before the data horizon, from the
        readings since `since_ns` (default `tap_lookback_h` before `start_ns`, far enough back to
        find each unit's previous tap)."""
        model = self.model
        if since_ns is None:
            since_ns = start_ns - int(model.config.tap_lookback_h * 3600 * NS_PER_S)
        store = {key: series.since(since_ns) for key, series in store.items()}
        horizon = self.horizon(store, end_ns)
        out = Derived(start_ns, end_ns, horizon)
        consumers: dict[str, tuple[Curve, str]] = {a: self.energy_curve(store, s) for a, s in model.consumers.items()}
        generators = {a: self.energy_curve(store, s) for a, s in model.generators.items()}
        allocated = self._allocations({a: c for a, (c, _) in consumers.items()})
        buckets: list[Bucket] = [(a, IMPORT, source, "kWh", c) for a, (c, source) in consumers.items()]
        buckets += [(a, EXPORT, source, "kWh", c) for a, (c, source) in generators.items()]
        if model.incomer_export is not None and model.config.incomer is not None:
            buckets.append(
                (model.config.incomer, EXPORT, "counter", "kWh", self.counter_curve(store, model.incomer_export))
            )
        for asset, role, meter in model.water:
            buckets.append((asset, role, "counter", "m3", self.counter_curve(store, meter)))
        last_end = min(end_ns, horizon)
        for unit in model.units:
            own = [consumers[a][0] for a in unit.electricity]
            metered = {m: self.counter_curve(store, meter) for m, meter in unit.metered.items()}
            sources = UnitSources(
                [c.between for c in own] + [w.between for w in allocated.get(unit.asset, [])],
                [generators[a][0].between for a in unit.waste_heat],
                {m: c.between for m, c in metered.items()},
                unit.per_tonne,
            )
            for material, curve in metered.items():
                role = unit.metered_roles[material]
                buckets.append((unit.asset, role, "counter", model.materials[material].unit, curve))
            out.electricity[unit.asset] = Summed([*own, *allocated.get(unit.asset, [])])
            recs = self._unit_records(store, unit, sources, own, start_ns, last_end, buckets)
            out.records.extend(r for r in recs if start_ns < r.end_ns <= min(end_ns, horizon))
        out.intervals = self._bucket_rows(buckets, start_ns, last_end)
        return out

    def _unit_records(
        self,
        store: Store,
        unit: UnitModel,
        sources: UnitSources,
        own: list[Curve],
        start_ns: int,
        end_ns: int,
        buckets: list[Bucket],
    ) -> list[ProductionRecord]:
        if unit.production is ProductionKind.taps:
            assert unit.tap_counter is not None and unit.tap_weight is not None
            taps = detect_taps(
                store.get(unit.tap_counter.key, _EMPTY),
                store.get(unit.tap_weight.key, _EMPTY),
                store.get(unit.tap_time.key) if unit.tap_time is not None else None,
                unit.tap_weight.to_base,
                unit.tap_time.to_base if unit.tap_time is not None else 1e9,
            )
            data_start = max((c.first_ns for c in own if c.first_ns is not None), default=None)
            return tap_records(unit.asset, unit.product, unit.kind, taps, sources, data_start)
        assert unit.product_counter is not None
        product = self.counter_curve(store, unit.product_counter)
        buckets.append((unit.asset, "product_counter", "counter", "t", product))
        return continuous_records(
            unit.asset, unit.product, product.between, sources, start_ns, end_ns, self.interval_ns
        )

    def _allocations(self, consumers: Mapping[str, Curve]) -> dict[str, list[Windowed]]:
        allocated: dict[str, list[Windowed]] = {}
        units = {u.asset: u for u in self.model.units}
        for alloc in self.model.config.allocations:
            shared = consumers[alloc.meter]
            parts: Mapping[str, Windowed]
            if alloc.rule is AllocationRule.fixed_shares:
                parts = fixed_shares(shared, alloc.shares)
            else:
                own = {t: Summed([consumers[a] for a in units[t].electricity]) for t in alloc.targets}
                parts = pro_rata_remainder(shared, own)
            for target, part in parts.items():
                allocated.setdefault(target, []).append(part)
        return allocated

    def _bucket_rows(self, buckets: list[Bucket], start_ns: int, end_ns: int) -> list[IntervalRow]:
        step = self.interval_ns
        rows = []
        t = start_ns - start_ns % step
        while t + step <= end_ns:
            for asset, role, source, unit, curve in buckets:
                a = curve.between(t, t + step)
                quality = a.quality if a.covered else worst(a.quality, Quality.UNCERTAIN)
                flags = tuple(sorted(a.flags | ({"partial_coverage"} if not a.covered else set())))
                rows.append(IntervalRow(asset, role, source, unit, t, t + step, a.value, quality, flags))
            t += step
        return rows

    # --- stage 2: records and buckets -> period figures -----------------------------------------

    def kpis(
        self, period: Period, complete: bool, records: Iterable[ProductionRecord], intervals: Iterable[IntervalRow]
    ) -> list[Kpi]:
        model = self.model
        day = period.local_date
        grid = model.grid(day.year)
        residual = model.residual(day.year)
        plant = self._plant_window(period, intervals)
        green = _green_kwh(model, period.start_ns, plant.pop("covered_end_ns"))
        # the share of the plant's purchased electricity that was green, applied to each unit's net use
        green_ratio = None
        if green is not None:
            green_ratio = min(1.0, green / plant["purchased_kwh"]) if plant["purchased_kwh"] > 0 else 0.0
        by_unit: dict[str, list[ProductionRecord]] = {}
        for rec in records:
            by_unit.setdefault(rec.unit, []).append(rec)
        out: list[Kpi] = []
        by_product: dict[str, Totals] = {}
        for unit in model.units:
            totals = totals_by_period(by_unit.get(unit.asset, []), period)
            by_product.setdefault(unit.product, Totals()).merge(totals)
            args = (period, complete, totals, grid, residual, green_ratio)
            out.append(self._production_kpi("unit", unit.asset, unit.product, *args))
        products = [
            self._production_kpi("product", pid, pid, period, complete, totals, grid, residual, green_ratio)
            for pid, totals in by_product.items()
        ]
        out.extend(products)
        out.append(self._plant_kpi(period, complete, plant, products, grid, residual, green))
        return out

    def balances(self, period: Period, complete: bool, intervals: Iterable[IntervalRow]) -> list[BalanceRow]:
        groups = self.model.config.balances
        if not groups:
            return []
        buckets = list(intervals)
        sums, exports = _sums(buckets, period, IMPORT), _sums(buckets, period, EXPORT)
        rows = []
        for group in groups:
            main = Amount()
            main.add(sums.get(group.main, Amount(0.0, Quality.BAD, {"no_data"}, False)))
            if group.main in exports and group.main not in self.model.generators:
                main.add(exports[group.main], -1.0)  # sent out of the boundary through the main meter
            for gen in group.generators:
                main.add(exports.get(gen, Amount(0.0, Quality.BAD, {"no_data"}, False)))
            members = {m: sums.get(m, Amount(0.0, Quality.BAD, {"no_data"}, False)) for m in group.members}
            rows.append(BalanceRow(period, complete, balance(group.id, main, members, group.max_loss_percent)))
        return rows

    def compute(
        self, store: Store, start_ns: int, end_ns: int, kinds: Sequence[PeriodKind] = ALL_PERIODS
    ) -> BooksResult:
        """Both stages for the periods overlapping [start_ns, end_ns) (tests, one-off recomputes)."""
        derived = self.derive(store, start_ns, end_ns)
        result = BooksResult(**{k: getattr(derived, k) for k in ("start_ns", "end_ns", "horizon_ns")})
        result.intervals, result.records, result.electricity = derived.intervals, derived.records, derived.electricity
        for kind in kinds:
            for period in self.model.calendar.periods(kind, start_ns, end_ns):
                complete = start_ns <= period.start_ns and period.end_ns <= derived.horizon_ns
                result.kpis.extend(self.kpis(period, complete, derived.records, derived.intervals))
                result.balances.extend(self.balances(period, complete, derived.intervals))
        return result

    def _production_kpi(
        self,
        scope: str,
        subject: str,
        product_id: str,
        period: Period,
        complete: bool,
        totals: Totals,
        grid: GridChoice,
        residual: Factor | None,
        green_ratio: float | None,
    ) -> Kpi:
        model = self.model
        product = model.products[product_id]
        coal = comprehensive(totals, model.electricity_factor, model.materials)
        net_kwh = totals.electricity_kwh - totals.waste_heat_kwh
        green_kwh = None if green_ratio is None else max(net_kwh, 0.0) * green_ratio
        co2 = carbon(totals, model.materials, product.carbon_fixed, grid.factor, residual, green_kwh)
        bench = self.benchmark(product.benchmark_key, coal.per_t, period.local_date)
        fields: dict[str, Any] = {
            "records": totals.records,
            "excluded_records": totals.excluded,
            "tonnes_t": totals.tonnes,
            "electricity_kwh": totals.electricity_kwh,
            "waste_heat_kwh": totals.waste_heat_kwh,
            "net_electricity_kwh": net_kwh,
            "kwh_per_t": totals.kwh_per_t,
            "electricity_kgce": coal.electricity_kgce,
            "waste_heat_kgce": coal.waste_heat_kgce,
            "comprehensive_kgce": coal.total_kgce,
            "kgce_per_t": coal.per_t,
            "tco2_combustion": co2.combustion_t,
            "tco2_process": co2.process_t,
            "tco2_fixed_in_product": co2.fixed_in_product_t,
            "tco2_direct": co2.direct_t,
            "tco2_indirect": co2.indirect_t,
            "tco2_total": co2.total_t,
            "tco2_per_t": co2.per_t,
            "tco2_direct_per_t": co2.direct_t / totals.tonnes if totals.tonnes > 0 else None,
            "grid_tco2_per_mwh": grid.factor.value,
            "grid_level": grid.level,
            "grid_name": grid.name,
            "grid_year": grid.factor.year,
            "benchmark_status": bench.status.value,
            "benchmark_edition": bench.edition,
            "benchmark_kgce_per_t": bench.benchmark_kgce_per_t,
            "baseline_kgce_per_t": bench.baseline_kgce_per_t,
            "margin_to_benchmark_kgce_per_t": bench.margin_to_benchmark,
            "margin_to_baseline_kgce_per_t": bench.margin_to_baseline,
        }
        for material, qty in sorted(totals.consumables.items()):
            fields[f"{material}_{model.materials[material].unit}"] = qty
            if material in coal.carriers_kgce:
                fields[f"{material}_kgce"] = coal.carriers_kgce[material]
        if co2.indirect_market_t is not None:
            fields |= {
                "green_kwh": co2.green_kwh,
                "tco2_indirect_market": co2.indirect_market_t,
                "tco2_total_market": co2.total_market_t,
                "tco2_per_t_market": co2.per_t_market,
            }
        provenance = {name: f.provenance() for name, f in {**coal.factors, **co2.factors}.items()}
        if bench.levels is not None:
            provenance["benchmark"] = bench.levels.benchmark.provenance()
            provenance["baseline"] = bench.levels.baseline.provenance()
        quality = totals.quality if complete else worst(totals.quality, Quality.UNCERTAIN)
        return Kpi(scope, subject, period, complete, fields, quality, sorted(totals.flags), provenance)

    def benchmark(self, key: str | None, value: float | None, day: date) -> BenchmarkResult:
        cfg = self.model.config.benchmark_edition
        edition = ref.edition_for(day) if cfg == "auto" else cfg
        if key is None:
            return assess(value, None, edition, None)
        table = self.model.benchmarks[edition]
        if key not in table:  # e.g. silicon before the 2023 edition: the edition that has it
            edition = next(e for e in ref.EDITIONS if key in self.model.benchmarks[e])
            table = self.model.benchmarks[edition]
        return assess(value, table[key], edition, key)

    def _plant_window(self, period: Period, intervals: Iterable[IntervalRow]) -> dict[str, Any]:
        """Plant-level quantities of the period summed from its buckets (calendar window)."""
        model = self.model
        rows = list(intervals)
        imports, exports = _sums(rows, period, IMPORT), _sums(rows, period, EXPORT)
        # how far buckets reach into the period: green power is counted over the same span
        ends = [r.end_ns for r in rows if r.role == IMPORT and period.start_ns <= r.start_ns < period.end_ns]
        generation = sum(exports[a].value for a in model.generators if a in exports)
        out: dict[str, Any] = {"waste_heat_kwh": generation, "covered_end_ns": max(ends, default=period.start_ns)}
        incomer = model.config.incomer
        if incomer is not None:
            imported = imports[incomer].value if incomer in imports else 0.0
            exported = exports[incomer].value if incomer in exports and incomer not in model.generators else 0.0
            out["imported_kwh"], out["exported_kwh"] = imported, exported
            out["purchased_kwh"] = imported - exported
            out["consumption_kwh"] = imported - exported + generation
        else:
            units_kwh = sum(imports[a].value for u in model.units for a in u.electricity if a in imports)
            out["purchased_kwh"] = units_kwh - generation
            out["consumption_kwh"] = units_kwh
        if model.water:
            fresh = sum(a.value for a in _sums(rows, period, WATER_FRESH).values())
            recirculated = sum(a.value for a in _sums(rows, period, WATER_RECIRCULATED).values())
            out["water_fresh_m3"], out["water_recirculated_m3"] = fresh, recirculated
            out["water_reuse_percent"] = water_reuse_rate(recirculated, fresh)
        return out

    def _plant_kpi(
        self,
        period: Period,
        complete: bool,
        plant: dict[str, Any],
        products: list[Kpi],
        grid: GridChoice,
        residual: Factor | None,
        green: float | None,
    ) -> Kpi:
        """Plant totals: direct emissions and comprehensive energy summed over the products; indirect
        from the plant's own purchased electricity (incomer), which also covers the auxiliaries no
        unit is charged with."""
        model = self.model
        direct = sum(k.fields["tco2_direct"] for k in products)
        indirect = plant["purchased_kwh"] / 1000.0 * grid.factor.value
        fields: dict[str, Any] = {
            **plant,
            "comprehensive_kgce": sum(k.fields["comprehensive_kgce"] for k in products),
            "tco2_direct": direct,
            "tco2_indirect": indirect,
            "tco2_total": direct + indirect,
            "grid_tco2_per_mwh": grid.factor.value,
            "grid_level": grid.level,
            "grid_name": grid.name,
            "grid_year": grid.factor.year,
            "waste_heat_share_percent": waste_heat_share(plant["waste_heat_kwh"], plant["consumption_kwh"]),
        }
        provenance = {"grid": grid.factor.provenance(), "electricity": model.electricity_factor.provenance()}
        if green is not None and residual is not None:
            green_mwh = min(green, max(plant["purchased_kwh"], 0.0)) / 1000.0
            market = (plant["purchased_kwh"] / 1000.0 - green_mwh) * residual.value
            fields |= {
                "green_kwh": green,
                "green_share_percent": green_share(green, plant["consumption_kwh"]),
                "tco2_indirect_market": market,
                "tco2_total_market": direct + market,
            }
            provenance["grid_residual"] = residual.provenance()
        quality = Quality.GOOD if complete else Quality.UNCERTAIN
        flags: set[str] = set()
        for k in products:
            quality = worst(quality, k.quality)
            flags.update(k.flags)
        return Kpi("plant", model.site, period, complete, fields, quality, sorted(flags), provenance)


def _sums(rows: Iterable[IntervalRow], period: Period, role: str) -> dict[str, Amount]:
    """Per asset, the sum of one role's buckets that lie inside the period."""
    out: dict[str, Amount] = {}
    for row in rows:
        if row.role == role and period.start_ns <= row.start_ns and row.end_ns <= period.end_ns:
            out.setdefault(row.asset, Amount()).add(Amount(row.value, row.quality, set(row.flags)))
    return out


def _green_kwh(model: AccountingModel, start_ns: int, end_ns: int) -> float | None:
    """Green power bought in [start_ns, end_ns): each purchase spread evenly over its own dates."""
    if not model.config.green_power:
        return None
    total = 0.0
    cal = model.calendar
    for g in model.config.green_power:
        g_start = cal.day(g.start).start_ns
        g_end = cal.day(g.end).start_ns
        overlap = min(g_end, end_ns) - max(g_start, start_ns)
        if overlap > 0:
            total += g.kwh * overlap / (g_end - g_start)
    return total

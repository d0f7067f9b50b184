"""Resolve the plant file into the accounting model: which points feed which unit, in which units,
and every factor the books will use (reference data + the site's overrides).

`resolve` collects every problem with its YAML path instead of stopping at the first one, so
`ferrogate check-config` can list them all; an unknown product or a factor that is needed but
missing is such a problem, never a silent zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ferrogate.gateway.config import Asset, PlantConfig
from ferrogate.gateway.energy import reference as ref
from ferrogate.gateway.energy.aggregate import ShiftCalendar
from ferrogate.gateway.energy.config import AccountingConfig, ElectricityMethod, FactorValue, ProductionKind, Unit
from ferrogate.gateway.energy.counters import CounterSpec
from ferrogate.gateway.energy.kgce import Material
from ferrogate.gateway.energy.reference import BenchmarkLevels, Factor

Location = tuple[str | int, ...]
Problem = tuple[Location, str]

# unit -> (dimension, factor to the dimension's base unit)
UNITS: dict[str, tuple[str, float]] = {
    "Wh": ("energy", 1e-3),
    "kWh": ("energy", 1.0),
    "MWh": ("energy", 1e3),
    "W": ("power", 1e-3),
    "kW": ("power", 1.0),
    "MW": ("power", 1e3),
    "kg": ("mass", 1e-3),
    "t": ("mass", 1.0),
    "m3": ("volume", 1.0),
    "Nm3": ("volume", 1.0),
    "MJ": ("heat", 1.0),
    "GJ": ("heat", 1e3),
    "s": ("time", 1e9),  # to nanoseconds
    "ms": ("time", 1e6),
}
BASE = {"energy": "kWh", "power": "kW", "mass": "t", "volume": "m3", "heat": "MJ", "time": "ns"}


def conversion(from_unit: str, to_unit: str) -> float | None:
    """Multiplier from one unit to another of the same dimension; None if they do not convert."""
    if to_unit == "ns":
        f = UNITS.get(from_unit)
        return f[1] if f and f[0] == "time" else None
    a, b = UNITS.get(from_unit), UNITS.get(to_unit)
    if a is None or b is None or a[0] != b[0]:
        return None
    return a[1] / b[1]


@dataclass(frozen=True, slots=True)
class Meter:
    """One point the engine reads, and how to turn its value into the engine's unit."""

    device: str
    point: str
    unit: str  # as configured on the point
    to_base: float  # multiply a reading by this to get the engine's unit
    spec: CounterSpec  # only used for cumulative counters

    @property
    def key(self) -> tuple[str, str]:
        return (self.device, self.point)


@dataclass(frozen=True, slots=True)
class EnergySource:
    """An asset's electricity: its counter where it has one, power for integration otherwise."""

    asset: str
    counter: Meter | None
    power: Meter | None


@dataclass(frozen=True, slots=True)
class UnitModel:
    asset: str
    product: str
    kind: str  # eaf_heat, saf_tap, tap, continuous
    production: ProductionKind
    tap_counter: Meter | None
    tap_weight: Meter | None
    tap_time: Meter | None
    product_counter: Meter | None
    electricity: tuple[str, ...]
    waste_heat: tuple[str, ...]
    metered: dict[str, Meter]  # material -> counter
    metered_roles: dict[str, str]  # material -> the counter's meter role (names its bucket series)
    per_tonne: dict[str, float]


@dataclass(frozen=True, slots=True)
class ProductModel:
    id: str
    benchmark_key: str | None  # None: no national benchmark (reported as no_benchmark)
    carbon_fixed: Factor | None  # None: configured not to subtract


@dataclass
class AccountingModel:
    site: str
    config: AccountingConfig
    calendar: ShiftCalendar
    province: str | None
    electricity_factor: Factor
    consumers: dict[str, EnergySource]  # asset -> electricity import
    generators: dict[str, EnergySource]  # asset -> electricity export / generation
    units: list[UnitModel]
    products: dict[str, ProductModel]
    materials: dict[str, Material]
    benchmarks: dict[str, dict[str, BenchmarkLevels | None]]
    grid_provinces: dict[str, dict[int, Factor]]
    grid_regions: dict[str, dict[int, Factor]]
    grid_national: dict[int, Factor]
    grid_residual: dict[int, Factor]
    incomer_export: Meter | None = None
    water: list[tuple[str, str, Meter]] = field(default_factory=list)  # (asset, role, counter)

    def meters(self) -> list[Meter]:
        """Every point the books read (for the MQTT filter and the InfluxDB queries)."""
        out: dict[tuple[str, str], Meter] = {}
        for src in (*self.consumers.values(), *self.generators.values()):
            for m in (src.counter, src.power):
                if m is not None:
                    out[m.key] = m
        for u in self.units:
            for m in (u.tap_counter, u.tap_weight, u.tap_time, u.product_counter, *u.metered.values()):
                if m is not None:
                    out[m.key] = m
        for m in (self.incomer_export, *(w[2] for w in self.water)):
            if m is not None:
                out[m.key] = m
        return list(out.values())

    def grid(self, year: int) -> ref.GridChoice:
        grid = self.config.grid
        return ref.grid_factor(
            grid.year or year,
            self.province,
            grid.region,
            exact=grid.year is not None,
            provinces=self.grid_provinces,
            regions=self.grid_regions,
            national=self.grid_national,
        )

    def residual(self, year: int) -> Factor | None:
        return ref.latest_factor(self.grid_residual, self.config.grid.year or year)


class _Resolver:
    def __init__(self, plant: PlantConfig, cfg: AccountingConfig) -> None:
        self.plant = plant
        self.cfg = cfg
        self.problems: list[Problem] = []
        self.assets: dict[str, Asset] = {a.id: a for a in plant.assets}

    def err(self, where: Location, msg: str) -> None:
        self.problems.append((("accounting", *where), msg))

    def meter(self, asset: Asset, role: str, dimension: str, where: Location, counter: bool = False) -> Meter | None:
        ref_ = next((r for k, r in asset.meters.items() if k.value == role), None)
        if ref_ is None:
            return None
        dev_id, _, point_id = ref_.partition(".")
        try:
            device = self.plant.device(dev_id)
        except KeyError:
            return None  # reported by the plant's own reference check
        point = next((p for p in device.points if p.id == point_id), None)
        if point is None:
            return None
        if dimension == "count":
            factor: float | None = 1.0
        elif dimension in BASE:
            factor = conversion(point.unit, BASE[dimension])
        else:
            factor = conversion(point.unit, dimension)
        if factor is None:
            self.err(where, f"asset {asset.id!r} meter {role} has unit {point.unit!r}, which is not a {dimension} unit")
            return None
        spec = CounterSpec()
        if counter:
            ptype = getattr(point, "type", None)
            integer = ptype is not None and "int" in ptype.value
            modulus = (2 ** (16 * ptype.registers)) * abs(point.scale) * factor if integer else None
            rate = asset.rated_power_kw if dimension == "energy" else None
            spec = CounterSpec(modulus, rate, self.cfg.jump_tolerance, abs(point.scale) * factor if integer else 0.0)
        return Meter(dev_id, point_id, point.unit, factor, spec)

    def energy_source(self, asset_id: str, where: Location, export: bool) -> EnergySource | None:
        asset = self.assets.get(asset_id)
        if asset is None:
            self.err(where, f"unknown asset {asset_id!r}")
            return None
        roles = ("electricity_export", "generation_power") if export else ("electricity_import", "active_power")
        counter = self.meter(asset, roles[0], "energy", where, counter=True)
        power = self.meter(asset, roles[1], "power", where)
        if counter is None and power is None:
            self.err(where, f"asset {asset_id!r} has neither a {roles[0]} nor a {roles[1]} meter")
            return None
        return EnergySource(asset_id, counter, power)


def resolve(plant: PlantConfig, cfg: AccountingConfig | None) -> tuple[AccountingModel | None, list[Problem]]:
    """The plant file's `accounting:` section (`cfg`) resolved against the plant model it sits on."""
    if cfg is None:
        return None, []
    r = _Resolver(plant, cfg)
    materials = _materials(r)
    benchmarks = _benchmarks(r)
    products = _products(r, benchmarks)
    electricity_factor = _electricity_factor(r)
    consumers: dict[str, EnergySource] = {}
    generators: dict[str, EnergySource] = {}

    def consumer(asset_id: str, where: Location) -> EnergySource | None:
        if asset_id not in consumers:
            src = r.energy_source(asset_id, where, export=False)
            if src is None:
                return None
            consumers[asset_id] = src
        return consumers[asset_id]

    units: list[UnitModel] = []
    unit_ids: set[str] = set()
    metered_electricity: set[str] = set()
    for i, u in enumerate(cfg.units):
        unit = _unit(r, i, u, products, materials, consumer, generators)
        if unit is not None:
            if unit.asset in unit_ids:
                r.err(("units", i, "asset"), f"asset {unit.asset!r} is already an accounting unit")
            unit_ids.add(unit.asset)
            metered_electricity.update(unit.electricity)
            units.append(unit)
    for i, alloc in enumerate(cfg.allocations):
        consumer(alloc.meter, ("allocations", i, "meter"))
        if alloc.meter in metered_electricity:
            r.err(("allocations", i, "meter"), f"{alloc.meter!r} is already counted in a unit's electricity")
        for key, name in (("shares", n) for n in alloc.shares):
            if name not in unit_ids:
                r.err(("allocations", i, key, name), f"{name!r} is not an accounting unit")
        for j, name in enumerate(alloc.targets):
            if name not in unit_ids:
                r.err(("allocations", i, "targets", j), f"{name!r} is not an accounting unit")
            elif not any(u.asset == name and u.electricity for u in units):
                r.err(("allocations", i, "targets", j), f"unit {name!r} has no meter of its own")
    for i, group in enumerate(cfg.balances):
        consumer(group.main, ("balances", i, "main"))
        for j, member in enumerate(group.members):
            consumer(member, ("balances", i, "members", j))
        for j, gen in enumerate(group.generators):
            if gen not in generators:
                src = r.energy_source(gen, ("balances", i, "generators", j), export=True)
                if src is not None:
                    generators[gen] = src
    incomer_export = None
    if cfg.incomer is not None:
        src = consumer(cfg.incomer, ("incomer",))
        if src is not None:
            incomer_export = r.meter(r.assets[cfg.incomer], "electricity_export", "energy", ("incomer",), counter=True)
    water = []
    for asset in plant.assets:
        for role in ("water_fresh_intake", "water_recirculated"):
            m = r.meter(asset, role, "volume", ("water",), counter=True)
            if m is not None:
                water.append((asset.id, role, m))
    province = cfg.grid.province or plant.site.province
    grid_tables = _grid_tables(r)
    model = AccountingModel(
        site=plant.site.id,
        config=cfg,
        calendar=ShiftCalendar(
            cfg.calendar.timezone or plant.site.timezone, [(s.name, s.start) for s in cfg.calendar.shifts]
        ),
        province=province,
        electricity_factor=electricity_factor,
        consumers=consumers,
        generators=generators,
        units=units,
        products=products,
        materials=materials,
        benchmarks=benchmarks,
        grid_provinces=grid_tables[0],
        grid_regions=grid_tables[1],
        grid_national=grid_tables[2],
        grid_residual=grid_tables[3],
        incomer_export=incomer_export,
        water=water,
    )
    if cfg.grid.year is not None:
        try:
            model.grid(cfg.grid.year)
        except LookupError as exc:
            r.err(("grid", "year"), str(exc))
    if not grid_tables[2]:
        r.err(("factors", "grid"), "no national grid factor left")
    if cfg.green_power and not grid_tables[3]:
        r.err(("green_power",), "market-based figures need a national_residual grid factor")
    return (None if r.problems else model), r.problems


def _unit(
    r: _Resolver,
    i: int,
    u: Unit,
    products: dict[str, ProductModel],
    materials: dict[str, Material],
    consumer: Callable[[str, Location], EnergySource | None],
    generators: dict[str, EnergySource],
) -> UnitModel | None:
    where: Location = ("units", i)
    asset = r.assets.get(u.asset)
    if asset is None:
        r.err((*where, "asset"), f"unknown asset {u.asset!r}")
        return None
    product = u.product or asset.product
    if product is None:
        r.err((*where, "product"), f"no product: set it here or on asset {asset.id!r}")
        return None
    if product not in products and not any(p.id == product for p in r.cfg.products):
        r.err((*where, "product"), f"product {product!r} is not listed in accounting.products")
    tap_counter = tap_weight = tap_time = product_counter = None
    if u.production is ProductionKind.taps:
        tap_counter = r.meter(asset, "tap_counter", "count", (*where, "production"))
        tap_weight = r.meter(asset, "tap_weight", "mass", (*where, "production"))
        tap_time = r.meter(asset, "tap_time", "ns", (*where, "production"))
        for role, m in (("tap_counter", tap_counter), ("tap_weight", tap_weight)):
            if m is None and not any(k.value == role for k in asset.meters):
                r.err((*where, "production"), f"production 'taps' needs a {role} meter on asset {asset.id!r}")
        kind = {"eaf": "eaf_heat", "submerged_arc_furnace": "saf_tap"}.get(asset.type.value, "tap")
    else:
        product_counter = r.meter(asset, "product_counter", "mass", (*where, "production"), counter=True)
        if product_counter is None and not any(k.value == "product_counter" for k in asset.meters):
            r.err((*where, "production"), f"production 'product_counter' needs a product_counter meter on {asset.id!r}")
        kind = "continuous"
    electricity = tuple(u.electricity if u.electricity is not None else [u.asset])
    for j, name in enumerate(electricity):
        consumer(name, (*where, "electricity", j))
    for j, name in enumerate(u.waste_heat):
        if name not in generators:
            src = r.energy_source(name, (*where, "waste_heat", j), export=True)
            if src is not None:
                generators[name] = src
    metered: dict[str, Meter] = {}
    metered_roles: dict[str, str] = {}
    per_tonne: dict[str, float] = {}
    for j, c in enumerate(u.consumables):
        cw = (*where, "consumables", j)
        material = materials.get(c.material)
        if material is None:
            r.err((*cw, "material"), f"unknown material {c.material!r}; known: {sorted(materials)}")
            continue
        if c.per_tonne is not None:
            per_tonne[c.material] = c.per_tonne
            continue
        asset_id, _, role = (c.meter or "").partition(".")
        owner = r.assets.get(asset_id)
        if owner is None or not any(k.value == role for k in owner.meters):
            r.err((*cw, "meter"), f"no meter {role!r} on asset {asset_id!r}")
            continue
        m = r.meter(owner, role, material.unit, (*cw, "meter"), counter=True)
        if m is not None:
            metered[c.material] = m
            metered_roles[c.material] = role
    return UnitModel(
        u.asset,
        product,
        kind,
        u.production,
        tap_counter,
        tap_weight,
        tap_time,
        product_counter,
        electricity,
        tuple(u.waste_heat),
        metered,
        metered_roles,
        per_tonne,
    )


def _override(
    r: _Resolver, base: Factor | None, v: FactorValue, where: Location, unit: str | None = None
) -> Factor | None:
    try:
        factor = ref.with_override(base, v.value, v.unit, v.source, v.year, v.note)
    except ValueError as exc:
        r.err(where, str(exc))
        return base
    if unit is not None and factor.unit != unit:
        r.err(where, f"unit must be {unit!r}")
    return factor


def _materials(r: _Resolver) -> dict[str, Material]:
    cfg = r.cfg
    defs: dict[str, tuple[str, bool, bool, str, Factor | None, Factor | None]] = {
        m.id: (m.unit, m.energy_carrier, m.emits, m.kind.value, m.kgce, m.co2) for m in ref.MATERIALS.values()
    }
    for i, site in enumerate(cfg.materials):
        if site.id in defs:
            r.err(("materials", i, "id"), f"{site.id!r} is in the reference data already; override its factors instead")
        defs[site.id] = (site.unit, site.energy_carrier, site.emits, site.kind, None, None)
    used = {c.material for u in cfg.units for c in u.consumables}
    out: dict[str, Material] = {}
    for mid, (unit, carrier, emits, kind, kgce, co2) in defs.items():
        if mid in cfg.factors.coefficients:
            kgce = _override(r, kgce, cfg.factors.coefficients[mid], ("factors", "coefficients", mid), f"kgce/{unit}")
            carrier = True
        if mid in cfg.factors.emission:
            co2 = _override(r, co2, cfg.factors.emission[mid], ("factors", "emission", mid), f"tCO2/{unit}")
            emits = True
        if mid in used:
            if carrier and kgce is None:
                r.err(
                    ("factors", "coefficients", mid), f"material {mid!r} is used but has no kgce coefficient; give one"
                )
            if emits and co2 is None:
                r.err(("factors", "emission", mid), f"material {mid!r} is used but has no CO2 factor; give one")
        out[mid] = Material(mid, unit, kgce if carrier else None, co2 if emits else None, kind)
    for section, table in (("coefficients", cfg.factors.coefficients), ("emission", cfg.factors.emission)):
        for mid in table:
            if mid not in defs:
                r.err(("factors", section, mid), f"unknown material {mid!r}")
    return out


def _benchmarks(r: _Resolver) -> dict[str, dict[str, BenchmarkLevels | None]]:
    tables = {edition: dict(levels) for edition, levels in ref.BENCHMARKS.items()}
    for b in r.cfg.factors.benchmarks:
        made = [ref.with_override(None, v, ref.KGCE_PER_T, b.source, b.year) for v in (b.benchmark, b.baseline)]
        tables[b.edition][b.key] = BenchmarkLevels(made[0], made[1])
    return tables


def _products(r: _Resolver, benchmarks: dict[str, dict[str, BenchmarkLevels | None]]) -> dict[str, ProductModel]:
    out: dict[str, ProductModel] = {}
    known_keys = {k for table in benchmarks.values() for k in table}
    for i, p in enumerate(r.cfg.products):
        where: Location = ("products", i)
        known = ref.PRODUCTS.get(p.id)
        if known is None and p.benchmark is None:
            r.err(
                (*where, "id"),
                f"unknown product {p.id!r} (reference products: {sorted(ref.PRODUCTS)}); a site product needs "
                "'benchmark' (a key under factors.benchmarks, or none) and 'carbon_fixed'",
            )
            continue
        key = p.benchmark if p.benchmark is not None else known.benchmark_key if known else None
        if key is None:
            r.err((*where, "benchmark"), f"choose the benchmark for {p.id!r}: one of {list(ref.SILICON_BENCHMARKS)}")
            continue
        if key != "none" and key not in known_keys:
            r.err((*where, "benchmark"), f"no benchmark levels for {key!r}; add them under factors.benchmarks")
        carbon_fixed = None
        if p.carbon_fixed == "reference":
            override = r.cfg.factors.product_carbon.get(p.id)
            base = known.carbon_fixed if known else None
            carbon_fixed = (
                _override(r, base, override, ("factors", "product_carbon", p.id), "tCO2/t") if override else base
            )
            if carbon_fixed is None:
                r.err(
                    (*where, "carbon_fixed"),
                    f"no reference factor for carbon fixed in {p.id!r}: give factors.product_carbon.{p.id} "
                    "or write carbon_fixed: none",
                )
        out[p.id] = ProductModel(p.id, None if key == "none" else key, carbon_fixed)
    return out


def _electricity_factor(r: _Resolver) -> Factor:
    given = r.cfg.factors.electricity
    if r.cfg.electricity_method is ElectricityMethod.equal_value:
        if given is None:
            r.err(("factors", "electricity"), "electricity_method equal_value needs this year's coefficient (kgce/kWh)")
            return ref.ELECTRICITY_EQUIVALENT
        return _override(r, None, given, ("factors", "electricity"), "kgce/kWh") or ref.ELECTRICITY_EQUIVALENT
    if given is not None:
        return _override(r, ref.ELECTRICITY_EQUIVALENT, given, ("factors", "electricity")) or ref.ELECTRICITY_EQUIVALENT
    return ref.ELECTRICITY_EQUIVALENT


GridTable = dict[int, Factor]


def _grid_tables(r: _Resolver) -> tuple[dict[str, GridTable], dict[str, GridTable], GridTable, GridTable]:
    provinces = {k: dict(v) for k, v in ref.GRID_PROVINCES.items()}
    regions = {k: dict(v) for k, v in ref.GRID_REGIONS.items()}
    national = dict(ref.GRID_NATIONAL)
    residual = dict(ref.GRID_NATIONAL_RESIDUAL)
    for i, g in enumerate(r.cfg.factors.grid):
        factor = _override(r, None, g, ("factors", "grid", i), ref.TCO2_PER_MWH)
        if factor is None:
            continue
        if g.level == "province":
            provinces.setdefault(g.name, {})[g.year] = factor
        elif g.level == "region":
            regions.setdefault(g.name, {})[g.year] = factor
        elif g.level == "national":
            national[g.year] = factor
        else:
            residual[g.year] = factor
    return provinces, regions, national, residual

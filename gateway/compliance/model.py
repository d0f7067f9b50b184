"""Resolve the plant file's `compliance:` section against the plant and its accounting model: which
limit entry grades each product (with the site's level overrides), the standing corrections, the
materials of the carbon mass balance and their standing carbon contents, carbon-market processes,
CBAM goods and footprint factors. Every problem is reported with its YAML path.

Without a `compliance:` section the defaults apply: each product graded by its id, CBAM scope by
product id, no carbon-market process, no footprint factor.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ferrogate.gateway.compliance import reference as cref
from ferrogate.gateway.compliance.config import ComplianceConfig, SourcedValue
from ferrogate.gateway.compliance.inputs import INPUTS, InputError, InputSpec, Sourced, SubjectKind, check_value
from ferrogate.gateway.energy.model import AccountingModel
from ferrogate.gateway.energy.reference import Confidence, Factor

if TYPE_CHECKING:
    from ferrogate.gateway.config import PlantConfig

Location = tuple[str | int, ...]
Problem = tuple[Location, str]


def sourced_value(v: SourcedValue, where: str) -> Sourced:
    """A plant-file number with its provenance."""
    prov = {"origin": "plant_file", "value": v.value, "unit": v.unit, "source": v.source, "year": v.year}
    prov |= {"confidence": Confidence.CONFIGURED.value, "verified": v.verified, "where": where}
    if v.note:
        prov["note"] = v.note
    return Sourced(v.value, v.unit, prov)


@dataclass(frozen=True, slots=True)
class ProductLimits:
    product: str
    entry: cref.LimitEntry | None  # None: no_limit_standard or not_mapped
    status: str  # "" when graded; no_limit_standard; not_mapped
    standing: dict[str, Sourced]  # correction inputs given in the plant file


@dataclass(frozen=True, slots=True)
class EtsProcessModel:
    id: str
    name: str
    captive_power_plant: bool
    units: tuple[str, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    product_carbon: bool


@dataclass(frozen=True, slots=True)
class CbamGoodModel:
    product: str
    cn: str
    name: str
    default: Factor | None  # country default before the mark-up
    precursors: dict[str, str]  # material -> CN code
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclass
class ComplianceModel:
    site: str
    site_name: str
    accounting: AccountingModel
    config: ComplianceConfig
    entries: dict[str, cref.LimitEntry]
    limits: dict[str, ProductLimits]
    materials: dict[str, str]  # material id -> unit (accounting, mass balance, site)
    carbon: dict[str, Sourced]  # standing carbon contents from the plant file
    ets: list[EtsProcessModel]
    cbam: dict[str, CbamGoodModel]
    cbam_scope: dict[str, dict[str, str]]  # product -> {status, cn, reason}
    cbam_defaults: dict[str, Factor]  # CN code -> default (reference, replaced by the plant file's)
    footprint_electricity: Sourced | None
    upstream: dict[str, Sourced]
    units: dict[str, str] = field(default_factory=dict)  # accounting unit -> product

    def unit_of(self, subject_material: str) -> tuple[str, str]:
        unit, _, material = subject_material.partition("/")
        return unit, material

    def check_input(self, subject: str, name: str, value: float | str) -> tuple[float | str, str]:
        """The checked value and its unit, or InputError saying why it cannot be taken."""
        spec = INPUTS.get(name)
        if spec is None:
            raise InputError("unknown_input", f"unknown input {name!r}; known: {sorted(INPUTS)}")
        if spec.subject is SubjectKind.product:
            return self._correction(spec, subject, value)
        if spec.subject is SubjectKind.material:
            unit = self.materials.get(subject) or ("t" if subject in self.accounting.products else None)
            if unit is None:
                raise InputError(
                    "unknown_subject", f"no material or product {subject!r}; known: {sorted(self.materials)}"
                )
            if name == "supplier_see" and unit != "t":
                raise InputError("input_not_applicable", f"{subject!r} is measured in {unit}, not tonnes")
            return check_value(spec, value), spec.unit_for(unit)
        unit_id, material = self.unit_of(subject)
        processes = {p.id for p in self.ets if not p.units}  # e.g. a captive power plant without a unit
        if (unit_id not in self.units and unit_id not in processes) or material not in self.materials:
            raise InputError(
                "unknown_subject",
                f"{subject!r} is not '<accounting unit>/<material>' (units: {sorted(self.units)}; processes "
                f"without units: {sorted(processes)}; materials: {sorted(self.materials)})",
            )
        unit_model = next((u for u in self.accounting.units if u.asset == unit_id), None)
        if name == "consumption" and unit_model is not None and material in unit_model.metered:
            raise InputError(
                "metered",
                f"{material!r} of {unit_id!r} is metered ({unit_model.metered[material].key}); the books have it",
            )
        return check_value(spec, value), spec.unit_for(self.materials[material])

    def _correction(self, spec: InputSpec, product: str, value: float | str) -> tuple[float | str, str]:
        limits = self.limits.get(product)
        if limits is None:
            raise InputError("unknown_subject", f"no product {product!r}; known: {sorted(self.limits)}")
        if limits.entry is None or spec.name not in limits.entry.inputs:
            takes = list(limits.entry.inputs) if limits.entry else []
            raise InputError(
                "input_not_applicable",
                f"{product!r} is graded by {limits.entry.key if limits.entry else limits.status}, which takes "
                f"{takes or 'no correction'}, not {spec.name!r}",
            )
        return check_value(spec, value), spec.unit


class _Resolver:
    def __init__(self, plant: PlantConfig, accounting: AccountingModel, cfg: ComplianceConfig) -> None:
        self.plant, self.accounting, self.cfg = plant, accounting, cfg
        self.problems: list[Problem] = []

    def err(self, where: Location, msg: str) -> None:
        self.problems.append((("compliance", *where), msg))


def build(
    plant: PlantConfig, cfg: ComplianceConfig | None, accounting: AccountingModel
) -> tuple[ComplianceModel | None, list[Problem]]:
    """The plant file's `compliance:` section (`cfg`; None: the defaults) resolved against the plant
    and its resolved accounting section."""
    cfg = cfg or ComplianceConfig()
    r = _Resolver(plant, accounting, cfg)
    entries = _entries(r)
    limits = _limits(r, entries)
    materials = _materials(r)
    products = set(accounting.products)
    carbon: dict[str, Sourced] = {}
    for key, v in cfg.carbon_content.items():
        where = ("carbon_content", key)
        unit = materials.get(key) or ("t" if key in products else None)
        if unit is None:
            r.err(where, f"unknown material or product {key!r}")
        elif v.unit != f"tC/{unit}":
            r.err((*where, "unit"), f"unit must be 'tC/{unit}'")
        else:
            carbon[key] = sourced_value(v, f"compliance.carbon_content.{key}")
    units = {u.asset: u.product for u in accounting.units}
    ets = _ets(r, units, materials)
    cbam, scope, defaults = _cbam(r, materials)
    electricity = None
    fp = cfg.footprint
    if fp.electricity is not None:
        if fp.electricity.unit != "kgCO2e/kWh":
            r.err(("footprint", "electricity", "unit"), "unit must be 'kgCO2e/kWh'")
        electricity = sourced_value(fp.electricity, "compliance.footprint.electricity")
    upstream: dict[str, Sourced] = {}
    for key, v in fp.upstream.items():
        where = ("footprint", "upstream", key)
        if key not in materials:
            r.err(where, f"unknown material {key!r}")
        elif v.unit != f"kgCO2e/{materials[key]}":
            r.err((*where, "unit"), f"unit must be 'kgCO2e/{materials[key]}'")
        else:
            upstream[key] = sourced_value(v, f"compliance.footprint.upstream.{key}")
    model = ComplianceModel(
        plant.site.id,
        plant.site.name,
        accounting,
        cfg,
        entries,
        limits,
        materials,
        carbon,
        ets,
        cbam,
        scope,
        defaults,
        electricity,
        upstream,
        units,
    )
    return (None if r.problems else model), r.problems


def _entries(r: _Resolver) -> dict[str, cref.LimitEntry]:
    entries = dict(cref.LIMITS)
    for i, o in enumerate(r.cfg.limits):
        where: Location = ("limits", i)
        entry = entries.get(o.key)
        if entry is None:
            r.err((*where, "key"), f"unknown limit entry {o.key!r}; known: {sorted(entries)}")
            continue
        table = entry.variants.get(o.variant)
        if table is None:
            r.err((*where, "variant"), f"{o.key} has variants {sorted(entry.variants)}")
            continue
        if o.indicator not in table:
            r.err((*where, "indicator"), f"{o.key} grades {sorted(table)}")
            continue
        g1, g2, g3 = o.grades
        if any(a is not None and b is not None and a > b for a, b in ((g1, g2), (g2, g3), (g1, g3))):
            r.err((*where, "grades"), "grades must not decrease from grade 1 to grade 3 (lower is better)")
            continue
        unit = cref.INDICATOR_UNITS[o.indicator]
        made = tuple(
            None if v is None else Factor(v, unit, o.source, o.year, Confidence.CONFIGURED, True) for v in o.grades
        )
        variants = {**entry.variants, o.variant: {**table, o.indicator: made}}
        entries[o.key] = replace(entry, variants=variants)  # type: ignore[arg-type]
    return entries


def _limits(r: _Resolver, entries: dict[str, cref.LimitEntry]) -> dict[str, ProductLimits]:
    given = {}
    for i, p in enumerate(r.cfg.products):
        if p.product not in r.accounting.products:
            r.err(("products", i, "product"), f"{p.product!r} is not an accounting product")
        elif p.product in given:
            r.err(("products", i, "product"), f"{p.product!r} is listed twice")
        else:
            given[p.product] = (i, p)
    out: dict[str, ProductLimits] = {}
    for product in sorted(r.accounting.products):
        i, p = given.get(product, (None, None))
        key = (p.limit if p is not None else None) or cref.PRODUCT_LIMITS.get(product)
        if key is None:
            out[product] = ProductLimits(product, None, "not_mapped", {})
            continue
        if key == cref.NO_LIMIT_STANDARD:
            out[product] = ProductLimits(product, None, cref.NO_LIMIT_STANDARD, {})
            continue
        entry = entries.get(key)
        if entry is None:
            r.err(("products", i or 0, "limit"), f"unknown limit entry {key!r}; known: {sorted(entries)}")
            continue
        standing: dict[str, Sourced] = {}
        for name, value in (p.corrections if p is not None else {}).items():
            where = ("products", i or 0, "corrections", name)
            if name not in entry.inputs:
                r.err(where, f"{key} takes {list(entry.inputs) or 'no correction'}")
                continue
            try:
                checked = check_value(INPUTS[name], value)
            except InputError as exc:
                r.err(where, str(exc))
                continue
            unit = INPUTS[name].unit
            standing[name] = Sourced(
                checked,
                unit,
                {
                    "origin": "plant_file",
                    "value": checked,
                    "unit": unit,
                    "verified": True,
                    "where": f"compliance.products[{i}].corrections.{name}",
                },
            )
        out[product] = ProductLimits(product, entry, "", standing)
    return out


def _materials(r: _Resolver) -> dict[str, str]:
    out = {m: mat.unit for m, mat in r.accounting.materials.items()}
    for m, unit in cref.MASS_BALANCE_MATERIALS.items():
        out.setdefault(m, unit)
    for i, m in enumerate(r.cfg.materials):
        if m.id in out:
            r.err(("materials", i, "id"), f"{m.id!r} is known already")
        out[m.id] = m.unit
    return out


def _known(r: _Resolver, names: list[str], known: dict[str, str], where: Location, what: str) -> None:
    for j, name in enumerate(names):
        if name not in known:
            r.err((*where, j), f"unknown {what} {name!r}; known: {sorted(known)}")


def _ets(r: _Resolver, units: dict[str, str], materials: dict[str, str]) -> list[EtsProcessModel]:
    out = []
    seen_units: dict[str, str] = {}
    ids: set[str] = set()
    for i, p in enumerate(r.cfg.ets.processes):
        where: Location = ("ets", "processes", i)
        if p.id in ids:
            r.err((*where, "id"), f"process {p.id!r} is listed twice")
        ids.add(p.id)
        for j, unit in enumerate(p.units):
            if unit not in units:
                r.err((*where, "units", j), f"{unit!r} is not an accounting unit; known: {sorted(units)}")
            elif unit in seen_units:
                r.err((*where, "units", j), f"{unit!r} is already in process {seen_units[unit]!r}")
            seen_units[unit] = p.id
        _known(r, p.inputs, materials, (*where, "inputs"), "material")
        _known(r, p.outputs, materials, (*where, "outputs"), "material")
        out.append(
            EtsProcessModel(
                p.id, p.name, p.captive_power_plant, tuple(p.units), tuple(p.inputs), tuple(p.outputs), p.product_carbon
            )
        )
    return out


def _cbam(
    r: _Resolver, materials: dict[str, str]
) -> tuple[dict[str, CbamGoodModel], dict[str, dict[str, str]], dict[str, Factor]]:
    defaults = {cn: g.default for cn, g in cref.CBAM_GOODS.items() if g.default is not None}
    for d in r.cfg.cbam.defaults:
        defaults[d.cn] = Factor(d.value, d.unit, d.source, d.year, Confidence.CONFIGURED, d.verified)
    goods: dict[str, CbamGoodModel] = {}
    for i, g in enumerate(r.cfg.cbam.goods):
        where: Location = ("cbam", "goods", i)
        if g.product not in r.accounting.products:
            r.err((*where, "product"), f"{g.product!r} is not an accounting product")
            continue
        cn = g.cn or cref.PRODUCT_CN.get(g.product)
        if cn is None:
            r.err((*where, "cn"), f"give the CN code of {g.product!r} as shipped (e.g. 7207 semi-finished, 7208 flat)")
            continue
        out_key = cref.cn_match(cn, cref.CBAM_OUT_OF_SCOPE)
        if out_key is not None:
            r.err((*where, "cn"), f"CN {cn} ({cref.CBAM_OUT_OF_SCOPE[out_key].name}) is outside CBAM")
            continue
        good_key = cref.cn_match(cn, cref.CBAM_GOODS)
        if not (cn.startswith("72") or cn.startswith("73")):
            r.err((*where, "cn"), f"CN {cn} is not an iron or steel good (chapters 72, 73)")
            continue
        default_key = next((k for k in sorted(defaults, key=len, reverse=True) if cn.startswith(k)), None)
        for j, p in enumerate(g.precursors):
            if p.material not in materials:
                r.err((*where, "precursors", j, "material"), f"unknown material {p.material!r}")
        _known(r, g.inputs, materials, (*where, "inputs"), "material")
        _known(r, g.outputs, materials, (*where, "outputs"), "material")
        name = cref.CBAM_GOODS[good_key].name if good_key else f"CN {cn}"
        goods[g.product] = CbamGoodModel(
            g.product,
            cn,
            name,
            defaults.get(default_key) if default_key else None,
            {p.material: p.cn for p in g.precursors},
            tuple(g.inputs),
            tuple(g.outputs),
        )
    scope: dict[str, dict[str, str]] = {}
    for product in sorted(r.accounting.products):
        if product in goods:
            scope[product] = {"status": "covered", "cn": goods[product].cn, "reason": goods[product].name}
            continue
        cn = cref.PRODUCT_CN.get(product)
        out_key = cref.cn_match(cn, cref.CBAM_OUT_OF_SCOPE) if cn else None
        if out_key is not None:
            reason = f"{cref.CBAM_OUT_OF_SCOPE[out_key].name} is not a CBAM good"
            scope[product] = {"status": "out_of_scope", "cn": cn or "", "reason": reason}
        elif cn is not None or product.startswith("crude_steel"):
            scope[product] = {
                "status": "not_configured",
                "cn": cn or "",
                "reason": "a CBAM good: list it under compliance.cbam.goods (with its CN code as shipped)",
            }
        else:
            scope[product] = {"status": "unknown", "cn": "", "reason": "no CN code known for this product"}
    return goods, scope, defaults

"""The carbon mass balance the carbon market (CETS-AG-03.01-V01-2024), CBAM (Implementing Regulation
(EU) 2025/2547) and product footprints share:

    CO2 = factor x (sum of carbon entering - sum of carbon leaving)

where carbon entering = quantity x carbon content x oxidation (fuels, reductants, electrodes, scrap,
pig iron, carbonates) and carbon leaving = quantity x carbon content (products, by-products, slag,
dust); factor = 44/12 (carbon market, footprints) or 3.664 (CBAM).

Quantities of a month come from the books (a material's meter, or the plant file's consumption per
tonne) or from the month's manual input (`consumption`, `output`); a manual consumption replaces a
per-tonne estimate (it is what the stores issued), never a meter. Carbon contents come, in this
order, from the month's lab carbon content; its lab net calorific value x carbon per GJ (a default
filling the one not measured); the plant file; the reference data. What is not known is listed as
missing, never taken as zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ferrogate.gateway.compliance import reference as cref
from ferrogate.gateway.compliance.figures import MonthBooks
from ferrogate.gateway.compliance.inputs import InputValue, MonthInputs, Sourced
from ferrogate.gateway.compliance.model import ComplianceModel
from ferrogate.gateway.energy.reference import Factor

IN, OUT = "in", "out"


@dataclass(frozen=True, slots=True)
class CarbonContent:
    value: float  # tC per material unit
    unit: str
    oxidation: float
    provenance: dict[str, Any]
    verified: bool


def carbon_content(model: ComplianceModel, inputs: MonthInputs, material: str) -> CarbonContent | None:
    unit = model.materials.get(material) or "t"
    fuel = cref.FUELS.get(material)
    oxidation = Sourced.of_factor(fuel.oxidation) if fuel else None
    ox_value = oxidation.number if oxidation else 1.0
    ox_prov = {"oxidation": oxidation.provenance} if oxidation else {}
    ox_ok = oxidation.verified if oxidation else True
    lab = inputs.sourced(material, "carbon_content")
    if lab is not None:
        return CarbonContent(
            lab.number,
            f"tC/{unit}",
            ox_value,
            {"method": "lab carbon content", "carbon_content": lab.provenance, **ox_prov},
            ox_ok,
        )
    ncv, per_gj = inputs.sourced(material, "ncv"), inputs.sourced(material, "carbon_per_gj")
    if (ncv is not None or per_gj is not None) and (fuel is not None or (ncv and per_gj)):
        ncv = ncv or Sourced.of_factor(fuel.ncv)  # type: ignore[union-attr]
        per_gj = per_gj or Sourced.of_factor(fuel.carbon_per_gj)  # type: ignore[union-attr]
        return CarbonContent(
            ncv.number * per_gj.number,
            f"tC/{unit}",
            ox_value,
            {
                "method": "net calorific value x carbon per GJ",
                "ncv": ncv.provenance,
                "carbon_per_gj": per_gj.provenance,
                **ox_prov,
            },
            ncv.verified and per_gj.verified and ox_ok,
        )
    standing = model.carbon.get(material)
    if standing is not None:
        return CarbonContent(
            standing.number,
            standing.unit,
            ox_value,
            {"method": "plant file", "carbon_content": standing.provenance, **ox_prov},
            standing.verified and ox_ok,
        )
    if fuel is not None:
        return CarbonContent(
            fuel.ncv.value * fuel.carbon_per_gj.value,
            f"tC/{unit}",
            ox_value,
            {
                "method": "reference net calorific value x carbon per GJ",
                "ncv": fuel.ncv.provenance(),
                "carbon_per_gj": fuel.carbon_per_gj.provenance(),
                **ox_prov,
            },
            fuel.ncv.verified and fuel.carbon_per_gj.verified and ox_ok,
        )
    known: Factor | None = cref.CARBON_CONTENT.get(material)
    product = model.accounting.products.get(material)
    if known is None and product is not None:
        known = cref.product_carbon_content(product.carbon_fixed)
    if known is not None:
        return CarbonContent(
            known.value, known.unit, 1.0, {"method": "reference", "carbon_content": known.provenance()}, known.verified
        )
    return None


@dataclass(frozen=True, slots=True)
class Share:
    """One unit's (or process's) part of an item's quantity, and where it comes from."""

    holder: str
    quantity: float
    provenance: dict[str, Any]


@dataclass
class Item:
    direction: str
    material: str
    unit: str
    shares: list[Share] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # holders whose quantity is not known
    carbon: CarbonContent | None = None

    @property
    def quantity(self) -> float:
        return sum(s.quantity for s in self.shares)

    @property
    def carbon_t(self) -> float | None:
        if self.carbon is None:
            return None
        oxidised = self.carbon.oxidation if self.direction == IN else 1.0
        return self.quantity * self.carbon.value * oxidised


def _books_quantity(model: ComplianceModel, unit: str, material: str, qty: float) -> dict[str, Any]:
    um = next(u for u in model.accounting.units if u.asset == unit)
    if material in um.metered:
        meter = um.metered[material]
        return {"origin": "meter", "meter": f"{meter.device}.{meter.point}", "role": um.metered_roles[material]}
    if material in um.per_tonne:
        return {
            "origin": "per_tonne",
            "per_tonne": um.per_tonne[material],
            "where": f"accounting.units[{unit}].consumables",
        }
    return {"origin": "books"}


@dataclass(frozen=True, slots=True)
class Boundary:
    """What a balance covers: its accounting units, the holders manual quantities may be entered
    on (the units, or a process without units), and the materials expected beyond the books'."""

    holders: tuple[str, ...]
    units: tuple[str, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    product_carbon: bool = True


def items(model: ComplianceModel, books: MonthBooks, inputs: MonthInputs, boundary: Boundary) -> list[Item]:
    """Every carbon-bearing item entering and leaving the boundary in a month."""
    entering: dict[str, Item] = {}
    leaving: dict[str, Item] = {}

    def item(table: dict[str, Item], direction: str, material: str) -> Item:
        if material not in table:
            unit = model.materials.get(material) or "t"
            table[material] = Item(direction, material, unit, carbon=carbon_content(model, inputs, material))
        return table[material]

    for holder in boundary.holders:
        figures = books.unit(holder) if holder in boundary.units else None
        manual: dict[tuple[str, str], InputValue] = {}
        for (subject, name), v in inputs.values.items():
            owner, _, material = subject.partition("/")
            if owner == holder and name in ("consumption", "output"):
                manual[(name, material)] = v
        for material, qty in sorted((figures.consumables if figures else {}).items()):
            replaced = manual.pop(("consumption", material), None)
            if replaced is not None:
                prov = {
                    **replaced.provenance(),
                    "replaces": {"quantity": qty, **_books_quantity(model, holder, material, qty)},
                }
                item(entering, IN, material).shares.append(Share(holder, float(replaced.value), prov))
            else:
                item(entering, IN, material).shares.append(
                    Share(holder, qty, _books_quantity(model, holder, material, qty))
                )
        for (name, material), v in sorted(manual.items()):
            table, direction = (entering, IN) if name == "consumption" else (leaving, OUT)
            item(table, direction, material).shares.append(Share(holder, float(v.value), v.provenance()))
        for material in boundary.inputs:
            if not any(s.holder == holder for s in item(entering, IN, material).shares):
                item(entering, IN, material).missing.append(holder)
        for material in boundary.outputs:
            if not any(s.holder == holder for s in item(leaving, OUT, material).shares):
                item(leaving, OUT, material).missing.append(holder)
        if figures is not None and boundary.product_carbon and figures.tonnes > 0:
            product = model.units[holder]
            item(leaving, OUT, product).shares.append(
                Share(holder, figures.tonnes, {"origin": "books", "what": "tonnes of product (taps, heats, counter)"})
            )
    return [*entering.values(), *leaving.values()]


@dataclass(frozen=True, slots=True)
class Balance:
    carbon_in_t: float
    carbon_out_t: float
    co2_t: float
    factor: Factor
    missing: list[str]
    verified: bool


def balance(found: Sequence[Item], factor: Factor) -> Balance:
    carbon_in = sum(i.carbon_t or 0.0 for i in found if i.direction == IN)
    carbon_out = sum(i.carbon_t or 0.0 for i in found if i.direction == OUT)
    missing = []
    for i in found:
        what = "consumption" if i.direction == IN else "output"
        if i.missing:
            missing.append(f"{what} of {i.material} for {', '.join(i.missing)}")
        if i.carbon is None and i.shares:
            missing.append(f"carbon content of {i.material} (lab value: carbon_content, or ncv and carbon_per_gj)")
    verified = factor.verified and all(i.carbon is None or i.carbon.verified for i in found)
    return Balance(carbon_in, carbon_out, (carbon_in - carbon_out) * factor.value, factor, missing, verified)


def item_rows(found: Iterable[Item], factor: Factor) -> list[dict[str, Any]]:
    """The items as the evidence pack lists them."""
    out = []
    for i in found:
        carbon = i.carbon
        carbon_t = i.carbon_t
        out.append(
            {
                "direction": i.direction,
                "material": i.material,
                "quantity": i.quantity,
                "unit": i.unit,
                "shares": [{"holder": s.holder, "quantity": s.quantity, **s.provenance} for s in i.shares],
                "missing_for": list(i.missing),
                "carbon_content": carbon.value if carbon else None,
                "carbon_content_unit": carbon.unit if carbon else None,
                "oxidation": carbon.oxidation if carbon and i.direction == IN else None,
                "carbon_source": carbon.provenance if carbon else None,
                "carbon_t": carbon_t,
                "tco2": None if carbon_t is None else (carbon_t if i.direction == IN else -carbon_t) * factor.value,
                "verified": carbon.verified if carbon else False,
            }
        )
    return out

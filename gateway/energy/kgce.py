"""Energy in standard coal (GB/T 2589-2020): comprehensive energy consumption of a unit.

All carriers entering the unit are converted with their coefficients; electricity sent out of the
unit's boundary (waste-heat power) is subtracted at the same electricity coefficient. Materials
that are not energy carriers (limestone, by default electrodes) are not counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ferrogate.gateway.energy.aggregate import Totals
from ferrogate.gateway.energy.reference import Factor


@dataclass(frozen=True, slots=True)
class Material:
    """A material as resolved for one plant: reference data plus the site's overrides."""

    id: str
    unit: str
    kgce: Factor | None  # None: not an energy carrier
    co2: Factor | None  # None: emits nothing
    kind: str  # combustion, process, heat


@dataclass(frozen=True, slots=True)
class StandardCoal:
    electricity_kgce: float
    waste_heat_kgce: float  # subtracted
    carriers_kgce: dict[str, float]
    total_kgce: float  # comprehensive energy consumption
    per_t: float | None  # kgce/t of product
    factors: dict[str, Factor]


def comprehensive(totals: Totals, electricity: Factor, materials: Mapping[str, Material]) -> StandardCoal:
    coef = electricity.value
    used: dict[str, Factor] = {"electricity": electricity}
    carriers: dict[str, float] = {}
    for mid, qty in sorted(totals.consumables.items()):
        material = materials[mid]
        if material.kgce is not None:
            carriers[mid] = qty * material.kgce.value
            used[mid] = material.kgce
    e_kgce = totals.electricity_kwh * coef
    w_kgce = totals.waste_heat_kwh * coef
    total = e_kgce - w_kgce + sum(carriers.values())
    per_t = total / totals.tonnes if totals.tonnes > 0 else None
    return StandardCoal(e_kgce, w_kgce, carriers, total, per_t, used)

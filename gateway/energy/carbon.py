"""Carbon (tCO2): direct and indirect emissions reported separately, with each factor's provenance.

direct   = fuels x factor (combustion) + process materials x factor (electrodes, reductant carbon,
           carbonates) - carbon fixed in the product (tonnes x factor)
indirect = net purchased electricity (consumed - waste-heat self-generation) MWh x grid factor
           + purchased heat x heat factor
Location-based uses the grid's average factor; market-based (only where green-power purchases
are configured) charges the green kWh at zero and the rest at the residual-mix factor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ferrogate.gateway.energy.aggregate import Totals
from ferrogate.gateway.energy.kgce import Material
from ferrogate.gateway.energy.reference import Factor


@dataclass(frozen=True, slots=True)
class Carbon:
    combustion_t: float
    process_t: float
    fixed_in_product_t: float
    direct_t: float
    net_electricity_mwh: float
    indirect_electricity_t: float  # location-based
    indirect_heat_t: float
    indirect_t: float  # location-based: electricity + heat
    total_t: float  # direct + location-based indirect
    per_t: float | None  # tCO2 per t of product (location-based)
    green_kwh: float | None
    indirect_market_t: float | None  # market-based electricity + heat
    total_market_t: float | None
    per_t_market: float | None
    factors: dict[str, Factor]


def carbon(
    totals: Totals,
    materials: Mapping[str, Material],
    product_carbon: Factor | None,
    grid: Factor,
    residual: Factor | None = None,
    green_kwh: float | None = None,
) -> Carbon:
    used: dict[str, Factor] = {"grid": grid}
    combustion = process = heat = 0.0
    for mid, qty in sorted(totals.consumables.items()):
        material = materials[mid]
        if material.co2 is None:
            continue
        t = qty * material.co2.value
        used[f"{mid}_co2"] = material.co2
        if material.kind == "combustion":
            combustion += t
        elif material.kind == "heat":
            heat += t
        else:
            process += t
    fixed = 0.0
    if product_carbon is not None:
        fixed = totals.tonnes * product_carbon.value
        used["product_carbon"] = product_carbon
    direct = combustion + process - fixed
    net_mwh = (totals.electricity_kwh - totals.waste_heat_kwh) / 1000.0
    indirect_e = net_mwh * grid.value
    indirect = indirect_e + heat
    total = direct + indirect
    per_t = total / totals.tonnes if totals.tonnes > 0 else None
    market = total_market = per_t_market = None
    if green_kwh is not None and residual is not None:
        used["grid_residual"] = residual
        green_mwh = min(green_kwh / 1000.0, max(net_mwh, 0.0))
        market = (net_mwh - green_mwh) * residual.value + heat
        total_market = direct + market
        per_t_market = total_market / totals.tonnes if totals.tonnes > 0 else None
    return Carbon(
        combustion,
        process,
        fixed,
        direct,
        net_mwh,
        indirect_e,
        heat,
        indirect,
        total,
        per_t,
        green_kwh,
        market,
        total_market,
        per_t_market,
        used,
    )

"""The cost section of the monthly report, from the month's cost rows as stored (pure).

Per product: the month's kWh by time-of-use period, energy cost, average price, valley share, the
efficiency surcharges at the product's position, and yuan per tonne (energy + surcharge). For the
plant: the billing meter's energy cost, the maximum demand and its charge, the surcharges, the
total, and the source of every tariff and rule with whether its figures were verified.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ferrogate.gateway.cost.config import PositionScale, Surcharge, Tariff, TouPeriod
from ferrogate.gateway.cost.positions import positions
from ferrogate.gateway.cost.surcharge import PositionInput, assess
from ferrogate.gateway.cost.wire import result_fields
from ferrogate.gateway.energy.aggregate import Period
from ferrogate.gateway.energy.wire import flags_text

Row = Mapping[str, Any]
UNITS = {
    "electricity_kwh": "kWh",
    "kwh_by_period": "kWh",
    "cost_by_period_yuan": "yuan",
    "energy_cost_yuan": "yuan",
    "yuan_per_kwh": "yuan/kWh",
    "valley_share_percent": "%",
    "surcharge_yuan": "yuan",
    "yuan_per_t": "yuan/t",
    "tonnes_t": "t",
    "max_kw": "kW",
    "billed_kw": "kW",
    "excess_kw": "kW",
    "charge_yuan": "yuan",
    "total_yuan": "yuan",
    "saving_one_grade_yuan": "yuan",
}
SURCHARGE_INCOMPLETE = "surcharge_incomplete"  # a rule's position is unknown: its surcharge is not in the sum


def by_period(row: Row, what: str = "kwh") -> dict[str, float]:
    """A stored row's figures per time-of-use period: `kwh` (kWh) or `yuan` (energy cost)."""
    return {p.value: float(row[f"{what}_{p.value}"]) for p in TouPeriod if row.get(f"{what}_{p.value}") is not None}


def _surcharge(row: Row) -> dict[str, Any]:
    keep = ("position", "position_scale", "position_origin", "position_source", "kwh", "yuan_per_kwh", "surcharge_yuan")
    better = ("better_position", "better_yuan_per_kwh", "saving_one_grade_yuan")
    flags = [f for f in str(row.get("flags") or "").split(",") if f]
    head = {"surcharge": row["surcharge"], "product": row["product"]}
    return {**head, **{k: row.get(k) for k in keep + better}, "flags": flags}


def regrade(rows: Sequence[Row], rules: Sequence[Surcharge], month: Period, grades: PositionInput) -> list[Row]:
    """The month's stored surcharge rows with every `limit_grade` rule assessed at the compliance
    layer's grade (or the rule's fallback): the energy role does not grade, so it stores those rows
    with their kWh and no position."""
    by_id = {r.id: r for r in rules}
    position = positions({}, grades)
    out: list[Row] = []
    for row in rows:
        rule = by_id.get(row["surcharge"])
        if rule is None or rule.position_from is not PositionScale.limit_grade or row.get("kwh") is None:
            out.append(row)
            continue
        found = assess(rule, row["product"], float(row["kwh"]), position(rule, row["product"], month))
        out.append({**row, **result_fields(found), "flags": flags_text(found.flags)})
    return out


def month_cost_section(
    month: str,
    periods: Sequence[Row],
    demand: Row | None,
    surcharges: Sequence[Row],
    tariffs: Sequence[Tariff],
    rules: Sequence[Surcharge],
) -> dict[str, Any]:
    """`periods`: the month's cost_period rows of scope product and plant (with `scope`, `subject`);
    `demand`: its cost_demand row; `surcharges`: its cost_surcharge rows (with `surcharge`,
    `product`); `tariffs`, `rules`: the editions in force and the surcharge rules, for their sources."""
    charged = [_surcharge(r) for r in surcharges]
    products = []
    for row in (r for r in periods if r.get("scope") == "product"):
        product = row["subject"]
        mine = [s for s in charged if s["product"] == product]
        surcharge = sum(s["surcharge_yuan"] or 0.0 for s in mine)
        energy = float(row.get("cost_yuan") or 0.0)
        tonnes = row.get("tonnes_t")
        products.append(
            {
                "product": product,
                "complete": row.get("complete"),
                "quality": row.get("quality"),
                "tonnes_t": tonnes,
                "electricity_kwh": row.get("electricity_kwh"),
                "kwh_by_period": by_period(row),
                "cost_by_period_yuan": by_period(row, "yuan"),
                "energy_cost_yuan": energy,
                "yuan_per_kwh": row.get("yuan_per_kwh"),
                "valley_share_percent": row.get("valley_share_percent"),
                "surcharge_yuan": surcharge,
                "yuan_per_t": (energy + surcharge) / tonnes if tonnes else None,
                "flags": [SURCHARGE_INCOMPLETE] if any(s["surcharge_yuan"] is None for s in mine) else [],
            }
        )
    plant_row = next((r for r in periods if r.get("scope") == "plant"), None)
    energy = float(plant_row.get("cost_yuan") or 0.0) if plant_row else 0.0
    demand_charge = float(demand.get("charge_yuan") or 0.0) if demand else 0.0
    surcharge_total = sum(s["surcharge_yuan"] or 0.0 for s in charged)
    demand_keys = ("max_kw", "max_window_start", "window_s", "basis", "price", "contracted_kw", "capacity_kva")
    plant = {
        "complete": plant_row.get("complete") if plant_row else None,
        "electricity_kwh": plant_row.get("electricity_kwh") if plant_row else None,
        "kwh_by_period": by_period(plant_row) if plant_row else {},
        "cost_by_period_yuan": by_period(plant_row, "yuan") if plant_row else {},
        "energy_cost_yuan": energy,
        "yuan_per_kwh": plant_row.get("yuan_per_kwh") if plant_row else None,
        "valley_share_percent": plant_row.get("valley_share_percent") if plant_row else None,
        "demand": {k: demand.get(k) for k in (*demand_keys, "billed_kw", "excess_kw", "charge_yuan")}
        if demand
        else None,
        "surcharge_yuan": surcharge_total,
        "total_yuan": energy + demand_charge + surcharge_total,
        "flags": [SURCHARGE_INCOMPLETE] if any(s["surcharge_yuan"] is None for s in charged) else [],
    }
    sources = [
        {"what": f"tariff {t.id}", "name": t.name, "effective_from": str(t.effective_from), **t.source.model_dump()}
        for t in tariffs
    ] + [{"what": f"surcharge {r.id}", "name": r.name, **r.source.model_dump()} for r in rules]
    return {
        "month": month,
        "currency": "CNY",
        "units": UNITS,
        "products": products,
        "plant": plant,
        "surcharges": charged,
        "sources": sources,
        "verified": all(s["verified"] for s in sources),
    }


def section_rows(section: Mapping[str, Any], site: str) -> list[dict[str, Any]]:
    """The section flattened into report rows (CSV): one per product, one for the plant (subject: site)."""
    rows = []
    for p in section["products"]:
        rows.append({"scope": "cost_product", "subject": p["product"], **_flat(p)})
    rows.append({"scope": "cost_plant", "subject": site, **_flat(section["plant"])})
    return rows


def _flat(entry: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in entry.items():
        if key == "kwh_by_period":
            out |= {f"kwh_{p}": v for p, v in value.items()}
        elif key == "cost_by_period_yuan":
            out |= {f"yuan_{p}": v for p, v in value.items()}
        elif key == "demand":
            out |= {f"demand_{k}": v for k, v in (value or {}).items()}
        elif key == "flags":
            out["flags"] = ",".join(value)
        elif key != "product":
            out[key] = value
    return out

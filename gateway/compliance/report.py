"""The monthly energy and carbon report an energy manager files and a plant director reads: one month,
per product and for the plant. Pure assembly of figures computed elsewhere (the books' KPI rows and
the compliance results), so the JSON, CSV, HTML and PDF forms show the same numbers.

Each product: output, kWh/t, kgce/t and its limit grades, benchmark status, tCO2 and tCO2/t (the
carbon market's scope, direct, and the total with indirect), the CBAM figures of covered goods, the
footprint, data completeness. The plant: consumption, waste-heat share, comprehensive energy, tCO2.
Then the carbon market's month, the meter balance, the month's alarms and manual inputs.
"""

from __future__ import annotations

from typing import Any

from ferrogate.gateway.energy import kpi_fields

ENERGY_FIELDS = kpi_fields.KPI_INTENSITY_FIELDS
CARBON_FIELDS = kpi_fields.KPI_CARBON_FIELDS
PLANT_FIELDS = (*kpi_fields.KPI_PLANT_ENERGY_FIELDS, "tco2_direct", "tco2_indirect", "tco2_total")
# digits after the decimal point wherever the report prints a figure (HTML, PDF)
DECIMALS = {
    "t": 1,
    "kWh": 0,
    "kWh/t": 1,
    "kgce": 0,
    "kgce/t": 1,
    "tCO2": 1,
    "tCO2/t": 3,
    "tCO2e/t": 3,
    "kgCO2e/t": 1,
    "%": 1,
    "yuan": 0,
    "yuan/t": 1,
    "yuan/kWh": 4,
    "kW": 0,
}


def fmt(value: Any, unit: str) -> str:
    """A figure as the report prints it: thousands separators, the unit's decimals; '—' for none."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:,.{DECIMALS[unit]}f}"


def _pick(row: dict[str, Any] | None, fields: tuple[str, ...]) -> dict[str, Any]:
    return {f: (row or {}).get(f) for f in fields}


def carrier_kgce(row: dict[str, Any] | None) -> dict[str, float]:
    """The comprehensive energy of a KPI row by carrier, kgce (waste-heat power sent back negative)."""
    if not row:
        return {}
    out = {"electricity": row.get("electricity_kgce") or 0.0}
    if row.get("waste_heat_kgce"):
        out["waste_heat"] = -row["waste_heat_kgce"]
    skip = ("comprehensive_kgce", "electricity_kgce", "waste_heat_kgce")
    out |= {k.removesuffix("_kgce"): v for k, v in sorted(row.items()) if k.endswith("_kgce") and k not in skip and v}
    return out


def _limit_summary(graded: dict[str, Any] | None, window: str) -> dict[str, Any] | None:
    if graded is None:
        return None
    if window not in graded:  # no limit standard, or no entry mapped
        return {
            "status": graded["status"],
            "message": graded.get("message"),
            "standard": None,
            "edition": None,
            "indicators": [],
        }
    part = graded[window]
    return {
        "standard": graded["standard"],
        "edition": graded["edition"],
        "status": part.get("status"),
        "message": part.get("message"),
        "indicators": [
            {
                "indicator": i["indicator"],
                "name": i["name"],
                "value": i["value"],
                "unit": i["unit"],
                "grade": i["grade"],
                "status": i["status"],
                "levels": i["levels"],
                "margin_to_next_grade": i["margin_to_next_grade"],
                "verified": i["verified"],
            }
            for i in part["indicators"]
        ],
    }


def monthly_report(
    *,
    month: str,
    site: str,
    site_name: str,
    timezone: str,
    generated_at: str,
    products: list[str],
    product_rows: dict[str, dict[str, Any] | None],
    plant_row: dict[str, Any] | None,
    daily: dict[str, list[dict[str, Any]]],
    completeness: dict[str, float | None],
    balances: list[dict[str, Any]],
    limits: dict[str, Any],
    ets: dict[str, Any],
    cbam: dict[str, Any],
    footprints: dict[str, Any],
    alarms: list[dict[str, Any]],
    inputs: list[dict[str, Any]],
    audit: list[dict[str, Any]],
) -> dict[str, Any]:
    graded = {p["product"]: p for p in limits["products"]}
    goods = {g["product"]: g for g in cbam["goods"]}
    scope = {s["product"]: s for s in cbam["scope"]}
    prints = {p["product"]: p for p in footprints["products"]}
    out_products = []
    for product in products:
        row = product_rows.get(product)
        good = goods.get(product)
        fp = prints.get(product)
        out_products.append(
            {
                "product": product,
                "label": row.get("label") if row else month,
                "complete": row.get("complete") if row else None,
                "quality": row.get("quality") if row else None,
                **_pick(row, ENERGY_FIELDS),
                **_pick(row, CARBON_FIELDS),
                "benchmark": {
                    "status": (row or {}).get("benchmark_status"),
                    "edition": (row or {}).get("benchmark_edition"),
                    "benchmark_kgce_per_t": (row or {}).get("benchmark_kgce_per_t"),
                    "baseline_kgce_per_t": (row or {}).get("baseline_kgce_per_t"),
                },
                "limit": _limit_summary(graded.get(product), "month"),
                "limit_rolling_12_months": _limit_summary(graded.get(product), "rolling_12_months"),
                "cbam": {
                    **scope.get(product, {"status": "unknown"}),
                    **(
                        {
                            "see_direct": good["see_direct"],
                            "default_with_markup": good["comparison"]["default_with_markup"],
                            "activity_level_t": good["activity_level_t"],
                            "verified": good["verified"],
                        }
                        if good
                        else {}
                    ),
                },
                "footprint_kgco2e_per_t": fp["kgco2e_per_t"] if fp else None,
                "footprint_complete": fp["complete"] if fp else None,
                "footprint_verified": fp["verified"] if fp else None,
                "completeness_percent": completeness.get(product),
                "carrier_kgce": carrier_kgce(row),
                "daily": daily.get(product, []),
                "factors": (row or {}).get("factors", {}),
            }
        )
    plant = {
        "complete": (plant_row or {}).get("complete"),
        **_pick(plant_row, PLANT_FIELDS),
        "completeness_percent": completeness.get("plant"),
        "factors": (plant_row or {}).get("factors", {}),
    }
    return {
        "month": month,
        "site": site,
        "site_name": site_name,
        "timezone": timezone,
        "generated_at": generated_at,
        "products": out_products,
        "plant": plant,
        "ets": {
            "enterprise": ets["enterprise"],
            "processes": [{k: p[k] for k in p if k != "items"} for p in ets["processes"]],
            "evidence_deposit_due": ets["evidence_deposit_due"],
            "method": ets["method"],
        },
        "cbam": {
            "installation": cbam["installation"],
            "goods": [{k: g[k] for k in g if k != "months"} for g in cbam["goods"]],
        },
        "balance": balances,
        "alarms": alarms,
        "inputs": inputs,
        "audit": audit,
        "rows": _rows(out_products, plant, site),
    }


def _rows(products: list[dict[str, Any]], plant: dict[str, Any], site: str) -> list[dict[str, Any]]:
    """One flat row per product and one for the plant (the CSV, and the JSON report's `rows`)."""
    rows = []
    for p in products:
        row = {
            "scope": "product",
            "subject": p["product"],
            "label": p["label"],
            "complete": p["complete"],
            "quality": p["quality"],
            **{f: p[f] for f in ENERGY_FIELDS + CARBON_FIELDS},
            "benchmark_status": p["benchmark"]["status"],
            "limit_status": (p["limit"] or {}).get("status"),
        }
        for i in (p["limit"] or {}).get("indicators", []):
            row[f"limit_{i['indicator']}_grade"] = i["grade"]
            row[f"limit_{i['indicator']}_status"] = i["status"]
            row[f"limit_{i['indicator']}_margin_to_next_grade"] = i["margin_to_next_grade"]
        row |= {
            "cbam_status": p["cbam"].get("status"),
            "cbam_see_direct_tco2e_per_t": p["cbam"].get("see_direct"),
            "footprint_kgco2e_per_t": p["footprint_kgco2e_per_t"],
            "completeness_percent": p["completeness_percent"],
            "factors": p["factors"],
        }
        rows.append(row)
    rows.append({"scope": "plant", "subject": site, **{k: v for k, v in plant.items()}})
    return rows

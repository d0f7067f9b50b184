"""Product carbon footprint, cradle to gate (GB/T 24067-2024), kgCO2e per tonne, for a month's
product and for a single heat, tap or batch:

    footprint = direct + electricity + upstream
    direct      = 44/12 x (carbon in - carbon out) of the units making it (the carbon mass balance
                  of the carbon market, with the month's lab values)
    electricity = net electricity (consumed - own waste-heat power) x the electricity
                  carbon-footprint factor (life-cycle basis, not the grid emission factor)
    upstream    = sum(input quantity x the input's cradle-to-gate factor)

A heat carries what its record holds (electricity, metered and per-tonne materials, tonnes) plus its
tonnage share of the month's manually entered quantities of its unit, so the heats of a month add
up to the unit's month. Factors come from the plant file (none ship: docs/compliance.md); an input
without one is listed, never counted as zero.
"""

from __future__ import annotations

from typing import Any

from ferrogate.gateway.compliance import reference as cref
from ferrogate.gateway.compliance.figures import Figures, MonthBooks, total
from ferrogate.gateway.compliance.inputs import InputValue, MonthInputs
from ferrogate.gateway.compliance.massbalance import IN, Boundary, balance, item_rows, items
from ferrogate.gateway.compliance.model import ComplianceModel


def footprint(
    model: ComplianceModel, books: MonthBooks, inputs: MonthInputs, units: tuple[str, ...], subject: str
) -> dict[str, Any]:
    factor = cref.C_TO_CO2
    found = items(model, books, inputs, Boundary(units, units, (), ()))
    result = balance(found, factor)
    figures = total(subject, [books.unit(u) for u in units])
    missing = list(result.missing)
    verified = result.verified
    electricity: dict[str, Any] = {"net_kwh": figures.net_electricity_kwh, "kgco2e": None, "factor": None}
    ef = model.footprint_electricity
    if ef is None:
        missing.append("electricity carbon-footprint factor (compliance.footprint.electricity)")
    else:
        electricity |= {
            "kgco2e": figures.net_electricity_kwh * ef.number,
            "factor": ef.value,
            "factor_source": ef.provenance,
        }
        verified = verified and ef.verified
    upstream = []
    for i in found:
        if i.direction != IN:
            continue
        f = model.upstream.get(i.material)
        if f is None:
            missing.append(f"cradle-to-gate factor of {i.material} (compliance.footprint.upstream.{i.material})")
        else:
            verified = verified and f.verified
        upstream.append(
            {
                "material": i.material,
                "quantity": i.quantity,
                "unit": i.unit,
                "factor": f.value if f else None,
                "factor_unit": f.unit if f else None,
                "factor_source": f.provenance if f else None,
                "kgco2e": i.quantity * f.number if f else None,
            }
        )
    direct_kg = result.co2_t * 1000.0
    electricity_kg = electricity["kgco2e"] or 0.0
    upstream_kg = sum(u["kgco2e"] or 0.0 for u in upstream)
    total_kg = direct_kg + electricity_kg + upstream_kg
    return {
        "subject": subject,
        "units": list(units),
        "tonnes_t": figures.tonnes,
        "kgco2e_per_t": total_kg / figures.tonnes if figures.tonnes > 0 else None,
        "total_kgco2e": total_kg,
        "contributions_kgco2e": {"direct": direct_kg, "electricity": electricity_kg, "upstream": upstream_kg},
        "direct": {
            "tco2": result.co2_t,
            "carbon_in_t": result.carbon_in_t,
            "carbon_out_t": result.carbon_out_t,
            "books_tco2_direct": figures.tco2_direct,
            "items": item_rows(found, factor),
        },
        "electricity": electricity,
        "upstream": upstream,
        "complete": not missing,
        "missing": missing,
        "verified": verified,
    }


def product_month(model: ComplianceModel, books: MonthBooks, inputs: MonthInputs, product: str) -> dict[str, Any]:
    units = tuple(u for u, p in model.units.items() if p == product)
    return {"product": product, **footprint(model, books, inputs, units, product)}


def record(
    model: ComplianceModel, rec: Figures, record_id: str, unit_month: Figures, inputs: MonthInputs, label: str
) -> dict[str, Any]:
    """A heat's, tap's or batch's footprint: its record plus its tonnage share of the month's manual
    quantities of its unit (`unit_month`: the unit's month in the books)."""
    unit = rec.subject
    share = rec.tonnes / unit_month.tonnes if unit_month.tonnes > 0 else 0.0
    scaled: dict[tuple[str, str], InputValue] = {}
    for key, v in inputs.values.items():
        subject, name = key
        if name in ("consumption", "output") and subject.partition("/")[0] == unit:
            note = f"{share:.6f} of the month's {v.value:g} {v.unit} (this record's share of the unit's tonnes)"
            v = InputValue(
                v.month,
                v.subject,
                v.name,
                float(v.value) * share,
                v.unit,
                v.source,
                note,
                v.entered_by,
                v.entered_at_ns,
            )
        scaled[key] = v
    books = MonthBooks(label, {unit: rec})
    out = footprint(model, books, MonthInputs(inputs.month, scaled), (unit,), record_id)
    return {"id": record_id, "unit": unit, "product": model.units[unit], "share_of_month": share, **out}

"""EU CBAM, definitive period: specific direct embedded emissions (SEE) of each covered good made at
the installation over a period (a month, or the calendar year of the annual declaration):

    SEE = (attributed direct emissions + sum(precursor mass x precursor SEE)) / activity level

- attributed direct emissions: carbon mass balance of the units making the good, 3.664 tCO2/tC
  (Implementing Regulation (EU) 2025/2547); iron and steel goods (chapter 72, incl. FeMn 7202 1x and
  FeCr 7202 4x) count direct emissions only, so electricity is reported beside it, not counted.
- precursors (purchased pig iron, DRI, ferroalloys): the mass consumed x the supplier's SEE (a
  month's `supplier_see` input with its declaration) or the country default of the precursor's CN
  code (without mark-up: our reading, see docs/compliance.md).
- activity level: tonnes of the good in the books.
- comparison: the China default value of the good's CN code (Implementing Regulation (EU)
  2025/2621) and that value with the year's mark-up (10 % 2026, 20 % 2027, 30 % from 2028).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ferrogate.gateway.compliance import reference as cref
from ferrogate.gateway.compliance.figures import MonthBooks, total
from ferrogate.gateway.compliance.inputs import MonthInputs, Sourced
from ferrogate.gateway.compliance.massbalance import Boundary, balance, item_rows, items
from ferrogate.gateway.compliance.model import CbamGoodModel, ComplianceModel


def precursor_see(model: ComplianceModel, inputs: MonthInputs, material: str, cn: str) -> Sourced | None:
    supplier = inputs.sourced(material, "supplier_see")
    if supplier is not None:
        return Sourced(supplier.value, supplier.unit, {**supplier.provenance, "basis": "supplier's actual value"})
    key = next((k for k in sorted(model.cbam_defaults, key=len, reverse=True) if cn.startswith(k)), None)
    if key is None:
        return None
    default = Sourced.of_factor(model.cbam_defaults[key])
    return Sourced(default.value, default.unit, {**default.provenance, "basis": f"default value of CN {key}"})


def good(
    model: ComplianceModel, g: CbamGoodModel, months: Sequence[tuple[MonthBooks, MonthInputs]], year: int
) -> dict[str, Any]:
    units = tuple(u for u, product in model.units.items() if product == g.product)
    factor = cref.CBAM_MASS_BALANCE
    per_month = []
    direct = embedded = tonnes = indirect = 0.0
    missing: list[str] = []
    verified = factor.verified
    for books, inputs in months:
        boundary = Boundary(units, units, g.inputs + tuple(g.precursors), g.outputs)
        found = items(model, books, inputs, boundary)
        result = balance(found, factor)
        figures = total(g.product, [books.unit(u) for u in units])
        precursors = []
        for material, cn in g.precursors.items():
            mass = sum(i.quantity for i in found if i.material == material and i.direction == "in")
            see = precursor_see(model, inputs, material, cn)
            if see is None:
                missing.append(f"{books.label}: SEE of precursor {material} (CN {cn})")
            emb = mass * see.number if see is not None else None
            precursors.append(
                {
                    "material": material,
                    "cn": cn,
                    "mass_t": mass,
                    "see": see.value if see else None,
                    "see_unit": cref.TCO2E_PER_T,
                    "see_source": see.provenance if see else None,
                    "embedded_tco2e": emb,
                }
            )
            embedded += emb or 0.0
            verified = verified and (see is None or see.verified)
        direct += result.co2_t
        tonnes += figures.tonnes
        indirect += figures.tco2_indirect
        missing += [f"{books.label}: {m}" for m in result.missing]
        verified = verified and result.verified
        per_month.append(
            {
                "label": books.label,
                "tonnes_t": figures.tonnes,
                "carbon_in_t": result.carbon_in_t,
                "carbon_out_t": result.carbon_out_t,
                "direct_tco2": result.co2_t,
                "precursors": precursors,
                "items": item_rows(found, factor),
            }
        )
    see_value = (direct + embedded) / tonnes if tonnes > 0 else None
    markup = cref.cbam_markup(year)
    default = g.default
    with_markup = default.value * (1 + markup.value / 100) if default is not None and markup is not None else None
    comparison: dict[str, Any] = {
        "default": default.value if default else None,
        "default_source": default.provenance() if default else None,
        "markup_percent": markup.value if markup else None,
        "markup_source": markup.provenance() if markup else None,
        "default_with_markup": with_markup,
    }
    if see_value is not None and with_markup is not None:
        comparison["actual_minus_marked_up_default"] = see_value - with_markup
        comparison["lower"] = "actual" if see_value <= with_markup else "default_with_markup"
    if default is None:
        comparison["note"] = f"no default value for CN {g.cn}: give the annex value under compliance.cbam.defaults"
    elif markup is None:
        comparison["note"] = "before the definitive period (2026): no mark-up applies"
    return {
        "product": g.product,
        "cn": g.cn,
        "name": g.name,
        "units": list(units),
        "activity_level_t": tonnes,
        "attributed_direct_tco2": direct,
        "precursors_embedded_tco2e": embedded,
        "see_direct": see_value,
        "see_unit": cref.TCO2E_PER_T,
        "comparison": comparison,
        "indirect_tco2_not_counted": indirect,
        "complete": not missing,
        "missing": missing,
        "verified": verified and (default is None or default.verified) and (markup is None or markup.verified),
        "months": per_month,
    }


def cbam_period(
    model: ComplianceModel, months: Sequence[tuple[MonthBooks, MonthInputs]], label: str, year: int
) -> dict[str, Any]:
    method = cref.METHODS["cbam"]
    return {
        "period": label,
        "installation": model.config.cbam.installation or model.site_name,
        "country": "CN",
        "goods": [good(model, g, months, year) for _, g in sorted(model.cbam.items())],
        "scope": [{"product": p, **s} for p, s in sorted(model.cbam_scope.items())],
        "factor": cref.CBAM_MASS_BALANCE.provenance(),
        "method": {
            "name": method.name,
            "source": method.source,
            "verified": method.verified,
            "notes": list(method.notes),
        },
    }

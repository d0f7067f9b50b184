"""China's national carbon market, steel (CETS-AG-03.01-V01-2024): a month's direct CO2 by carbon mass
balance per process (工序) and for the enterprise, and the evidence pack behind it.

- Covered: direct CO2 only (combustion and process carbon, by mass balance); a captive power plant is
  a process of its own. Purchased electricity and heat stay reported per process (the books'
  location-based figure) but outside the covered total.
- Evidence pack: every quantity with where it came from (meter, per-tonne configuration, manual entry
  with who and when), every carbon content with its lab report or reference, every factor; as JSON
  and as CSV, the shape of the monthly evidence deposit (月度信息化存证). The guideline's exact item
  list and the deposit rule for steel are UNVERIFIED (docs/compliance.md).
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Any

from ferrogate.gateway.compliance import reference as cref
from ferrogate.gateway.compliance.figures import MonthBooks, total
from ferrogate.gateway.compliance.inputs import MonthInputs
from ferrogate.gateway.compliance.massbalance import Boundary, balance, item_rows, items
from ferrogate.gateway.compliance.model import ComplianceModel


def month_end(label: str) -> date:
    first = date.fromisoformat(label + "-01")
    return (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)


def ets_month(model: ComplianceModel, books: MonthBooks, inputs: MonthInputs) -> dict[str, Any]:
    factor = cref.C_TO_CO2
    processes = []
    for p in model.ets:
        boundary = Boundary(p.units or (p.id,), p.units, p.inputs, p.outputs, p.product_carbon)
        found = items(model, books, inputs, boundary)
        result = balance(found, factor)
        figures = total(p.id, [books.unit(u) for u in p.units])
        processes.append(
            {
                "process": p.id,
                "name": p.name,
                "captive_power_plant": p.captive_power_plant,
                "units": list(p.units),
                "tonnes_t": figures.tonnes,
                "carbon_in_t": result.carbon_in_t,
                "carbon_out_t": result.carbon_out_t,
                "tco2_direct": result.co2_t,
                "tco2_direct_per_t": result.co2_t / figures.tonnes if figures.tonnes > 0 else None,
                "electricity_kwh": figures.electricity_kwh,
                "waste_heat_kwh": figures.waste_heat_kwh,
                "net_electricity_kwh": figures.net_electricity_kwh,
                "tco2_indirect": figures.tco2_indirect,
                "books_tco2_direct": figures.tco2_direct,
                "quality": figures.quality,
                "month_closed": figures.complete,  # the books' month has ended (its figures are final)
                "complete": not result.missing,
                "missing": result.missing,
                "verified": result.verified,
                "items": item_rows(found, factor),
            }
        )
    due = month_end(books.label) + timedelta(days=int(cref.DEPOSIT_DAYS.value))
    method = cref.METHODS["ets"]
    return {
        "month": books.label,
        "enterprise": {
            "name": model.config.ets.enterprise or model.site_name,
            "tco2_direct_covered": sum(p["tco2_direct"] for p in processes),
            "tco2_indirect_reported": sum(p["tco2_indirect"] for p in processes),
            "tonnes_t": sum(p["tonnes_t"] for p in processes if not p["captive_power_plant"]),
            "complete": all(p["complete"] for p in processes),
            "verified": all(p["verified"] for p in processes),
            "processes": len(processes),
        },
        "processes": processes,
        "method": {
            "name": method.name,
            "source": method.source,
            "verified": method.verified,
            "notes": list(method.notes),
        },
        "factor": cref.C_TO_CO2.provenance(),
        "evidence_deposit_due": {"date": due.isoformat(), **cref.DEPOSIT_DAYS.provenance()},
        "lab_inputs": [v.as_dict() for v in inputs.values.values()],
    }


CSV_COLUMNS = (
    "month",
    "process",
    "row",
    "direction",
    "material",
    "quantity",
    "unit",
    "quantity_sources",
    "carbon_content",
    "carbon_content_unit",
    "oxidation",
    "carbon_sources",
    "carbon_t",
    "tco2",
    "verified",
)


def _sources(provenance: dict[str, Any]) -> str:
    """The documents behind a provenance tree, flattened for one CSV cell."""
    parts = []
    for key, value in provenance.items():
        if isinstance(value, dict):
            inner = _sources(value)
            if inner:
                parts.append(f"{key}: {inner}")
        elif key in ("origin", "method", "source", "meter", "per_tonne", "entered_by", "entered_at", "value", "unit"):
            parts.append(f"{key}={value}")
    return "; ".join(parts)


def evidence_csv(pack: dict[str, Any]) -> str:
    """The evidence pack as one CSV table: item rows, process totals, the enterprise total, and the
    month's manual inputs with who entered them and when."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    month = pack["month"]
    for p in pack["processes"]:
        for i in p["items"]:
            writer.writerow(
                {
                    "month": month,
                    "process": p["process"],
                    "row": "item",
                    **i,
                    "quantity_sources": " | ".join(
                        f"{s['holder']} {s['quantity']:g}: {_sources(s)}" for s in i["shares"]
                    )
                    + ("" if not i["missing_for"] else f" | missing for {', '.join(i['missing_for'])}"),
                    "carbon_sources": _sources(i["carbon_source"] or {}),
                }
            )
        writer.writerow(
            {
                "month": month,
                "process": p["process"],
                "row": "process_total",
                "carbon_t": p["carbon_in_t"] - p["carbon_out_t"],
                "tco2": p["tco2_direct"],
                "verified": p["verified"],
                "quantity": p["tonnes_t"],
                "unit": "t",
                "quantity_sources": "; ".join(p["missing"]) or "complete",
            }
        )
        writer.writerow(
            {
                "month": month,
                "process": p["process"],
                "row": "indirect_reported_outside_total",
                "tco2": p["tco2_indirect"],
                "quantity": p["net_electricity_kwh"],
                "unit": "kWh",
                "quantity_sources": "books: net purchased electricity",
            }
        )
    e = pack["enterprise"]
    writer.writerow(
        {
            "month": month,
            "process": "enterprise",
            "row": "covered_total",
            "tco2": e["tco2_direct_covered"],
            "verified": e["verified"],
        }
    )
    for v in pack["lab_inputs"]:
        writer.writerow(
            {
                "month": month,
                "process": "",
                "row": "manual_input",
                "material": v["subject"],
                "direction": v["name"],
                "quantity": v["value"],
                "unit": v["unit"],
                "quantity_sources": _sources(v),
            }
        )
    return out.getvalue()

"""How derived accounting data leaves the engine: InfluxDB line protocol and MQTT JSON payloads
(schema `ferrogate-energy/1`), and the reverse for rows read back from InfluxDB.

The names here are a contract (docs/accounting.md §6): the API, Grafana and reports read them.
Numbers are written as floats except counts and years (integers); a missing value is left out,
never written as 0.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from ferrogate.gateway.energy.aggregate import Period
from ferrogate.gateway.energy.books import BalanceRow, IntervalRow, Kpi
from ferrogate.gateway.energy.production import ProductionRecord
from ferrogate.gateway.lineprotocol import escape_tag, quote_field, written_whole
from ferrogate.gateway.reading import Quality
from ferrogate.gateway.timeutil import iso_utc

SCHEMA = "ferrogate-energy/1"
INTERVAL = "energy_interval"
RECORD = "production_record"
KPI = "energy_kpi"
BALANCE = "energy_balance"
MEASUREMENTS = (INTERVAL, RECORD, KPI, BALANCE)
_INT_FIELDS = frozenset({"records", "excluded_records", "grid_year", "start_ns"})
# rows read back whole: the fields record_line and interval_line always write
RECORD_WHOLE = written_whole(("id", "start_ns", "electricity_kwh", "waste_heat_kwh", "quality", "flags"))
INTERVAL_WHOLE = written_whole(("value", "quality", "flags"))
# the KPI fields by theme (§6) are in kpi_fields.py


def field(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return f"{name}={'true' if value else 'false'}"
    if name in _INT_FIELDS and isinstance(value, int):
        return f"{name}={value}i"
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            return None
        return f"{name}={float(value)!r}"
    return f"{name}={quote_field(str(value))}"


def line(measurement: str, tags: Mapping[str, str], fields: Mapping[str, Any], t_ns: int) -> str:
    tag_text = ",".join(f"{k}={escape_tag(v)}" for k, v in tags.items() if v)
    field_text = ",".join(f for k, v in fields.items() if (f := field(k, v)) is not None)
    return f"{measurement},{tag_text} {field_text} {t_ns}"


def flags_text(flags: Any) -> str:
    """Always a field, empty when there are none: a row corrected in place (a partial bucket made
    whole by readings that came later) overwrites its point, and InfluxDB keeps any field the new
    line leaves out, so an omitted `flags` would keep the old row's `partial_coverage`."""
    return ",".join(sorted(str(f) for f in flags))


def interval_line(site: str, row: IntervalRow) -> str:
    tags = {"site": site, "asset": row.asset, "role": row.role, "source": row.source, "unit": row.unit}
    fields = {"value": row.value, "quality": row.quality.value, "flags": flags_text(row.flags)}
    return line(INTERVAL, tags, fields, row.start_ns)


def record_fields(rec: ProductionRecord, material_units: Mapping[str, str]) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "id": rec.id,
        "start_ns": rec.start_ns,
        "duration_s": (rec.end_ns - rec.start_ns) / 1e9,
        "tonnes_t": rec.tonnes,
        "electricity_kwh": rec.electricity_kwh,
        "waste_heat_kwh": rec.waste_heat_kwh,
        "net_electricity_kwh": rec.electricity_kwh - rec.waste_heat_kwh,
        "kwh_per_t": rec.kwh_per_t,
    }
    for material, qty in sorted(rec.consumables.items()):
        fields[f"{material}_{material_units[material]}"] = qty
    fields["quality"] = rec.quality.value
    fields["flags"] = flags_text(rec.flags)
    return fields


def record_line(site: str, rec: ProductionRecord, material_units: Mapping[str, str]) -> str:
    tags = {"site": site, "asset": rec.unit, "product": rec.product, "kind": rec.kind}
    fields = {"start": iso_utc(rec.start_ns), **record_fields(rec, material_units)}
    return line(RECORD, tags, fields, rec.end_ns)


def kpi_line(site: str, kpi: Kpi) -> str:
    tags = {"site": site, "scope": kpi.scope, "subject": kpi.subject, "period": kpi.period.kind.value}
    fields = {
        "label": kpi.period.label,
        "complete": kpi.complete,
        **kpi.fields,
        "quality": kpi.quality.value,
        "flags": flags_text(kpi.flags),
        "provenance": json.dumps(kpi.provenance, ensure_ascii=False, sort_keys=True),
    }
    return line(KPI, tags, fields, kpi.period.start_ns)


def balance_fields(row: BalanceRow) -> dict[str, Any]:
    """A balance's values, shared by the InfluxDB line and the MQTT payload (flags each way)."""
    b = row.balance
    return {
        "complete": row.complete,
        "main_kwh": b.main_kwh,
        "members_kwh": b.members_kwh,
        "loss_kwh": b.loss_kwh,
        "loss_percent": b.loss_percent,
        "status": b.status.value,
        "quality": b.quality.value,
    }


def balance_line(site: str, row: BalanceRow) -> str:
    b = row.balance
    tags = {"site": site, "group": b.group, "period": row.period.kind.value}
    fields = {"label": row.period.label, **balance_fields(row), "flags": flags_text(b.flags)}
    return line(BALANCE, tags, fields, row.period.start_ns)


# --- MQTT ------------------------------------------------------------------------------------------


def record_topic(root: str, site: str, asset: str) -> str:
    return f"{root}/{site}/energy/record/{asset}"


def interval_topic(root: str, site: str, asset: str) -> str:
    return f"{root}/{site}/energy/interval/{asset}"


def kpi_topic(root: str, site: str, kpi: Kpi) -> str:
    return f"{root}/{site}/energy/kpi/{kpi.period.kind.value}/{kpi.scope}/{kpi.subject}"


def balance_topic(root: str, site: str, row: BalanceRow) -> str:
    return f"{root}/{site}/energy/balance/{row.period.kind.value}/{row.balance.group}"


def period_doc(p: Period) -> dict[str, Any]:
    return {"kind": p.kind.value, "label": p.label, "start": iso_utc(p.start_ns), "end": iso_utc(p.end_ns)}


def dumps(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def clean(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in fields.items()}


def record_payload(site: str, rec: ProductionRecord, material_units: Mapping[str, str]) -> bytes:
    doc = {
        "schema": SCHEMA,
        "site": site,
        "type": "record",
        "asset": rec.unit,
        "product": rec.product,
        "kind": rec.kind,
        "start": iso_utc(rec.start_ns),
        "end": iso_utc(rec.end_ns),
        "end_ns": rec.end_ns,  # exact: the record's row time (a group center rewrites the row from this)
        **clean(record_fields(rec, material_units)),
    }
    doc["flags"] = sorted(str(f) for f in rec.flags)
    return dumps(doc)


def intervals_payload(site: str, asset: str, rows: list[IntervalRow]) -> bytes:
    return dumps(
        {
            "schema": SCHEMA,
            "site": site,
            "type": "interval",
            "asset": asset,
            "intervals": [
                {
                    "role": r.role,
                    "source": r.source,
                    "unit": r.unit,
                    "start": iso_utc(r.start_ns),
                    "end": iso_utc(r.end_ns),
                    "value": r.value,
                    "quality": r.quality.value,
                    "flags": list(r.flags),
                }
                for r in rows
            ],
        }
    )


def kpi_payload(site: str, kpi: Kpi) -> bytes:
    return dumps(
        {
            "schema": SCHEMA,
            "site": site,
            "type": "kpi",
            "scope": kpi.scope,
            "subject": kpi.subject,
            "period": period_doc(kpi.period),
            "complete": kpi.complete,
            "quality": kpi.quality.value,
            "flags": [str(f) for f in kpi.flags],
            "fields": clean(kpi.fields),
            "provenance": kpi.provenance,
        }
    )


def balance_payload(site: str, row: BalanceRow) -> bytes:
    b = row.balance
    return dumps(
        {
            "schema": SCHEMA,
            "site": site,
            "type": "balance",
            "group": b.group,
            "period": period_doc(row.period),
            **clean(balance_fields(row)),
            "flags": sorted(str(f) for f in b.flags),
        }
    )


# --- reading derived rows back from InfluxDB ----------------------------------------------------


def record_from_row(
    tags: Mapping[str, str], row: Mapping[str, Any], material_units: Mapping[str, str]
) -> ProductionRecord:
    """A record as written by `record_line` (columns: time in ns and the fields)."""
    rec = ProductionRecord(
        tags["asset"],
        tags["product"],
        tags["kind"],
        str(row["id"]),
        int(row["start_ns"]),
        int(row["time"]),
        row.get("tonnes_t"),
    )
    rec.electricity_kwh = float(row.get("electricity_kwh") or 0.0)
    rec.waste_heat_kwh = float(row.get("waste_heat_kwh") or 0.0)
    for material, unit in material_units.items():
        value = row.get(f"{material}_{unit}")
        if value is not None:
            rec.consumables[material] = float(value)
    rec.quality = Quality(row.get("quality") or "good")
    rec.flags = set(filter(None, str(row.get("flags") or "").split(",")))
    return rec


def interval_from_row(tags: Mapping[str, str], row: Mapping[str, Any], step_ns: int) -> IntervalRow:
    start = int(row["time"])
    flags = tuple(filter(None, str(row.get("flags") or "").split(",")))
    return IntervalRow(
        tags["asset"],
        tags["role"],
        tags.get("source", ""),
        tags.get("unit", ""),
        start,
        start + step_ns,
        float(row["value"]),
        Quality(row.get("quality") or "good"),
        flags,
    )

"""How cost figures leave the engine: InfluxDB line protocol and MQTT payloads (schema
`ferrogate-cost/1`), and cost records read back from InfluxDB. The names are a contract
(docs/cost.md): the API, Grafana and the monthly report read them. A value that does not exist (no
tonnes, no position, no demand charge) is left out, never written as 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ferrogate.gateway.cost.books import CostPeriod, MonthDemand, MonthSurcharge, RecordCost
from ferrogate.gateway.cost.config import TouPeriod
from ferrogate.gateway.cost.surcharge import SurchargeResult
from ferrogate.gateway.cost.tou import TouSplit
from ferrogate.gateway.energy.wire import clean, dumps, flags_text, line, period_doc, written_whole
from ferrogate.gateway.reading import Quality
from ferrogate.gateway.timeutil import iso_utc

SCHEMA = "ferrogate-cost/1"
RECORD = "cost_record"
PERIOD = "cost_period"
DEMAND = "cost_demand"
SURCHARGE = "cost_surcharge"
MEASUREMENTS = (RECORD, PERIOD, DEMAND, SURCHARGE)
# a cost record read back whole: the fields record_line always writes
RECORD_WHOLE = written_whole(("id", "start_ns", "electricity_kwh", "cost_yuan", "quality", "flags"))


# --- InfluxDB ----------------------------------------------------------------------------------


def record_line(site: str, cost: RecordCost) -> str:
    tags = {"site": site, "asset": cost.unit, "product": cost.product, "kind": cost.kind}
    fields = {"start": iso_utc(cost.start_ns), **cost.fields(), "quality": cost.quality.value}
    return line(RECORD, tags, {**fields, "flags": flags_text(cost.flags)}, cost.end_ns)


def period_line(site: str, row: CostPeriod) -> str:
    tags = {"site": site, "scope": row.scope, "subject": row.subject, "period": row.period.kind.value}
    fields = {"label": row.period.label, "complete": row.complete, **row.fields(), "quality": row.quality.value}
    return line(PERIOD, tags, {**fields, "flags": flags_text(row.flags)}, row.period.start_ns)


def demand_fields(d: MonthDemand) -> dict[str, Any]:
    fields = d.fields()
    start = fields.pop("max_window_start_ns")
    return {"complete": d.complete, **fields, "max_window_start": iso_utc(start) if start is not None else None}


def demand_line(site: str, d: MonthDemand) -> str:
    fields = {"label": d.period.label, **demand_fields(d), "quality": d.quality.value, "flags": flags_text(d.flags)}
    return line(DEMAND, {"site": site, "meter": d.meter}, fields, d.period.start_ns)


def surcharge_fields(s: MonthSurcharge) -> dict[str, Any]:
    return {"complete": s.complete, **result_fields(s.result)}


def result_fields(r: SurchargeResult) -> dict[str, Any]:
    """A surcharge's figures under the names of `cost_surcharge` (the API shows the same)."""
    return {
        "position": r.position.name if r.position else None,
        "position_scale": r.position.scale.value if r.position else None,
        "position_origin": r.position.origin.value if r.position else None,
        "position_source": r.position.source if r.position else None,
        "kwh": r.kwh,
        "yuan_per_kwh": r.yuan_per_kwh,
        "surcharge_yuan": r.surcharge_yuan,
        "better_position": r.better_position,
        "better_yuan_per_kwh": r.better_yuan_per_kwh,
        "saving_one_grade_yuan": r.saving_one_grade_yuan,
    }


def surcharge_line(site: str, s: MonthSurcharge) -> str:
    tags = {"site": site, "surcharge": s.result.surcharge, "product": s.result.product}
    fields = {"label": s.period.label, **surcharge_fields(s), "flags": flags_text(s.result.flags)}
    return line(SURCHARGE, tags, fields, s.period.start_ns)


# --- MQTT --------------------------------------------------------------------------------------


def record_topic(root: str, site: str, cost: RecordCost) -> str:
    return f"{root}/{site}/cost/record/{cost.unit}"


def period_topic(root: str, site: str, row: CostPeriod) -> str:
    return f"{root}/{site}/cost/period/{row.period.kind.value}/{row.scope}/{row.subject}"


def demand_topic(root: str, site: str, d: MonthDemand) -> str:
    return f"{root}/{site}/cost/demand/{d.meter}"


def surcharge_topic(root: str, site: str, s: MonthSurcharge) -> str:
    return f"{root}/{site}/cost/surcharge/{s.result.surcharge}/{s.result.product}"


def _doc(site: str, doc_type: str, **body: Any) -> bytes:
    return dumps({"schema": SCHEMA, "site": site, "type": doc_type, **body})


def record_payload(site: str, cost: RecordCost) -> bytes:
    return _doc(
        site,
        "record",
        asset=cost.unit,
        product=cost.product,
        kind=cost.kind,
        start=iso_utc(cost.start_ns),
        end=iso_utc(cost.end_ns),
        **clean(cost.fields()),
        quality=cost.quality.value,
        flags=sorted(cost.flags),
    )


def period_payload(site: str, row: CostPeriod) -> bytes:
    return _doc(
        site,
        "period",
        scope=row.scope,
        subject=row.subject,
        period=period_doc(row.period),
        complete=row.complete,
        quality=row.quality.value,
        flags=sorted(row.flags),
        fields=clean(row.fields()),
    )


def demand_payload(site: str, d: MonthDemand) -> bytes:
    return _doc(
        site,
        "demand",
        meter=d.meter,
        period=period_doc(d.period),
        **clean(demand_fields(d)),
        quality=d.quality.value,
        flags=sorted(d.flags),
    )


def surcharge_payload(site: str, s: MonthSurcharge) -> bytes:
    return _doc(
        site,
        "surcharge",
        surcharge=s.result.surcharge,
        product=s.result.product,
        period=period_doc(s.period),
        **clean(surcharge_fields(s)),
        flags=sorted(s.result.flags),
    )


# --- reading cost records back from InfluxDB (restart, period sums) ---------------------------------


def record_from_row(tags: Mapping[str, str], row: Mapping[str, Any]) -> RecordCost:
    """A cost record as written by `record_line` (columns: time in ns and the fields)."""
    split = TouSplit()
    for period in TouPeriod:
        kwh = row.get(f"kwh_{period.value}")
        if kwh is not None:
            split.kwh[period] = float(kwh)
        yuan = row.get(f"yuan_{period.value}")
        if yuan is not None:
            split.yuan[period] = float(yuan)
    split.cost_yuan = float(row.get("cost_yuan") or 0.0)
    split.untariffed_kwh = float(row.get("untariffed_kwh") or 0.0)
    split.tariffs = set(filter(None, str(row.get("tariffs") or "").split(",")))
    tonnes = row.get("tonnes_t")
    return RecordCost(
        str(row["id"]),
        tags["asset"],
        tags["product"],
        tags["kind"],
        int(row["start_ns"]),
        int(row["time"]),
        None if tonnes is None else float(tonnes),
        split,
        Quality(row.get("quality") or "good"),
        set(filter(None, str(row.get("flags") or "").split(","))),
    )

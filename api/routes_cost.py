"""Electricity cost: heats and taps with their cost, period costs per unit, product and plant, the
month's maximum demand and its charge (with the live forecast of the current window), surcharges,
the month's cost section and the tariffs with their sources (docs/cost.md).

Figures are read from the cost series the energy role wrote to InfluxDB, like the energy routes.
"""
# no `from __future__ import annotations`: FastAPI evaluates route annotations that use closure values

from typing import Annotated, Any

from fastapi import APIRouter, Query

from ferrogate.api import auth
from ferrogate.api.auth import error
from ferrogate.api.context import ApiContext
from ferrogate.api.cost_reader import CostReader
from ferrogate.api.influxql import q
from ferrogate.api.params import (
    AssetId,
    From,
    Group,
    Month,
    ProductId,
    RecentFrom,
    RecentTo,
    To,
    WholePlant,
    parse_month,
    parse_range,
    parse_recent_range,
)
from ferrogate.api.routes_energy import ERRORS, EnergyReader, period_fields, record_head
from ferrogate.gateway.cost import wire
from ferrogate.gateway.cost.config import TouPeriod
from ferrogate.gateway.cost.model import CostModel
from ferrogate.gateway.cost.report import UNITS, by_period
from ferrogate.gateway.energy.aggregate import Period
from ferrogate.gateway.timeutil import iso_utc

COST_ERRORS = {
    **ERRORS,
    404: {"model": ERRORS[404]["model"], "description": "no cost section, unknown asset or product"},
}
COST_FIELDS = ("tonnes_t", "electricity_kwh", "cost_yuan", "yuan_per_kwh", "yuan_per_t", "valley_share_percent")
COST_UNITS = {**UNITS, "cost_yuan": "yuan", "untariffed_kwh": "kWh", "price": "yuan/kW-month or yuan/kVA-month"}
DEMAND_FIELDS = (
    "window_s",
    "max_kw",
    "max_window_start",
    "windows",
    "tariff",
    "basis",
    "price",
    "contracted_kw",
    "capacity_kva",
    "billed_kw",
    "excess_kw",
    "charge_yuan",
)


def cost_fields(row: dict[str, Any]) -> dict[str, Any]:
    """A stored cost row (record or period) as the API shows it."""
    return {
        **{f: row.get(f) for f in COST_FIELDS},
        "kwh_by_period": by_period(row),
        "cost_by_period_yuan": by_period(row, "yuan"),
        "untariffed_kwh": row.get("untariffed_kwh"),
        "tariffs": [t for t in str(row.get("tariffs") or "").split(",") if t],
    }


def cost_router(context: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/api/v1/cost", tags=["cost"], responses=COST_ERRORS, dependencies=[auth.viewer])
    energy = EnergyReader(context)
    max_days = context.plant.api.max_range_days
    page_max = context.plant.api.page_size_max
    zone = context.plant.site.timezone

    def require() -> tuple[CostModel, CostReader]:
        energy.require()
        if context.cost is None:
            raise error(404, "no_cost", "this plant file has no 'cost' section (tariffs): no cost figures")
        return context.cost, CostReader(energy, context.cost, context.compliance)

    def month_of(text: str) -> tuple[CostModel, CostReader, Period]:
        model, reader = require()
        return model, reader, model.accounting.calendar.month(parse_month(text))

    @router.get("/heats")
    async def heats(
        from_: RecentFrom = None,
        to: RecentTo = None,
        asset: Annotated[str | None, Query(description="furnace id; all units when absent")] = None,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=page_max)] = 100,
    ) -> dict[str, Any]:
        """EAF heats, furnace taps and continuous intervals ending in the range, newest first: kWh in
        each time-of-use period (split at the band boundaries on the counter readings), energy cost,
        yuan/kWh, yuan/t, valley share. Without `from` and `to`: the last 24 hours."""
        _, reader = require()
        rng = parse_recent_range(from_, to, max_days)
        where = f"time >= {rng.start_ns} AND time < {rng.end_ns}"
        if asset is not None:
            energy.scope(asset, None, False)
            where += f" AND asset={q(asset)}"
        rows = await reader.rows(wire.RECORD, where, "asset, product, kind")
        rows.sort(key=lambda r: -r["time"])
        items = [
            {
                **record_head(r),
                **cost_fields(r),
                "quality": r.get("quality"),
                "flags": [f for f in str(r.get("flags") or "").split(",") if f],
            }
            for r in rows[offset : offset + limit]
        ]
        return {
            "from": iso_utc(rng.start_ns),
            "to": iso_utc(rng.end_ns),
            "total": len(rows),
            "offset": offset,
            "limit": limit,
            "timezone": zone,
            "units": COST_UNITS,
            "items": items,
        }

    @router.get("/periods")
    async def periods(
        from_: From,
        to: To,
        asset: AssetId = None,
        product: ProductId = None,
        plant: WholePlant = False,
        group: Group = "day",
    ) -> dict[str, Any]:
        """Per shift, day or month: kWh in each time-of-use period, energy cost, yuan/kWh, yuan/t and
        valley share; a unit's or product's period is the sum of the heats that ended in it, the plant's
        is the billing meter's 15-minute energy priced band by band."""
        _, reader = require()
        rng = parse_range(from_, to, max_days)
        scope, subject, _ = energy.scope(asset, product, plant)
        where = (
            f"scope={q(scope)} AND subject={q(subject)} AND period={q(group)} "
            f"AND time >= {rng.start_ns} AND time < {rng.end_ns}"
        )
        rows = await reader.rows(wire.PERIOD, where, "scope, subject, period")
        items = [
            {
                **period_fields(r),
                "records": r.get("records"),
                "excluded_records": r.get("excluded_records"),
                **cost_fields(r),
            }
            for r in sorted(rows, key=lambda r: r["time"])
        ]
        return {
            "scope": scope,
            "subject": subject,
            "group": group,
            "timezone": zone,
            "units": COST_UNITS,
            "periods": items,
        }

    @router.get("/demand")
    async def demand(month: Month) -> dict[str, Any]:
        """The month's maximum 15-minute demand of the billing meter (aligned windows), when it
        occurred, the demand charge of the tariff in force (by maximum demand or by capacity), and the
        live forecast of the current window where the demand alarm runs in this process."""
        model, reader, period = month_of(month)
        rows = await reader.month_rows(wire.DEMAND, period, "meter")
        row = rows[0] if rows else None
        found = model.demand_charge_on(period.local_date)
        return {
            "month": period.label,
            "meter": model.meter,
            "timezone": zone,
            "units": COST_UNITS,
            **({**period_fields(row), **{f: row.get(f) for f in DEMAND_FIELDS}} if row else {"label": period.label}),
            "demand_charge": found[1].model_dump() if found else None,
            "source": found[0].source.model_dump() if found else None,
            "live": context.demand_forecast() if context.demand_forecast is not None else None,
        }

    @router.get("/surcharges")
    async def surcharges(month: Month) -> dict[str, Any]:
        """Each surcharge rule (tiered / differentiated price) on each of its products' month
        electricity: the position and where it came from, the rate, the surcharge, and what one
        position better would save. A position that is not known gives no figure (`no_position`)."""
        model, reader, period = month_of(month)
        rules = {r.id: r for r in model.config.surcharges}
        charged = (await reader.month_section(period))["surcharges"]
        items = [
            {**s, "rule": rules[s["surcharge"]].model_dump(mode="json")} for s in charged if s["surcharge"] in rules
        ]
        return {"month": period.label, "units": COST_UNITS, "items": items}

    @router.get("/month")
    async def month_section(month: Month) -> dict[str, Any]:
        """The monthly report's cost section: per product and for the plant, energy cost by time-of-use
        period, demand charge, surcharges, totals and yuan/t, with every tariff's source and whether
        its figures were verified."""
        _, reader, period = month_of(month)
        return await reader.month_section(period)

    @router.get("/tariffs")
    async def tariffs() -> dict[str, Any]:
        """The plant's tariff editions (time-of-use bands by month and day type, prices, demand
        charge), surcharge rules and demand alarm, each with its source document and `verified`."""
        model, _ = require()
        cfg = model.config
        return {
            "timezone": zone,
            "periods": [p.value for p in TouPeriod],
            "meter": model.meter,
            "weekend_days": cfg.weekend_days,
            "holidays": [d.isoformat() for d in cfg.holidays],
            "tariffs": [t.model_dump(mode="json") for t in cfg.tariffs],
            "surcharges": [s.model_dump(mode="json") for s in cfg.surcharges],
            "demand_alarm": cfg.demand_alarm.model_dump(mode="json") if cfg.demand_alarm else None,
        }

    return router

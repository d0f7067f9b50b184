"""The monthly energy and carbon report (JSON, CSV, printable bilingual HTML and PDF): the books'
month per product and for the plant, limit grades, benchmark status, carbon market, CBAM,
footprints, meter balance and completeness, the month's alarms and manual inputs."""
# no `from __future__ import annotations`: FastAPI evaluates route annotations that use closure values

import asyncio
import csv
import io
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from ferrogate.api import auth
from ferrogate.api.context import ApiContext
from ferrogate.api.cost_reader import CostReader
from ferrogate.api.influxql import measurement, q
from ferrogate.api.params import TimeRange
from ferrogate.api.routes_compliance import guarded, month_of, service_of
from ferrogate.api.routes_energy import ERRORS, UNITS, EnergyReader, period_fields, provenance
from ferrogate.gateway.alarm_journal import merge, read_journal
from ferrogate.gateway.alarms import Alarm
from ferrogate.gateway.compliance.report import monthly_report
from ferrogate.gateway.cost.report import section_rows
from ferrogate.gateway.energy import wire
from ferrogate.gateway.energy.aggregate import Period
from ferrogate.gateway.timeutil import iso_utc

ALARM_LOOKBACK_NS = 92 * 86_400 * 1_000_000_000  # alarms raised up to a quarter before the month
MEDIA = {"csv": "text/csv", "html": "text/html", "pdf": "application/pdf"}


def alarm_row(a: Alarm) -> dict[str, Any]:
    return {
        "kind": a.kind.value,
        "source": a.source,
        "severity": a.severity.value,
        "message": a.message,
        "raised": iso_utc(a.raised_ns),
        "cleared": iso_utc(a.cleared_ns) if a.cleared_ns is not None else None,
        "acked_by": a.acked_by,
    }


async def month_alarms(context: ApiContext, period: Period) -> list[dict[str, Any]]:
    """Alarms raised in the month or active in it: the alarm journal in InfluxDB (from
    ALARM_LOOKBACK_NS before the month, so an alarm raised earlier and cleared in it is there) and
    the book's own. An alarm of an earlier process that was never cleared counts until its last
    journal row (the process that knew it ended)."""
    journaled = []
    if context.influx is not None:
        journaled = await read_journal(
            context.influx, context.plant.site.id, period.start_ns - ALARM_LOOKBACK_NS, period.end_ns
        )
    ongoing = {id(a) for a in context.alarms.listing() if a.active}  # this process knows them still active
    out = []
    for a in merge(journaled, context.alarms.listing()):
        still = period.end_ns if id(a) in ongoing else a.updated_ns  # not cleared: ongoing, or known until
        ended = a.cleared_ns if a.cleared_ns is not None else still
        if a.raised_ns < period.end_ns and ended >= period.start_ns:
            out.append(alarm_row(a))
    return out


def render(report: dict[str, Any], format: str) -> str | bytes:
    """HTML or PDF; matplotlib and WeasyPrint are imported here, in the worker thread, on first use
    (their import alone takes seconds and must not stall the event loop)."""
    from ferrogate.api.report_render import render_html, render_pdf

    html = render_html(report)
    return html if format == "html" else render_pdf(html)


def to_csv(rows: list[dict[str, Any]]) -> str:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns and k not in ("factors", "flags")]
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def reports_router(context: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["reports"], responses=ERRORS, dependencies=[auth.viewer])
    reader = EnergyReader(context)
    zone = context.plant.site.timezone

    async def month_row(scope: str, subject: str, period: Period) -> dict[str, Any] | None:
        rows = await reader.kpis(scope, subject, "month", TimeRange(period.start_ns, period.start_ns + 1))
        return {**period_fields(rows[0]), **rows[0], "factors": provenance(rows[0])} if rows else None

    async def balances(period: Period) -> list[dict[str, Any]]:
        series = await reader.query(
            f"SELECT * FROM {measurement(wire.BALANCE)} WHERE site={q(reader.site)} AND period='month' "
            f'AND time >= {period.start_ns} AND time < {period.start_ns + 1} GROUP BY "group"'
        )
        return [{"group": s.tags.get("group"), **period_fields(r), **r} for s in series for r in s.rows()]

    async def assemble(month: str) -> dict[str, Any]:
        reader.require()
        model = reader.model
        assert model is not None
        first = month_of(context, month)
        service = service_of(context)
        period = model.calendar.month(first)
        products = sorted(model.products)
        whole = TimeRange(period.start_ns, period.end_ns)
        rows = {p: await month_row("product", p, period) for p in products}
        daily = {p: await reader.kpis("product", p, "day", whole) for p in products}
        completeness: dict[str, float | None] = {}
        for p in products:
            assets = [a for u in model.units if u.product == p for a in u.electricity]
            completeness[p] = (await reader.completeness(assets, [period])).get(period.label)
        completeness["plant"] = (await reader.completeness(sorted(model.consumers), [period])).get(period.label)
        limits, ets, cbam, footprints, inputs = await guarded(
            asyncio.gather(
                service.limits(first),
                service.ets(first),
                service.cbam([first], period.label),
                service.footprints(first),
                service.inputs([period.label]),
            )
        )
        audit = service.store.audit(period.label) if service.store else []
        report = monthly_report(
            month=period.label,
            site=reader.site,
            site_name=context.plant.site.name,
            timezone=zone,
            generated_at=iso_utc(time.time_ns()),
            products=products,
            product_rows=rows,
            plant_row=await month_row("plant", reader.site, period),
            daily={p: [{**period_fields(d), **d} for d in days] for p, days in daily.items()},
            completeness=completeness,
            balances=await balances(period),
            limits=limits,
            ets=ets,
            cbam=cbam,
            footprints=footprints,
            alarms=await month_alarms(context, period),
            inputs=[v.as_dict() for v in inputs[period.label].values.values()],
            audit=[e.as_dict() for e in audit],
        )
        if context.cost is not None:  # the electricity cost section (docs/cost.md) where the plant has tariffs
            report["cost"] = await CostReader(reader, context.cost, context.compliance).month_section(period)
            report["rows"] += section_rows(report["cost"], reader.site)
        return report

    @router.get(
        "/reports/monthly",
        responses={200: {"content": {"text/csv": {}, "text/html": {}, "application/pdf": {}}}},
    )
    async def monthly(
        month: Annotated[str, Query(description="YYYY-MM (plant calendar)")],
        format: Annotated[Literal["json", "csv", "html", "pdf"], Query()] = "json",
    ) -> Any:
        """The monthly energy and carbon report per product and for the plant, as filed in energy-use
        and carbon reports: output, kWh/t, kgce/t and limit grades, benchmark status, tCO2 and tCO2/t,
        carbon market and CBAM, footprints, meter balance and completeness, the month's alarms and
        manual inputs. json, csv (one row per product and the plant), or printable bilingual html
        and pdf with charts. Reproducible for any past month from InfluxDB and the inputs' store."""
        report = await assemble(month)
        name = f"ferrogate-{report['month']}"
        if format == "json":
            return {**report, "units": UNITS_OF_ROWS}
        if format == "csv":
            body: str | bytes = to_csv(report["rows"])
        else:
            body = await asyncio.to_thread(render, report, format)  # seconds of CPU: off the event loop
            if format == "html":
                return HTMLResponse(body)
        return Response(
            body,
            media_type=MEDIA[format],
            headers={"Content-Disposition": f'attachment; filename="{name}.{format}"'},
        )

    return router


UNITS_OF_ROWS = {
    **UNITS,
    "cbam_see_direct_tco2e_per_t": "tCO2e/t",
    "footprint_kgco2e_per_t": "kgCO2e/t",
    "completeness_percent": "%",
    "consumption_kwh": "kWh",
    "purchased_kwh": "kWh",
    "waste_heat_share_percent": "%",
    "green_share_percent": "%",
    "water_reuse_percent": "%",
}

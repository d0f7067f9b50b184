"""Compliance: limit grades, the carbon market's month and evidence pack, CBAM, product footprints,
and the monthly manual inputs they use (operators enter them; every change is audited).

Figures are computed on request from the books in InfluxDB and the inputs' store, by the pure
functions in gateway/compliance/ (docs/compliance.md).
"""
# no `from __future__ import annotations`: FastAPI evaluates route annotations that use closure values

import time
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from ferrogate.api import auth
from ferrogate.api.auth import error
from ferrogate.api.context import ApiContext
from ferrogate.api.keys import StoredKey
from ferrogate.api.params import RecentFrom, RecentTo, parse_month, parse_recent_range
from ferrogate.api.schemas import ErrorOut
from ferrogate.gateway.compliance.ets import evidence_csv
from ferrogate.gateway.compliance.inputs import INPUTS, InputError, InputValue
from ferrogate.gateway.compliance_service import ComplianceService, ComplianceUnavailable
from ferrogate.gateway.timeutil import iso_utc

ERRORS = {
    400: {"model": ErrorOut, "description": "bad month, subject, input name or value (see detail.error)"},
    401: {"model": ErrorOut, "description": "no or unknown API key"},
    403: {"model": ErrorOut, "description": "the key's role may not do this"},
    404: {"model": ErrorOut, "description": "no accounting section, or no such input"},
    409: {"model": ErrorOut, "description": "no store for manual inputs is configured"},
    503: {"model": ErrorOut, "description": "the database is not available"},
}


class InputIn(BaseModel):
    subject: str = Field(description="product id, material id, or '<accounting unit>/<material>'")
    name: str = Field(description="input name, e.g. ore_grade_percent, carbon_content, consumption")
    value: float | str | None = Field(description="a number in the input's unit, a class name, or null to withdraw")
    source: str = Field(min_length=3, description="the document: lab report, weighbridge summary, declaration")
    note: str = ""


def service_of(context: ApiContext) -> ComplianceService:
    if context.compliance is None:
        raise error(404, "no_accounting", "this plant file has no 'accounting' section")
    return context.compliance


def month_of(context: ApiContext, text: str) -> date:
    """A month that exists and has begun in the plant's calendar."""
    first = parse_month(text)
    service = service_of(context)
    now = service.calendar.production_date(time.time_ns())
    if first > now:
        raise error(400, "future_month", f"month={text!r} has not begun (plant date {now.isoformat()})")
    return first


async def guarded(awaitable: Any) -> Any:
    try:
        return await awaitable
    except ComplianceUnavailable as exc:
        raise error(503, "database_unavailable", str(exc)) from exc


def compliance_router(context: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/api/v1/compliance", tags=["compliance"], responses=ERRORS)
    max_days = context.plant.api.max_range_days
    page_max = context.plant.api.page_size_max
    zone = context.plant.site.timezone

    @router.get("/limits", dependencies=[auth.viewer])
    async def limits(month: Annotated[str, Query(description="YYYY-MM (plant calendar)")]) -> dict[str, Any]:
        """Each product's grade under its mandatory energy-consumption limit standard (GB 21341-2022,
        GB 21347-2023, GB 21256-2025) for the month and the rolling 12 months: every graded
        indicator with value, unit, grade, margin to the next grade, the corrected levels and the
        corrections used, standard and edition. `no_limit_standard` where none applies."""
        first = month_of(context, month)
        return await guarded(service_of(context).limits(first))

    @router.get("/ets", dependencies=[auth.viewer], responses={200: {"content": {"text/csv": {}}}})
    async def ets(
        month: Annotated[str, Query(description="YYYY-MM (plant calendar)")],
        format: Annotated[Literal["json", "csv"], Query(description="csv: the evidence pack as one table")] = "json",
    ) -> Any:
        """China's carbon market, steel (CETS-AG-03.01-V01-2024): the month's direct CO2 by carbon mass
        balance per process and for the enterprise (covered total), indirect CO2 reported beside it,
        and the evidence pack: every quantity, carbon content, lab value and factor with its source."""
        pack = await guarded(service_of(context).ets(month_of(context, month)))
        if format == "json":
            return pack
        return Response(
            evidence_csv(pack),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="ferrogate-ets-{pack["month"]}.csv"'},
        )

    @router.get("/cbam", dependencies=[auth.viewer])
    async def cbam(
        month: Annotated[str | None, Query(description="YYYY-MM: one month")] = None,
        year: Annotated[int | None, Query(ge=2023, le=2100, description="a calendar year (annual declaration)")] = None,
    ) -> dict[str, Any]:
        """EU CBAM for each covered good made here (steel by CN code, FeMn 7202 1x, FeCr 7202 4x):
        specific direct embedded emissions with precursors, against the China default value and its
        mark-up; the plant's other products with their scope (SiMn, FeSi, silicon metal and
        electrolytic manganese are outside CBAM)."""
        if (month is None) == (year is None):
            raise error(400, "bad_period", "give exactly one of month=YYYY-MM or year=YYYY")
        service = service_of(context)
        if month is not None:
            first = month_of(context, month)
            return await guarded(service.cbam([first], first.strftime("%Y-%m")))
        assert year is not None
        now = service.calendar.production_date(time.time_ns())
        if year > now.year:
            raise error(400, "future_year", f"year={year} has not begun (plant date {now.isoformat()})")
        last = 12 if year < now.year else now.month
        return await guarded(service.cbam([date(year, m, 1) for m in range(1, last + 1)], str(year)))

    @router.get("/footprint", dependencies=[auth.viewer])
    async def footprints(month: Annotated[str, Query(description="YYYY-MM (plant calendar)")]) -> dict[str, Any]:
        """Each product's cradle-to-gate carbon footprint over the month, kgCO2e/t (GB/T 24067-2024):
        direct (carbon mass balance), electricity on a life-cycle basis, and the inputs' upstream
        factors, each with its source; what is missing is listed."""
        return await guarded(service_of(context).footprints(month_of(context, month)))

    @router.get("/footprint/heats", dependencies=[auth.viewer])
    async def heat_footprints(
        from_: RecentFrom = None,
        to: RecentTo = None,
        asset: Annotated[str | None, Query(description="furnace id; all units when absent")] = None,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=page_max)] = 100,
    ) -> dict[str, Any]:
        """The footprint of each heat, tap or batch that ended in the range (newest first): its own
        record plus its tonnage share of its unit's manually entered monthly quantities. Without
        `from` and `to`: the last 24 hours; the answer names the range (`from`, `to`)."""
        service = service_of(context)
        rng = parse_recent_range(from_, to, max_days)
        if asset is not None and asset not in service.model.units:
            raise error(404, "unknown_asset", f"no accounting unit {asset!r}", known=sorted(service.model.units))
        items = await guarded(service.record_footprints(rng.start_ns, rng.end_ns, asset))
        return {
            "from": iso_utc(rng.start_ns),
            "to": iso_utc(rng.end_ns),
            "total": len(items),
            "offset": offset,
            "limit": limit,
            "unit": "kgCO2e/t",
            "timezone": zone,
            "items": items[offset : offset + limit],
        }

    @router.get("/inputs", dependencies=[auth.viewer])
    async def list_inputs(month: Annotated[str, Query(description="YYYY-MM")]) -> dict[str, Any]:
        """The month's manual inputs with who entered them, when and from which document, and what
        may be entered (name, subject, unit, range or classes)."""
        first = parse_month(month)
        service = service_of(context)
        label = first.strftime("%Y-%m")
        inputs = await service.inputs([label])
        return {
            "month": label,
            "store": str(service.store.path) if service.store else None,
            "inputs": [v.as_dict() for v in inputs[label].values.values()],
            "catalogue": [
                {
                    "name": s.name,
                    "label": s.label,
                    "subject": s.subject.value,
                    "unit": s.unit,
                    "minimum": s.minimum,
                    "maximum": s.maximum,
                    "choices": list(s.choices) or None,
                }
                for s in INPUTS.values()
            ],
        }

    @router.get("/inputs/audit", dependencies=[auth.viewer])
    async def audit(month: Annotated[str | None, Query(description="YYYY-MM; all months when absent")] = None) -> dict:
        """Every change of a manual input: who (API key name), when, old and new value."""
        service = service_of(context)
        label = parse_month(month).strftime("%Y-%m") if month is not None else None
        entries = service.store.audit(label) if service.store else []
        return {"month": label, "entries": [e.as_dict() for e in entries]}

    @router.put("/inputs/{month}")
    async def put_input(
        month: Annotated[str, Path(description="YYYY-MM (plant calendar)")],
        body: InputIn,
        who: StoredKey = auth.operator,
    ) -> dict[str, Any]:
        """Enter, correct or (with `value: null`) withdraw a month's manual input (operator): a
        laboratory value (net calorific value, carbon content), a monthly consumption the meters do
        not give, or a correction of a limit standard. Every change is audited: who, when, old and
        new value. A withdrawn input lets the plant file's standing value or the reference apply."""
        service = service_of(context)
        if service.store is None:
            raise error(409, "no_input_store", "set compliance.inputs_path in the plant file to keep manual inputs")
        label = month_of(context, month).strftime("%Y-%m")
        now = time.time_ns()
        if body.value is None:
            audited = await service.delete_input(label, body.subject, body.name, who.name, now)
            if audited is None:
                raise error(404, "unknown_input", f"no input {body.name!r} of {body.subject!r} for {label}")
            return {"input": None, "replaced": audited.old_value, "audit": audited.as_dict()}
        try:
            value, unit = service.model.check_input(body.subject, body.name, body.value)
        except InputError as exc:
            raise error(400, exc.code, str(exc)) from exc
        entry = InputValue(label, body.subject, body.name, value, unit, body.source, body.note, who.name, now)
        old, audited = await service.set_input(entry)
        return {
            "input": entry.as_dict(),
            "replaced": None if old is None else {"value": old.value, **old.provenance()},
            "audit": audited.as_dict(),
        }

    return router

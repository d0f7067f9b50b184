"""Pollutant figures beside energy and carbon: each stack's hours, and per furnace and day or month
the kg of SO2, NOx, particulate... per tonne next to kWh/t and tCO2/t, with the stack's measured CO2
next to the books' direct CO2 (docs/hj212.md). Hours come from the raw CEMS readings in InfluxDB
(the logger's hourly data, or HJ 212 Appendix D statistics of its real-time data); tonnes, kWh/t and
tCO2 from the energy books' derived series."""
# no `from __future__ import annotations`: FastAPI evaluates route annotations that use closure values

from collections import defaultdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from ferrogate.api import auth
from ferrogate.api.auth import error
from ferrogate.api.context import ApiContext
from ferrogate.api.params import TimeRange, parse_range
from ferrogate.api.routes_energy import ERRORS, EnergyReader, q
from ferrogate.gateway.energy.aggregate import PeriodKind
from ferrogate.gateway.pollution.config import PollutionConfig, StackConfig
from ferrogate.gateway.pollution.emissions import HourEmission
from ferrogate.gateway.pollution.kpi import co2_comparison, period_emission, stack_hours
from ferrogate.gateway.pollution.reference import POLLUTANTS
from ferrogate.gateway.pollution.statistics import Sample
from ferrogate.gateway.timeutil import iso_utc

HOUR_FIELDS = ("concentration", "corrected", "flow_m3_s", "rate_kg_h", "mass_kg")


def pollution_router(context: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["pollution"], responses=ERRORS, dependencies=[auth.viewer])
    energy = EnergyReader(context)
    max_days = context.plant.api.max_range_days
    site = context.plant.site.id

    def config() -> PollutionConfig:
        if context.plant.pollution is None:
            raise error(404, "no_pollution", "this plant file has no 'pollution' section")
        if context.influx is None:
            raise error(503, "no_database", "this gateway has no InfluxDB connection")
        return context.plant.pollution

    def stack_of(stack_id: str) -> StackConfig:
        section = config()
        try:
            return section.stack(stack_id)
        except KeyError:
            raise error(404, "unknown_stack", f"no stack {stack_id!r}", known=[s.id for s in section.stacks]) from None

    async def hours_of(stack: StackConfig, rng: TimeRange) -> dict[str, list[HourEmission]]:
        refs = sorted({ref for _, ref in stack.points()})
        readings: dict[str, list[Sample]] = defaultdict(list)
        for ref in refs:
            device, _, point = ref.partition(".")
            for s in await energy.query(
                f'SELECT "value", "quality", "reason" FROM "reading" WHERE site={q(site)} AND device={q(device)} '
                f"AND point={q(point)} AND time >= {rng.start_ns} AND time < {rng.end_ns}"
            ):
                readings[ref] += [
                    Sample(r["time"], r.get("value"), r.get("quality") == "good", r.get("reason") or r.get("quality"))
                    for r in s.rows()
                ]
        return stack_hours(stack, readings, config().rules.rules())

    @router.get("/emissions/hourly")
    async def hourly(
        stack: Annotated[str, Query(description="stack id from the plant file's pollution section")],
        from_: Annotated[str, Query(alias="from", description="ISO 8601 with zone")],
        to: Annotated[str, Query(description="ISO 8601 with zone")],
    ) -> dict[str, Any]:
        """Each hour of the stack: per pollutant the average concentration (mg/m3), the O2-corrected one,
        flow, emission rate (kg/h), mass (kg, valid hours only) and the hour's flag (N, or why not)."""
        found = stack_of(stack)
        rng = parse_range(from_, to, max_days)
        by_pollutant = await hours_of(found, rng)
        hours: dict[int, dict[str, Any]] = {}
        for pollutant, items in by_pollutant.items():
            for h in items:
                entry = hours.setdefault(h.start_ns, {"start": iso_utc(h.start_ns)})
                entry[pollutant] = {f: getattr(h, f) for f in HOUR_FIELDS} | {"flag": h.flag}
        return {
            "stack": found.id,
            "furnace": found.furnace,
            "units": {
                "concentration": "mg/m3",
                "corrected": "mg/m3",
                "flow_m3_s": "m3/s",
                "rate_kg_h": "kg/h",
                "mass_kg": "kg",
            },
            "hours": [hours[t] for t in sorted(hours)],
        }

    @router.get("/kpi/pollutant-intensity")
    async def pollutant_intensity(
        asset: Annotated[str, Query(description="a furnace (accounting unit) with a stack in the pollution section")],
        from_: Annotated[str, Query(alias="from", description="ISO 8601 with zone")],
        to: Annotated[str, Query(description="ISO 8601 with zone")],
        group: Annotated[Literal["day", "month"], Query()] = "day",
    ) -> dict[str, Any]:
        """Per day or month: kg of each pollutant over the valid hours of the furnace's stacks, kg per
        tonne of product, beside kWh/t, tCO2/t and the books' direct tCO2, and the stacks' measured CO2
        (a05001) next to it. Hours that are flagged are counted, not filled."""
        section = config()
        stacks = [s for s in section.stacks if s.furnace == asset]
        if not stacks:
            raise error(
                404, "unknown_asset", f"no stack serves {asset!r}", known=sorted({s.furnace for s in section.stacks})
            )
        energy.require()
        rng = parse_range(from_, to, max_days)
        scope, subject, _ = energy.scope(asset, None, False)
        assert energy.model is not None
        periods = energy.model.calendar.periods(PeriodKind(group), rng.start_ns, rng.end_ns)
        span = TimeRange(periods[0].start_ns, periods[-1].end_ns) if periods else rng
        kpis = {row.get("label"): row for row in await energy.kpis(scope, subject, group, span)}
        hours: dict[str, list[HourEmission]] = defaultdict(list)
        for stack in stacks:
            for pollutant, items in (await hours_of(stack, span)).items():
                hours[pollutant] += items
        out = []
        for p in periods:
            row = kpis.get(p.label, {})
            tonnes = row.get("tonnes_t")
            day_rule = section.rules.day_min_hours if group == "day" else None
            figures = {k: period_emission(items, p.start_ns, p.end_ns, day_rule) for k, items in hours.items()}
            co2 = figures.get("co2")
            out.append(
                {
                    "label": p.label,
                    "start": iso_utc(p.start_ns),
                    "end": iso_utc(p.end_ns),
                    "tonnes_t": tonnes,
                    "kwh_per_t": row.get("kwh_per_t"),
                    "tco2_per_t": row.get("tco2_per_t"),
                    "tco2_direct": row.get("tco2_direct"),
                    "pollutants": {k: v.as_dict(tonnes) for k, v in figures.items()},
                    "co2": co2_comparison(co2.kg if co2 and co2.valid_hours else None, row.get("tco2_direct")),
                }
            )
        return {
            "asset": asset,
            "stacks": [s.id for s in stacks],
            "group": group,
            "timezone": context.plant.site.timezone,
            "units": {"kg": "kg", "kg_per_t": "kg/t", "tonnes_t": "t", "kwh_per_t": "kWh/t", "tco2_per_t": "tCO2/t"},
            "pollutants": {k: {"code": v.code, "name": v.name} for k, v in POLLUTANTS.items() if k in hours},
            "limits": [
                {"stack": s.id, "pollutant": lim.pollutant, "corrected": lim.corrected, **lim.factor().provenance()}
                for s in stacks
                for lim in s.limits
            ],
            "rules": section.rules.model_dump(),
            "periods": out,
        }

    return router

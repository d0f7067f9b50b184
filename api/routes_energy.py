"""Energy and carbon figures: KPIs, heats and taps, benchmarks, balance, recompute (the monthly report is
in routes_reports).

Every figure is read from the derived series the accounting engine wrote to InfluxDB
(docs/accounting.md section 6), so the API, Grafana and reports show the same numbers.
"""
# no `from __future__ import annotations`: FastAPI evaluates route annotations that use closure values

import json
import time
from datetime import date
from typing import Annotated, Any, Literal, NamedTuple

from fastapi import APIRouter, Query

from ferrogate.api import auth
from ferrogate.api.auth import error
from ferrogate.api.context import ApiContext
from ferrogate.api.influxql import measurement, q
from ferrogate.api.params import (
    AssetId,
    ProductId,
    RecentFrom,
    RecentTo,
    TimeRange,
    WholePlant,
    parse_range,
    parse_recent_range,
)
from ferrogate.api.schemas import ErrorOut
from ferrogate.gateway.energy import kpi_fields, wire
from ferrogate.gateway.energy.aggregate import Period, PeriodKind
from ferrogate.gateway.energy.benchmark import BenchmarkResult
from ferrogate.gateway.energy.books import Books
from ferrogate.gateway.influx import InfluxError, Series
from ferrogate.gateway.timeutil import iso_utc

ERRORS = {
    400: {"model": ErrorOut, "description": "bad time range, month or scope (see detail.error)"},
    **auth.AUTH_ERRORS,
    404: {"model": ErrorOut, "description": "unknown asset or product"},
    503: {"model": ErrorOut, "description": "the database or the accounting engine is not available"},
}
INTENSITY_FIELDS = kpi_fields.KPI_INTENSITY_FIELDS
PLANT_ENERGY_FIELDS = kpi_fields.KPI_PLANT_ENERGY_FIELDS
CARBON_FIELDS = ("tonnes_t", *kpi_fields.KPI_CARBON_FIELDS)
UNITS = {
    "tonnes_t": "t",
    "electricity_kwh": "kWh",
    "waste_heat_kwh": "kWh",
    "net_electricity_kwh": "kWh",
    "kwh_per_t": "kWh/t",
    "comprehensive_kgce": "kgce",
    "kgce_per_t": "kgce/t",
    "grid_tco2_per_mwh": "tCO2/MWh",
    "consumption_kwh": "kWh",
    "purchased_kwh": "kWh",
    "waste_heat_share_percent": "%",
    "green_share_percent": "%",
    "water_reuse_percent": "%",
    "green_kwh": "kWh",
    **{f: "tCO2" for f in CARBON_FIELDS if f.startswith("tco2_") and not f.endswith("per_t")},
    "tco2_per_t": "tCO2/t",
    "tco2_direct_per_t": "tCO2/t",
    "tco2_per_t_market": "tCO2/t",
}
# what GET /heats answers without from/to: the last day, the first thing a newcomer asks for


class EnergyReader:
    """Reads the engine's derived series for the routes; knows the plant's units and products."""

    def __init__(self, context: ApiContext) -> None:
        self.context = context
        self.model = context.accounting
        self.site = context.plant.site.id

    def require(self) -> None:
        if self.model is None:
            raise error(404, "no_accounting", "this plant file has no 'accounting' section")
        if self.context.influx is None:
            raise error(503, "no_database", "this gateway has no InfluxDB connection")

    async def query(self, text: str) -> list[Series]:
        assert self.context.influx is not None
        try:
            return await self.context.influx.query(text)
        except InfluxError as exc:
            raise error(503, "database_unavailable", f"InfluxDB: {exc}") from exc

    def scope(self, asset: str | None, product: str | None, plant: bool) -> tuple[str, str, list[str]]:
        """(scope, subject, assets whose electricity counts) of a request; no scope given: the plant."""
        assert self.model is not None
        if sum((asset is not None, product is not None, plant)) > 1:
            raise error(400, "bad_scope", "give at most one of asset=, product= or plant=true (none: the whole plant)")
        if asset is not None:
            unit = next((u for u in self.model.units if u.asset == asset), None)
            if unit is None:
                raise error(
                    404,
                    "unknown_asset",
                    f"no accounting unit for asset {asset!r}",
                    known=sorted(u.asset for u in self.model.units),
                )
            return "unit", asset, list(unit.electricity)
        if product is not None:
            if product not in self.model.products:
                raise error(404, "unknown_product", f"no product {product!r}", known=sorted(self.model.products))
            assets = [a for u in self.model.units if u.product == product for a in u.electricity]
            return "product", product, assets
        return "plant", self.site, sorted(self.model.consumers)

    async def kpis(self, scope: str, subject: str, group: str, rng: TimeRange) -> list[dict[str, Any]]:
        series = await self.query(
            f"SELECT * FROM {measurement(wire.KPI)} WHERE site={q(self.site)} AND scope={q(scope)} "
            f"AND subject={q(subject)} AND period={q(group)} AND time >= {rng.start_ns} AND time < {rng.end_ns}"
        )
        return [row for s in series for row in s.rows()]

    async def completeness(self, assets: list[str], periods: list[Period]) -> dict[str, float | None]:
        """Percentage of Good electricity buckets per period label (None where there are none)."""
        if not periods or not assets:
            return {}
        pattern = "|".join(a.replace("/", r"\/") for a in assets)
        series = await self.query(
            f'SELECT "quality" FROM {measurement(wire.INTERVAL)} WHERE site={q(self.site)} '
            f"AND asset =~ /^({pattern})$/ AND role='electricity_import' "
            f"AND time >= {periods[0].start_ns} AND time < {periods[-1].end_ns}"
        )
        counts = {p.label: [0, 0] for p in periods}
        for s in series:
            for row in s.rows():
                period = next((p for p in periods if p.start_ns <= row["time"] < p.end_ns), None)
                if period is not None:
                    counts[period.label][1] += 1
                    counts[period.label][0] += row["quality"] == "good"
        return {label: round(100 * good / total, 2) if total else None for label, (good, total) in counts.items()}


def pick(row: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {f: row.get(f) for f in fields}


def provenance(row: dict[str, Any]) -> dict[str, Any]:
    text = row.get("provenance")
    return json.loads(text) if text else {}


def period_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "label": row.get("label"),
        "start": iso_utc(row["time"]),
        "complete": row.get("complete"),
        "quality": row.get("quality"),
        "flags": (row.get("flags") or "").split(",") if row.get("flags") else [],
    }


def record_head(row: dict[str, Any]) -> dict[str, Any]:
    """Who and when of a stored heat or tap row (tags and fields merged)."""
    keys = ("id", "asset", "product", "kind", "start")
    return {**{k: row.get(k) for k in keys}, "end": iso_utc(row["time"])}


class KpiRows(NamedTuple):
    range: TimeRange
    scope: str
    subject: str
    assets: list[str]  # whose electricity counts (for completeness)
    rows: list[dict[str, Any]]


def energy_router(context: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["energy"], responses=ERRORS, dependencies=[auth.viewer])
    reader = EnergyReader(context)
    max_days = context.plant.api.max_range_days
    page_max = context.plant.api.page_size_max
    zone = context.plant.site.timezone

    async def kpi_rows(from_: str, to: str, asset: str | None, product: str | None, plant: bool, group: str) -> KpiRows:
        """The KPI rows of one scope (unit, product or plant) and period kind over a checked range."""
        reader.require()
        rng = parse_range(from_, to, max_days)
        scope, subject, assets = reader.scope(asset, product, plant)
        return KpiRows(rng, scope, subject, assets, await reader.kpis(scope, subject, group, rng))

    def kpi_body(found: KpiRows, group: str, periods: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "scope": found.scope,
            "subject": found.subject,
            "group": group,
            "timezone": zone,
            "units": UNITS,
            "periods": periods,
        }

    @router.get("/kpi/energy-intensity")
    async def energy_intensity(
        from_: Annotated[str, Query(alias="from", description="ISO 8601 with zone")],
        to: Annotated[str, Query(description="ISO 8601 with zone")],
        asset: AssetId = None,
        product: ProductId = None,
        plant: WholePlant = False,
        group: Annotated[Literal["shift", "day", "month"], Query()] = "day",
    ) -> dict[str, Any]:
        """kWh, tonnes, kWh/t, kgce/t (GB/T 2589-2020), comprehensive kgce/t with waste-heat power
        subtracted, and data completeness (% of electricity buckets Good), per shift, day or month, for
        one furnace (asset=), one product (product=) or the whole plant (plant=true, or no scope given)."""
        found = await kpi_rows(from_, to, asset, product, plant, group)
        assert reader.model is not None
        periods = reader.model.calendar.periods(PeriodKind(group), found.range.start_ns, found.range.end_ns)
        complete = await reader.completeness(found.assets, periods)
        fields = INTENSITY_FIELDS + PLANT_ENERGY_FIELDS if found.scope == "plant" else INTENSITY_FIELDS
        return kpi_body(
            found,
            group,
            [
                {**period_fields(r), **pick(r, fields), "completeness_percent": complete.get(r.get("label"))}
                for r in found.rows
            ],
        )

    @router.get("/kpi/carbon-intensity")
    async def carbon_intensity(
        from_: Annotated[str, Query(alias="from", description="ISO 8601 with zone")],
        to: Annotated[str, Query(description="ISO 8601 with zone")],
        asset: AssetId = None,
        product: ProductId = None,
        plant: WholePlant = False,
        group: Annotated[Literal["shift", "day", "month"], Query()] = "month",
    ) -> dict[str, Any]:
        """tCO2 direct, indirect (location-based; market-based where green power is configured), total,
        per tonne, with every factor used and its source; for one furnace (asset=), one product
        (product=) or the whole plant (plant=true, or no scope given)."""
        found = await kpi_rows(from_, to, asset, product, plant, group)
        return kpi_body(
            found, group, [{**period_fields(r), **pick(r, CARBON_FIELDS), "factors": provenance(r)} for r in found.rows]
        )

    @router.get("/heats")
    async def heats(
        from_: RecentFrom = None,
        to: RecentTo = None,
        asset: Annotated[str | None, Query(description="furnace id; all furnaces when absent")] = None,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=page_max)] = 100,
    ) -> dict[str, Any]:
        """EAF heats and furnace taps (previous tap -> this tap) that ended in the range: kWh, tonnes,
        kWh/t, quality; newest first. Without `from` and `to`: the last 24 hours. The answer names
        the range it covers (`from`, `to`)."""
        reader.require()
        rng = parse_recent_range(from_, to, max_days, _now_ns())
        where = f"site={q(reader.site)} AND time >= {rng.start_ns} AND time < {rng.end_ns}"
        if asset is not None:
            reader.scope(asset, None, False)
            where += f" AND asset={q(asset)}"
        total = await reader.query(f'SELECT count("electricity_kwh") FROM {measurement(wire.RECORD)} WHERE {where}')
        series = await reader.query(
            f"SELECT * FROM {measurement(wire.RECORD)} WHERE {where} GROUP BY asset, product, kind ORDER BY time DESC"
        )
        records = [{**s.tags, **row} for s in series for row in s.rows()]
        records.sort(key=lambda r: -r["time"])
        items = [
            {
                **record_head(r),
                "tonnes_t": r.get("tonnes_t"),
                "electricity_kwh": r.get("electricity_kwh"),
                "waste_heat_kwh": r.get("waste_heat_kwh"),
                "kwh_per_t": r.get("kwh_per_t"),
                "quality": r.get("quality"),
                "flags": (r.get("flags") or "").split(",") if r.get("flags") else [],
            }
            for r in records[offset : offset + limit]
        ]
        count = total[0].values[0][1] if total and total[0].values else 0
        return {
            "from": iso_utc(rng.start_ns),
            "to": iso_utc(rng.end_ns),
            "total": count,
            "offset": offset,
            "limit": limit,
            "timezone": zone,
            "items": items,
        }

    @router.get("/benchmarks")
    async def benchmarks() -> dict[str, Any]:
        """Each product's kgce/t this month and over the rolling 12 months (sum of kgce / sum of
        tonnes) against the national benchmark (标杆) and baseline (基准), with status and margin."""
        reader.require()
        model = reader.model
        assert model is not None
        today = model.calendar.production_date(_now_ns())
        this_month = model.calendar.month(today)
        first = this_month
        for _ in range(11):
            first = model.calendar.month(date.fromordinal(first.local_date.toordinal() - 1))
        books = Books(model)  # the engine's own benchmark rule (edition, levels, overrides)
        out = []
        for product_id, product in sorted(model.products.items()):
            rows = await reader.kpis("product", product_id, "month", TimeRange(first.start_ns, this_month.end_ns))
            current = next((r for r in rows if r.get("label") == this_month.label), None)
            kgce = sum(r.get("comprehensive_kgce") or 0.0 for r in rows)
            tonnes = sum(r.get("tonnes_t") or 0.0 for r in rows)
            month_value = current.get("kgce_per_t") if current else None
            rolling_value = kgce / tonnes if tonnes > 0 else None
            out.append(
                {
                    "product": product_id,
                    "month": {
                        "label": this_month.label,
                        **_assessment(books.benchmark(product.benchmark_key, month_value, today)),
                    },
                    "rolling_12_months": {
                        "from": first.label,
                        "to": this_month.label,
                        "tonnes_t": tonnes,
                        "comprehensive_kgce": kgce,
                        **_assessment(books.benchmark(product.benchmark_key, rolling_value, today)),
                    },
                }
            )
        return {"unit": "kgce/t", "timezone": zone, "products": out}

    @router.get("/balance")
    async def balance(
        from_: Annotated[str, Query(alias="from", description="ISO 8601 with zone")],
        to: Annotated[str, Query(description="ISO 8601 with zone")],
        group: Annotated[Literal["shift", "day", "month"], Query()] = "day",
    ) -> dict[str, Any]:
        """Main incomer vs the sum of its sub-meters per period: losses and the unmetered share."""
        reader.require()
        rng = parse_range(from_, to, max_days)
        series = await reader.query(
            f"SELECT * FROM {measurement(wire.BALANCE)} WHERE site={q(reader.site)} AND period={q(group)} "
            f'AND time >= {rng.start_ns} AND time < {rng.end_ns} GROUP BY "group"'
        )
        items = [
            {
                "group": s.tags.get("group"),
                **period_fields(r),
                **pick(r, ("main_kwh", "members_kwh", "loss_kwh", "loss_percent", "status")),
            }
            for s in series
            for r in s.rows()
        ]
        return {
            "group": group,
            "timezone": zone,
            "units": {"main_kwh": "kWh", "members_kwh": "kWh", "loss_kwh": "kWh", "loss_percent": "%"},
            "items": items,
        }

    @router.post(
        "/admin/recompute",
        dependencies=[auth.admin],
        responses={409: {"model": ErrorOut, "description": "the energy role does not run in this process"}},
    )
    async def recompute(
        from_: Annotated[str, Query(alias="from", description="ISO 8601 with zone")],
        to: Annotated[str, Query(description="ISO 8601 with zone")],
    ) -> dict[str, Any]:
        """Re-derive the books of a past span from the raw readings in InfluxDB (admin), e.g. after
        late or replayed readings arrived; every period it touches is summed again."""
        rng = parse_range(from_, to, max_days)
        if context.recompute is None:
            raise error(409, "no_energy_role", "the energy role does not run in this process")
        await context.recompute(rng.start_ns, rng.end_ns)
        return {"recomputed": {"from": iso_utc(rng.start_ns), "to": iso_utc(rng.end_ns)}}

    return router


def _assessment(result: BenchmarkResult) -> dict[str, Any]:
    return {
        "edition": result.edition,
        "kgce_per_t": result.value_kgce_per_t,
        "status": result.status.value,
        "benchmark_kgce_per_t": result.benchmark_kgce_per_t,
        "baseline_kgce_per_t": result.baseline_kgce_per_t,
        "margin_to_benchmark": result.margin_to_benchmark,
        "margin_to_baseline": result.margin_to_baseline,
    }


def _now_ns() -> int:
    return time.time_ns()

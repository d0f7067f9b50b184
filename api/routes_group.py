"""The group energy center's routes: plants as a resource; each plant's KPIs, heats and taps,
benchmark and limit status and carbon; each product across plants; the group as a whole.

Every figure is a row a plant's own engine derived and sent up over MQTT (gateway/center_ingest.py):
the center sums plants, it never re-derives them, so a plant's figures here are the plant's own. A
key limited to some plants (`sites` in the key file) sees only those, in lists and in group sums.
"""
# no `from __future__ import annotations`: FastAPI evaluates route annotations that use closure values

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from ferrogate.api import auth
from ferrogate.api.auth import error
from ferrogate.api.group_context import GroupContext
from ferrogate.api.group_limits import not_compliant, product_limits
from ferrogate.api.influxql import measurement, q
from ferrogate.api.keys import StoredKey
from ferrogate.api.params import From, To, parse_month, parse_range
from ferrogate.api.routes_energy import CARBON_FIELDS, INTENSITY_FIELDS, PLANT_ENERGY_FIELDS, UNITS, period_fields, pick
from ferrogate.api.schemas import ErrorOut
from ferrogate.gateway.center_config import GroupPlant
from ferrogate.gateway.compliance.wire import GRADE
from ferrogate.gateway.energy import wire
from ferrogate.gateway.influx import InfluxError
from ferrogate.gateway.timeutil import iso_utc

ERRORS = {
    400: {"model": ErrorOut, "description": "bad time range, month or scope (see detail.error)"},
    **auth.AUTH_ERRORS,
    404: {"model": ErrorOut, "description": "unknown plant"},
    503: {"model": ErrorOut, "description": "the center's database is not available"},
}
BENCHMARK_FIELDS = (
    "benchmark_status",
    "benchmark_edition",
    "benchmark_kgce_per_t",
    "baseline_kgce_per_t",
    "margin_to_benchmark_kgce_per_t",
    "margin_to_baseline_kgce_per_t",
)
FIGURES = tuple(dict.fromkeys((*INTENSITY_FIELDS, *PLANT_ENERGY_FIELDS, *CARBON_FIELDS, *BENCHMARK_FIELDS)))
# sums over plants (or products over plants) are sums of these (tonnes, energy, kgce, tCO2, green
# kWh); ratios, shares and factors are not summed, the ratios are re-formed from the sums
ADDITIVE = tuple(
    f
    for f in dict.fromkeys((*INTENSITY_FIELDS, *PLANT_ENERGY_FIELDS, *CARBON_FIELDS))
    if (f.endswith(("_t", "_kwh", "_kgce")) and "_per_" not in f) or (f.startswith("tco2_") and "per_t" not in f)
)
RATIOS = {
    "kwh_per_t": ("electricity_kwh", "tonnes_t"),
    "kgce_per_t": ("comprehensive_kgce", "tonnes_t"),
    "tco2_per_t": ("tco2_total", "tonnes_t"),
    "tco2_direct_per_t": ("tco2_direct", "tonnes_t"),
}
Scope = Annotated[Literal["plant", "product", "unit"], Query(description="the whole plant, one product or one unit")]
Subject = Annotated[
    str | None, Query(description="product id (scope=product) or unit/asset id (scope=unit); the plant: its site")
]
Group = Annotated[Literal["shift", "day", "month"], Query()]
SiteId = Annotated[str, Path(description="the plant's site id", pattern=r"^[a-z][a-z0-9_]{0,62}$")]
Viewer = Annotated[StoredKey, auth.viewer]


Month = Annotated[str, Query(description="YYYY-MM (each plant's calendar)")]
DAY_NS = 86_400 * 10**9
UNIX_EPOCH_ORDINAL = 719_163  # date(1970, 1, 1).toordinal()


def month_span_ns(month: str) -> tuple[int, int]:
    """A time range holding the month `month` of every plant, whatever its zone: a month in any
    zone lies within a day either side of the UTC month (rows are then matched by their label)."""
    first = parse_month(month)
    start_ns = (first.toordinal() - UNIX_EPOCH_ORDINAL - 1) * DAY_NS
    return start_ns, start_ns + 34 * DAY_NS


def plant_out(plant: GroupPlant) -> dict[str, Any]:
    return {"site": plant.site, "name": plant.name, "timezone": plant.timezone, "province": plant.province}


def sums(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Additive figures summed (a field no row has stays None) and the ratios formed from the sums."""
    out: dict[str, Any] = {}
    for name in ADDITIVE:
        values = [r[name] for r in rows if r.get(name) is not None]
        out[name] = sum(values) if values else None
    for name, (top, bottom) in RATIOS.items():
        out[name] = out[top] / out[bottom] if out[top] is not None and out[bottom] else None
    out["plants"] = sorted({r["site"] for r in rows})
    out["complete"] = all(bool(r.get("complete")) for r in rows)
    return out


class GroupReader:
    """The plants a key may read and their derived rows in the center's database."""

    def __init__(self, context: GroupContext) -> None:
        self.context = context
        self.group = context.center.group
        self.max_days = context.center.api.max_range_days

    def visible(self, key: StoredKey) -> list[GroupPlant]:
        return [p for p in self.group.plants if key.may_read(p.site)]

    def plant(self, key: StoredKey, site: str) -> GroupPlant:
        plant = self.group.plant(site)
        if plant is None or not key.may_read(site):  # a plant outside the key is not named to it
            known = [p.site for p in self.visible(key)]
            raise error(404, "unknown_plant", f"no plant {site!r} in this group for this key", known=known)
        return plant

    async def kpis(
        self, sites: list[str], scope: str, group: str, start_ns: int, end_ns: int, subject: str | None = None
    ) -> list[dict[str, Any]]:
        """KPI rows (with `site` and `subject`) of the sites, oldest first."""
        if not sites:
            return []
        if self.context.influx is None:
            raise error(503, "no_database", "the center has no InfluxDB connection")
        where = f"site =~ /^({'|'.join(sites)})$/ AND scope={q(scope)} AND period={q(group)}"
        if subject is not None:
            where += f" AND subject={q(subject)}"
        text = (
            f"SELECT * FROM {measurement(wire.KPI)} WHERE {where} AND time >= {start_ns} AND time < {end_ns} "
            "GROUP BY site, subject"
        )
        try:
            series = await self.context.influx.query(text)
        except InfluxError as exc:
            raise error(503, "database_unavailable", f"InfluxDB: {exc}") from exc
        rows = [{**s.tags, **row} for s in series for row in s.rows()]
        rows.sort(key=lambda r: (r["time"], r["site"], r["subject"]))
        return rows

    async def grades(self, sites: list[str], month: str) -> dict[str, list[dict[str, Any]]]:
        """The `compliance_grade` rows of each site's month `month` (tags and fields merged)."""
        start_ns, end_ns = month_span_ns(month)
        if not sites:
            return {}
        if self.context.influx is None:
            raise error(503, "no_database", "the center has no InfluxDB connection")
        text = (
            f"SELECT * FROM {measurement(GRADE)} WHERE site =~ /^({'|'.join(sites)})$/ AND label={q(month)} "
            f"AND time >= {start_ns} AND time < {end_ns} GROUP BY site, product, indicator, window"
        )
        try:
            series = await self.context.influx.query(text)
        except InfluxError as exc:
            raise error(503, "database_unavailable", f"InfluxDB: {exc}") from exc
        out: dict[str, list[dict[str, Any]]] = {site: [] for site in sites}
        for s in series:
            out[s.tags["site"]].extend({**s.tags, **row} for row in s.rows())
        return out

    async def records(self, site: str, start_ns: int, end_ns: int, asset: str | None) -> list[dict[str, Any]]:
        assert self.context.influx is not None
        where = f"site={q(site)} AND time >= {start_ns} AND time < {end_ns}"
        if asset is not None:
            where += f" AND asset={q(asset)}"
        try:
            series = await self.context.influx.query(
                f"SELECT * FROM {measurement(wire.RECORD)} WHERE {where} GROUP BY asset, product, kind"
            )
        except InfluxError as exc:
            raise error(503, "database_unavailable", f"InfluxDB: {exc}") from exc
        rows = [{**s.tags, **row} for s in series for row in s.rows()]
        rows.sort(key=lambda r: -r["time"])
        return rows


def period_row(row: dict[str, Any], fields: tuple[str, ...] = FIGURES) -> dict[str, Any]:
    return {**period_fields(row), **pick(row, fields)}


def by_label(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(str(row.get("label")), []).append(row)
    return out


def group_router(context: GroupContext) -> APIRouter:
    router = APIRouter(prefix="/api/v1/group", tags=["group"], responses=ERRORS, dependencies=[auth.viewer])
    reader = GroupReader(context)

    @router.get("/plants")
    async def plants(key: Viewer) -> dict[str, Any]:
        """The group's plants this key may read."""
        return {"plants": [plant_out(p) for p in reader.visible(key)]}

    @router.get("/plants/{site}")
    async def plant(site: SiteId, key: Viewer) -> dict[str, Any]:
        """One plant of the group."""
        return plant_out(reader.plant(key, site))

    @router.get("/plants/{site}/kpi")
    async def plant_kpi(
        site: SiteId,
        key: Viewer,
        from_: From,
        to: To,
        scope: Scope = "plant",
        subject: Subject = None,
        group: Group = "month",
    ) -> dict[str, Any]:
        """One plant's energy, carbon and benchmark figures per shift, day or month, as the plant's
        own engine derived them: the whole plant (default), one product or one unit."""
        found = reader.plant(key, site)
        rng = parse_range(from_, to, reader.max_days)
        if scope == "plant":
            subject = site
        elif subject is None:
            raise error(400, "bad_scope", f"scope={scope} needs subject= (a {scope} id)")
        rows = await reader.kpis([site], scope, group, rng.start_ns, rng.end_ns, subject)
        return {
            "site": site,
            "timezone": found.timezone,
            "scope": scope,
            "subject": subject,
            "group": group,
            "units": UNITS,
            "periods": [period_row(r) for r in rows],
        }

    @router.get("/plants/{site}/heats")
    async def plant_heats(
        site: SiteId,
        key: Viewer,
        from_: From,
        to: To,
        asset: Annotated[str | None, Query(description="furnace id; all furnaces when absent")] = None,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=context.center.api.page_size_max)] = 100,
    ) -> dict[str, Any]:
        """One plant's EAF heats and furnace taps that ended in the range, newest first."""
        reader.plant(key, site)
        rng = parse_range(from_, to, reader.max_days)
        if context.influx is None:
            raise error(503, "no_database", "the center has no InfluxDB connection")
        rows = await reader.records(site, rng.start_ns, rng.end_ns, asset)
        items = [
            {
                **{k: r.get(k) for k in ("id", "asset", "product", "kind", "start")},
                "end": iso_utc(r["time"]),
                **pick(r, ("tonnes_t", "electricity_kwh", "waste_heat_kwh", "kwh_per_t", "quality")),
                "flags": (r.get("flags") or "").split(",") if r.get("flags") else [],
            }
            for r in rows[offset : offset + limit]
        ]
        return {"site": site, "total": len(rows), "offset": offset, "limit": limit, "items": items}

    @router.get("/kpi")
    async def group_kpi(key: Viewer, from_: From, to: To, group: Group = "month") -> dict[str, Any]:
        """Every plant's whole-plant figures per period, and the group's: sums of energy, kgce and
        tCO2 over the plants this key may read (periods matched by label, each plant's own calendar)."""
        rng = parse_range(from_, to, reader.max_days)
        sites = [p.site for p in reader.visible(key)]
        rows = await reader.kpis(sites, "plant", group, rng.start_ns, rng.end_ns)
        return {
            "group": group,
            "units": UNITS,
            "plants": [{"site": s, "periods": [period_row(r) for r in rows if r["site"] == s]} for s in sites],
            "totals": [{"label": label, **sums(members)} for label, members in by_label(rows).items()],
        }

    @router.get("/products")
    async def products(key: Viewer, from_: From, to: To, group: Group = "month") -> dict[str, Any]:
        """Each product across the plants that make it: per plant (tonnes, kWh/t, kgce/t, tCO2/t,
        benchmark status) and summed (sums of kgce over sums of tonnes, never means of ratios)."""
        rng = parse_range(from_, to, reader.max_days)
        rows = await reader.kpis([p.site for p in reader.visible(key)], "product", group, rng.start_ns, rng.end_ns)
        out = []
        for product in sorted({r["subject"] for r in rows}):
            mine = [r for r in rows if r["subject"] == product]
            out.append(
                {
                    "product": product,
                    "plants": [{"site": r["site"], **period_row(r)} for r in mine],
                    "totals": [{"label": label, **sums(members)} for label, members in by_label(mine).items()],
                }
            )
        return {"group": group, "units": UNITS, "products": out}

    @router.get("/benchmarks")
    async def benchmarks(key: Viewer, month: Month) -> dict[str, Any]:
        """Each plant's products in a month against the national benchmark (标杆) and baseline (基准)
        levels, as each plant's engine assessed them (edition, levels, status, margins)."""
        start_ns, end_ns = month_span_ns(month)
        rows = await reader.kpis([p.site for p in reader.visible(key)], "product", "month", start_ns, end_ns)
        items = [
            {"site": r["site"], "product": r["subject"], **period_row(r, ("tonnes_t", "kgce_per_t", *BENCHMARK_FIELDS))}
            for r in rows
            if r.get("label") == month
        ]
        worse = [i for i in items if i.get("benchmark_status") == "worse_than_baseline"]
        return {"month": month, "unit": "kgce/t", "items": items, "worse_than_baseline": len(worse)}

    @router.get("/plants/{site}/limits")
    async def plant_limits(site: SiteId, key: Viewer, month: Month) -> dict[str, Any]:
        """One plant's products in a month under their mandatory energy-consumption limit standards
        (GB 21341, GB 21347, GB 21256): for the month and the rolling 12 months, each indicator's
        value, levels, grade and status as the plant graded it (its `compliance/limits`). Products
        no limit standard grades are not listed."""
        found = reader.plant(key, site)
        rows = (await reader.grades([site], month))[site]
        return {"site": site, "timezone": found.timezone, "month": month, "products": product_limits(rows)}

    @router.get("/limits")
    async def limits(key: Viewer, month: Month) -> dict[str, Any]:
        """Each product across the plants that make it, under its limit standard in a month: every
        plant's status and grades (month and rolling 12 months), and the plants above the limit."""
        grades = await reader.grades([p.site for p in reader.visible(key)], month)
        products: dict[str, list[dict[str, Any]]] = {}
        for site, rows in grades.items():
            for p in product_limits(rows):
                products.setdefault(p.pop("product"), []).append({"site": site, **p})
        out = [
            {
                "product": product,
                "plants": plants,
                "not_compliant": [p["site"] for p in plants if not_compliant(p)],
            }
            for product, plants in sorted(products.items())
        ]
        return {"month": month, "products": out, "not_compliant": sum(len(p["not_compliant"]) for p in out)}

    @router.get("/carbon")
    async def carbon(key: Viewer, from_: From, to: To, group: Group = "month") -> dict[str, Any]:
        """tCO2 direct, indirect and total per plant and for the group, per period."""
        rng = parse_range(from_, to, reader.max_days)
        sites = [p.site for p in reader.visible(key)]
        rows = await reader.kpis(sites, "plant", group, rng.start_ns, rng.end_ns)
        fields = tuple(f for f in CARBON_FIELDS if f != "tonnes_t")
        return {
            "group": group,
            "units": {f: UNITS[f] for f in fields if f in UNITS},
            "plants": [{"site": s, "periods": [period_row(r, fields) for r in rows if r["site"] == s]} for s in sites],
            "totals": [
                {"label": label, **{k: v for k, v in sums(members).items() if k.startswith("tco2_") or k == "plants"}}
                for label, members in by_label(rows).items()
            ],
        }

    return router

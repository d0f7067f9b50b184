"""The I/O of the compliance layer: reads the books' month figures from InfluxDB (the derived series
the accounting engine wrote) and the month's manual inputs from their store, hands both to the pure
functions in `gateway/compliance/`, raises and clears the limit-grade alarms, writes the compliance
series Grafana shows, and publishes the limit grades over MQTT (a group center stores them).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any

from ferrogate.gateway.alarms import AlarmBook, Kind, Severity
from ferrogate.gateway.compliance import limits as limit_rules
from ferrogate.gateway.compliance import reference as cref
from ferrogate.gateway.compliance import wire as grade_wire
from ferrogate.gateway.compliance.cbam import cbam_period
from ferrogate.gateway.compliance.ets import ets_month
from ferrogate.gateway.compliance.figures import Figures, MonthBooks
from ferrogate.gateway.compliance.footprint import product_month
from ferrogate.gateway.compliance.footprint import record as footprint_record
from ferrogate.gateway.compliance.inputs import AuditEntry, InputValue, MonthInputs, Sourced
from ferrogate.gateway.compliance.model import ComplianceModel
from ferrogate.gateway.compliance_inputs import InputStore
from ferrogate.gateway.energy import wire
from ferrogate.gateway.energy.aggregate import Period, PeriodKind
from ferrogate.gateway.influx import InfluxError, InfluxV1Client
from ferrogate.gateway.influx import influxql_string as q
from ferrogate.gateway.influx_setup import DERIVED_POLICY
from ferrogate.gateway.mqtt import Message, Outbox
from ferrogate.gateway.timeutil import iso_utc

log = logging.getLogger(__name__)

# measurements Grafana reads (docs/compliance.md section 8), retention policy `long`, time = month start
# (`compliance_grade`: gateway/compliance/wire.py)
CARBON = "compliance_carbon"
FOOTPRINT = "compliance_footprint"


class ComplianceUnavailable(RuntimeError):
    """The books cannot be read (no database, or it does not answer)."""


class ComplianceService:
    def __init__(self, model: ComplianceModel, influx: InfluxV1Client | None, store: InputStore | None) -> None:
        self.model = model
        self.influx = influx
        self.store = store
        self.calendar = model.accounting.calendar
        self.material_units = dict(model.materials)
        self.listeners: list[Callable[[], None]] = []  # told when an input changed (the alarm watch)

    def changed(self) -> None:
        for listener in self.listeners:
            listener()

    # --- months -------------------------------------------------------------------------------------

    def month(self, first_day: date) -> Period:
        return self.calendar.month(first_day)

    def months_ending(self, first_day: date, count: int) -> list[Period]:
        """`count` calendar months ending with the month of `first_day`, oldest first."""
        out = [self.calendar.month(first_day)]
        while len(out) < count:
            out.insert(0, self.calendar.month(out[0].local_date - timedelta(days=1)))
        return out

    # --- reading ----------------------------------------------------------------------------------

    async def query(self, text: str) -> list[dict[str, Any]]:
        if self.influx is None:
            raise ComplianceUnavailable("this gateway has no InfluxDB connection")
        try:
            series = await self.influx.query(text)
        except InfluxError as exc:
            raise ComplianceUnavailable(f"InfluxDB: {exc}") from exc
        return [{**s.tags, **row} for s in series for row in s.rows()]

    async def books(self, periods: Sequence[Period]) -> dict[str, MonthBooks]:
        """The month KPIs of every unit and product over the periods, by month label."""
        rows = await self.query(
            f'SELECT * FROM "{DERIVED_POLICY}"."{wire.KPI}" WHERE site={q(self.model.site)} AND period=\'month\' '
            f"AND (scope='unit' OR scope='product') AND time >= {periods[0].start_ns} "
            f'AND time < {periods[-1].end_ns} GROUP BY "scope", "subject"'
        )
        out = {p.label: MonthBooks(p.label) for p in periods}
        for row in rows:
            books = out.get(str(row.get("label")))
            if books is None:
                continue
            figures = Figures.from_row(row["subject"], row, self.material_units)
            (books.units if row["scope"] == "unit" else books.products)[row["subject"]] = figures
        return out

    async def inputs(self, labels: Sequence[str]) -> dict[str, MonthInputs]:
        if self.store is None:
            return {label: MonthInputs(label) for label in labels}
        values = await asyncio.to_thread(self.store.months, list(labels))
        return {label: MonthInputs.of(label, values) for label in labels}

    async def set_input(self, value: InputValue) -> tuple[InputValue | None, AuditEntry]:
        assert self.store is not None
        result = await asyncio.to_thread(self.store.set, value)
        self.changed()
        return result

    async def delete_input(self, month: str, subject: str, name: str, who: str, at_ns: int) -> AuditEntry | None:
        assert self.store is not None
        result = await asyncio.to_thread(self.store.delete, month, subject, name, who, at_ns)
        self.changed()
        return result

    # --- limit grades -------------------------------------------------------------------------------

    async def limits(self, first_day: date) -> dict[str, Any]:
        periods = self.months_ending(first_day, 13)
        labels = [p.label for p in periods]
        books, inputs = await asyncio.gather(self.books(periods), self.inputs(labels))
        return {
            "month": labels[-1],
            "site": self.model.site,
            "timezone": str(self.calendar.tz),
            "products": assess_all(self.model, labels, books, inputs),
        }

    # --- carbon market --------------------------------------------------------------------------------

    async def month_data(self, first_day: date) -> tuple[MonthBooks, MonthInputs]:
        period = self.month(first_day)
        books, inputs = await asyncio.gather(self.books([period]), self.inputs([period.label]))
        return books[period.label], inputs[period.label]

    async def ets(self, first_day: date) -> dict[str, Any]:
        books, inputs = await self.month_data(first_day)
        return {"site": self.model.site, **ets_month(self.model, books, inputs)}

    # --- CBAM -----------------------------------------------------------------------------------------

    async def cbam(self, first_days: Sequence[date], label: str) -> dict[str, Any]:
        """CBAM figures over the months starting at `first_days` (one month, or a calendar year)."""
        periods = [self.month(d) for d in first_days]
        labels = [p.label for p in periods]
        books, inputs = await asyncio.gather(self.books(periods), self.inputs(labels))
        months = [(books[x], inputs[x]) for x in labels]
        return {"site": self.model.site, **cbam_period(self.model, months, label, first_days[-1].year)}

    # --- footprints -----------------------------------------------------------------------------------

    async def footprints(self, first_day: date) -> dict[str, Any]:
        """Each product's cradle-to-gate footprint over the month."""
        books, inputs = await self.month_data(first_day)
        return {
            "site": self.model.site,
            "month": books.label,
            "unit": "kgCO2e/t",
            "method": _method("footprint"),
            "products": [product_month(self.model, books, inputs, p) for p in sorted(self.model.accounting.products)],
        }

    async def record_footprints(self, start_ns: int, end_ns: int, asset: str | None) -> list[dict[str, Any]]:
        """The footprint of every heat, tap or batch that ended in [start_ns, end_ns), newest first."""
        where = f"site={q(self.model.site)} AND time >= {start_ns} AND time < {end_ns}"
        if asset is not None:
            where += f" AND asset={q(asset)}"
        rows = await self.query(
            f'SELECT * FROM "{DERIVED_POLICY}"."{wire.RECORD}" WHERE {where} GROUP BY "asset", "product", "kind"'
        )
        rows.sort(key=lambda r: -r["time"])
        periods = {p.label: p for p in (self.calendar.period_of(PeriodKind.month, r["time"]) for r in rows)}
        ordered = sorted(periods.values(), key=lambda p: p.start_ns)
        books = await self.books(ordered) if ordered else {}
        inputs = await self.inputs(list(periods))
        out = []
        for r in rows:
            label = self.calendar.period_of(PeriodKind.month, r["time"]).label
            rec = Figures.from_row(r["asset"], r, self.material_units)
            found = footprint_record(
                self.model, rec, str(r.get("id")), books[label].unit(r["asset"]), inputs[label], label
            )
            flags = (r.get("flags") or "").split(",") if r.get("flags") else []
            out.append(
                {
                    "end": iso_utc(r["time"]),
                    "start": r.get("start"),
                    "month": label,
                    "kind": r.get("kind"),
                    "quality": r.get("quality"),
                    "flags": flags,
                    **found,
                }
            )
        return out


def _method(name: str) -> dict[str, Any]:
    m = cref.METHODS[name]
    return {"name": m.name, "source": m.source, "verified": m.verified, "notes": list(m.notes)}


def assess_all(
    model: ComplianceModel, labels: Sequence[str], books: dict[str, MonthBooks], inputs: dict[str, MonthInputs]
) -> list[dict[str, Any]]:
    """Every product's grades for the last label (pure: the books and inputs are given)."""
    out = []
    for product, pl in sorted(model.limits.items()):
        months = []
        for label in labels:
            manual: dict[str, Sourced] = {}
            for (subject, name), v in inputs[label].values.items():
                if subject == product:
                    manual[name] = Sourced.of_input(v)
            months.append(
                limit_rules.MonthIn(
                    label, books[label].product(product), limit_rules.effective_inputs(pl.standing, manual)
                )
            )
        out.append(limit_rules.assess(pl, months))
    return out


class ComplianceWatch:
    """Periodically (and after a manual input) re-grades the current month: raises or clears the
    limit alarms, writes the grades for Grafana and publishes them (one retained message per product
    on `<root>/<site>/energy/compliance/grade/<product>`, the rows' content)."""

    def __init__(
        self,
        service: ComplianceService,
        alarms: AlarmBook,
        clock_ns: Any,
        outbox: Outbox | None = None,
        topic_root: str = "",
    ) -> None:
        self.service = service
        self.alarms = alarms
        self.clock_ns = clock_ns
        # the grades of every check go out on MQTT too (latest per product), for a group center
        self.outbox = outbox
        self.topic_root = topic_root
        self.checks = 0
        self.errors = 0
        self._wake = asyncio.Event()

    def poke(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        interval = self.service.model.config.check_interval_s
        while True:
            self._wake.clear()  # before checking: a poke during the check means check again
            try:
                await self.check()
            except ComplianceUnavailable as exc:
                self.errors += 1
                log.warning("compliance: grades not checked: %s", exc)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=interval)
            except TimeoutError:
                pass

    async def check(self) -> dict[str, Any]:
        now = self.clock_ns()
        first = self.service.calendar.production_date(now).replace(day=1)
        service = self.service
        result = await service.limits(first)
        raised, cleared = limit_rules.alarms(result["products"])
        for kind, source in cleared:
            self.alarms.clear(Kind(kind), source, now)
        for a in raised:
            self.alarms.raise_(Kind(a.kind), a.source, Severity(a.severity), a.message, now, a.value, a.unit)
        period = service.month(first)
        ets, cbam, prints = await asyncio.gather(
            service.ets(first), service.cbam([first], period.label), service.footprints(first)
        )
        site = service.model.site
        grades = grade_wire.grade_lines(site, period.label, period.start_ns, result["products"])
        lines = grades + carbon_lines(site, period, ets, cbam, prints)
        if self.outbox is not None:
            for product in grade_wire.graded(result["products"]):
                topic = grade_wire.grade_topic(self.topic_root, site, product["product"])
                self.outbox.put(Message(topic, grade_wire.grade_payload(site, period, product), retain=True))
        if service.influx is not None:
            try:
                await service.influx.write(lines, retention_policy=DERIVED_POLICY)
            except InfluxError as exc:
                log.warning("compliance: figures not written to InfluxDB: %s", exc)
        self.checks += 1
        return result


def carbon_lines(
    site: str, period: Period, ets: dict[str, Any], cbam: dict[str, Any], footprints: dict[str, Any]
) -> list[str]:
    """`compliance_carbon` (carbon-market processes and enterprise, CBAM goods) and
    `compliance_footprint` (products) rows of the month."""
    t = period.start_ns
    lines = []
    for p in ets["processes"]:
        fields = {"label": period.label, "tco2_direct": p["tco2_direct"], "tco2_indirect": p["tco2_indirect"]}
        fields |= {"tonnes_t": p["tonnes_t"], "tco2_per_t": p["tco2_direct_per_t"], "complete": p["complete"]}
        tags = {"site": site, "kind": "ets_process", "subject": p["process"]}
        lines.append(wire.line(CARBON, tags, {**fields, "verified": p["verified"]}, t))
    e = ets["enterprise"]
    fields = {
        "label": period.label,
        "tco2_direct": e["tco2_direct_covered"],
        "tco2_indirect": e["tco2_indirect_reported"],
    }
    tags = {"site": site, "kind": "ets_enterprise", "subject": site}
    lines.append(wire.line(CARBON, tags, {**fields, "complete": e["complete"], "verified": e["verified"]}, t))
    for g in cbam["goods"]:
        fields = {"label": period.label, "tco2_direct": g["attributed_direct_tco2"], "tonnes_t": g["activity_level_t"]}
        fields |= {"see_direct": g["see_direct"], "default_with_markup": g["comparison"]["default_with_markup"]}
        fields |= {"complete": g["complete"], "verified": g["verified"], "cn": g["cn"]}
        lines.append(wire.line(CARBON, {"site": site, "kind": "cbam_good", "subject": g["product"]}, fields, t))
    for p in footprints["products"]:
        c = p["contributions_kgco2e"]
        fields = {"label": period.label, "kgco2e_per_t": p["kgco2e_per_t"], "tonnes_t": p["tonnes_t"]}
        fields |= {
            "direct_kgco2e": c["direct"],
            "electricity_kgco2e": c["electricity"],
            "upstream_kgco2e": c["upstream"],
        }
        fields |= {"complete": p["complete"], "verified": p["verified"]}
        lines.append(wire.line(FOOTPRINT, {"site": site, "product": p["product"]}, fields, t))
    return lines

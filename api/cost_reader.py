"""Reads the cost series the energy role wrote (docs/cost.md) for the cost routes and the monthly
report, so the API, Grafana and reports show the same numbers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ferrogate.api.auth import error
from ferrogate.api.influxql import measurement, q
from ferrogate.gateway.compliance_service import ComplianceService, ComplianceUnavailable
from ferrogate.gateway.cost import wire
from ferrogate.gateway.cost.config import PositionScale, Tariff
from ferrogate.gateway.cost.model import CostModel
from ferrogate.gateway.cost.positions import compliance_grades
from ferrogate.gateway.cost.report import month_cost_section, regrade
from ferrogate.gateway.energy.aggregate import Period

if TYPE_CHECKING:
    from ferrogate.api.routes_energy import EnergyReader


class CostReader:
    def __init__(self, reader: EnergyReader, model: CostModel, compliance: ComplianceService | None) -> None:
        self.reader = reader
        self.model = model
        self.compliance = compliance  # limit grades for `limit_grade` surcharge rules

    async def rows(self, name: str, where: str, group_by: str) -> list[dict[str, Any]]:
        """Rows of a cost measurement (retention policy long) with their tags, for this site."""
        series = await self.reader.query(
            f"SELECT * FROM {measurement(name)} WHERE site={q(self.reader.site)} AND {where} GROUP BY {group_by}"
        )
        return [{**s.tags, **row} for s in series for row in s.rows()]

    async def month_rows(self, name: str, month: Period, group_by: str) -> list[dict[str, Any]]:
        return await self.rows(name, f"time >= {month.start_ns} AND time < {month.start_ns + 1}", group_by)

    async def month_section(self, month: Period) -> dict[str, Any]:
        """The monthly report's cost section of one month (product and plant scope)."""
        periods = [
            r
            for r in await self.month_rows(wire.PERIOD, month, "scope, subject, period")
            if r.get("period") == "month" and r.get("scope") in ("product", "plant")
        ]
        demands = await self.month_rows(wire.DEMAND, month, "meter")
        surcharges = await self.graded(month, await self.month_rows(wire.SURCHARGE, month, "surcharge, product"))
        return month_cost_section(
            month.label,
            periods,
            demands[0] if demands else None,
            surcharges,
            self.editions(month),
            self.model.config.surcharges,
        )

    async def graded(self, month: Period, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The stored surcharges with `limit_grade` rules at the month's grade as the compliance API
        gives it (GET /api/v1/compliance/limits): the same assessment, not a second one."""
        rules = self.model.config.surcharges
        if self.compliance is None or not any(r.position_from is PositionScale.limit_grade for r in rules):
            return rows
        try:
            limits = await self.compliance.limits(month.local_date)
        except ComplianceUnavailable as exc:
            raise error(503, "database_unavailable", str(exc)) from exc
        return regrade(rows, rules, month, compliance_grades(limits["products"]))

    def editions(self, month: Period) -> list[Tariff]:
        """The tariff editions in force during the month: the one on its first day and any starting later in it."""
        schedule, first_day = self.model.schedule, month.local_date
        next_month = first_day.replace(year=first_day.year + (first_day.month == 12), month=first_day.month % 12 + 1)
        first = schedule.tariff_on(first_day)
        later = [t for t in schedule.tariffs if first_day < t.effective_from < next_month]
        return ([first] if first is not None else []) + later

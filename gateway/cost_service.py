"""Electricity cost on the energy role: an extension of the accounting service (BooksExtension).

When the books take over re-derived heats and taps it prices them (split at the tariff's band
boundaries on each unit's counter curve); when they re-sum periods it re-sums the cost of the same
periods (unit, product, plant), the month's maximum demand with its charge, and the month's
surcharges at each product's position. Cost records are kept as long as the books keep theirs and
are read back from InfluxDB on start, so period sums survive a restart. Output goes to InfluxDB and
MQTT with the books' own (docs/cost.md).
"""

from __future__ import annotations

from collections.abc import Mapping

from ferrogate.gateway.accounting_service import Output, PeriodSums
from ferrogate.gateway.cost import wire
from ferrogate.gateway.cost.books import CostBooks, RecordCost
from ferrogate.gateway.cost.model import CostModel, resolve_cost
from ferrogate.gateway.cost.surcharge import PositionInput
from ferrogate.gateway.energy.aggregate import PeriodKind
from ferrogate.gateway.energy.allocation import Windowed
from ferrogate.gateway.energy.books import IMPORT, IntervalRow
from ferrogate.gateway.energy.production import ProductionRecord
from ferrogate.gateway.influx import InfluxV1Client
from ferrogate.gateway.influx_setup import DERIVED_POLICY
from ferrogate.gateway.mqtt import Message
from ferrogate.gateway.plant_file import PlantFile


class CostExtension:
    measurements = (wire.RECORD,)

    def __init__(self, model: CostModel, topic_root: str, limit_grades: PositionInput | None = None) -> None:
        self.model = model
        self.books = CostBooks(model)
        self.site = model.site
        self.root = topic_root
        # where limit-grade positions come from (the compliance layer); None: such surcharges are
        # reported without a position (`no_position`)
        self.limit_grades = limit_grades
        self.costs: dict[str, RecordCost] = {}  # record id -> its cost

    def on_records(self, records: list[ProductionRecord], electricity: Mapping[str, Windowed]) -> Output:
        site = self.site
        lines: list[str] = []
        messages: list[Message] = []
        for cost in self.books.record_costs(records, electricity):
            if self.costs.get(cost.id) == cost:
                continue
            self.costs[cost.id] = cost
            lines.append(wire.record_line(site, cost))
            messages.append(Message(wire.record_topic(self.root, site, cost), wire.record_payload(site, cost)))
        return lines, messages

    def on_periods(self, periods: list[PeriodSums], intervals: list[IntervalRow]) -> Output:
        site, root = self.site, self.root
        costs = list(self.costs.values())
        meter = [r for r in intervals if r.asset == self.model.meter and r.role == IMPORT]
        lines: list[str] = []
        messages: list[Message] = []
        for summed in periods:
            period, complete, retain = summed.period, summed.complete, summed.current
            rows = self.books.periods(period, complete, costs, meter)
            for row in rows:
                lines.append(wire.period_line(site, row))
                messages.append(Message(wire.period_topic(root, site, row), wire.period_payload(site, row), retain))
            if period.kind is not PeriodKind.month:
                continue
            demand = self.books.demand(period, complete, meter)
            lines.append(wire.demand_line(site, demand))
            messages.append(Message(wire.demand_topic(root, site, demand), wire.demand_payload(site, demand), retain))
            for s in self.books.month_surcharges(period, complete, rows, summed.kpis, self.limit_grades):
                lines.append(wire.surcharge_line(site, s))
                messages.append(Message(wire.surcharge_topic(root, site, s), wire.surcharge_payload(site, s), retain))
        return lines, messages

    def forget(self, start_ns: int, end_ns: int) -> None:
        for rid in [rid for rid, c in self.costs.items() if start_ns < c.end_ns <= end_ns]:
            del self.costs[rid]

    def prune(self, keep_from_ns: int) -> None:
        for rid in [rid for rid, c in self.costs.items() if c.end_ns < keep_from_ns]:
            del self.costs[rid]

    async def load(self, influx: InfluxV1Client, where: str) -> None:
        series = await influx.query_whole(
            f'SELECT * FROM "{DERIVED_POLICY}".{wire.RECORD} WHERE {where} GROUP BY asset, product, kind',
            wire.RECORD_WHOLE,
        )
        for s in series:
            for row in s.rows():
                cost = wire.record_from_row(s.tags, row)
                self.costs.setdefault(cost.id, cost)


def start_cost(plant: PlantFile, topic_root: str) -> CostExtension:
    """The cost extension of a plant file with a `cost` section (checked when the file was loaded)."""
    assert plant.cost is not None
    model, problems = resolve_cost(plant, plant.cost, plant.accounting)
    if model is None:
        reasons = "; ".join(msg for _, msg in problems) or "the cost section did not resolve"
        raise ValueError(f"cannot start the cost books: {reasons}")
    return CostExtension(model, topic_root)

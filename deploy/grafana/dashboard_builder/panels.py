"""The panel-helper API every dashboard module uses: one call per panel, on Grafana's own builders.

A panel is a title (Chinese first, English second), a unit (every figure has one), InfluxQL queries
against the ferrogate data source, and a size; panels flow left to right over Grafana's 24 columns
and wrap, in the order the dashboard lists them.

    timeseries("有功功率 Active power", "kwatt", 'SELECT mean("value") FROM "reading" WHERE ...')
    table("炉次记录 Heats and taps", "none", f'SELECT ... FROM {RECORD} WHERE ...', width=24)

Raw readings live in the default retention policy (`raw`), derived energy series in `long`
(gateway/influx_setup.py, docs/accounting.md section 6)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, Self

from grafana_foundation_sdk.builders import barchart as barchart_builder
from grafana_foundation_sdk.builders import bargauge as bargauge_builder
from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.builders import statetimeline as statetimeline_builder
from grafana_foundation_sdk.builders import table as table_builder
from grafana_foundation_sdk.builders import timeseries as timeseries_builder
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard as model

from .influxql import InfluxQL, ResultFormat

# provisioned by deploy/grafana/provisioning/datasources/ferrogate.yaml under this uid
DATASOURCE = model.DataSourceRef(type_val="influxdb", uid="ferrogate-influx")
KPI = '"long"."energy_kpi"'
RECORD = '"long"."production_record"'
INTERVAL = '"long"."energy_interval"'
# the cost books' series (gateway/cost/wire.py, docs/cost.md)
COST_RECORD = '"long"."cost_record"'
COST_PERIOD = '"long"."cost_period"'
COST_DEMAND = '"long"."cost_demand"'
COST_SURCHARGE = '"long"."cost_surcharge"'
# the compliance series (gateway/compliance_service.py, docs/compliance.md section 8)
COMPLIANCE_GRADE = '"long"."compliance_grade"'
COMPLIANCE_CARBON = '"long"."compliance_carbon"'
COMPLIANCE_FOOTPRINT = '"long"."compliance_footprint"'
HEIGHT = 8  # grid rows of a panel unless it says otherwise


class PanelBuilder(Protocol):
    """What the SDK's panel builders (timeseries.Panel, table.Panel, ...) have in common and we use."""

    def id(self, id_val: int) -> Self: ...
    def title(self, title: str) -> Self: ...
    def datasource(self, datasource: model.DataSourceRef) -> Self: ...
    def unit(self, unit: str) -> Self: ...
    def decimals(self, decimals: float) -> Self: ...
    def with_target(self, target: cogbuilder.Builder[cogvariants.Dataquery]) -> Self: ...
    def span(self, w: int) -> Self: ...
    def height(self, h: int) -> Self: ...
    def build(self) -> model.Panel: ...


def influx_panel(
    panel: PanelBuilder,
    title: str,
    unit: str,
    queries: Sequence[str],
    *,
    width: int = 12,
    height: int = HEIGHT,
    decimals: int | None = None,
    result_format: ResultFormat = "time_series",
) -> PanelBuilder:
    """Any Grafana panel builder, set up as ours: data source, unit, InfluxQL targets A, B, ..., size."""
    panel.title(title).datasource(DATASOURCE).unit(unit).span(width).height(height)
    if decimals is not None:
        panel.decimals(decimals)
    for number, query in enumerate(queries):
        target = InfluxQL(query).ref_id(chr(ord("A") + number)).datasource(DATASOURCE).result_format(result_format)
        panel.with_target(target)
    return panel


def _kind(make: Callable[[], PanelBuilder], result_format: ResultFormat = "time_series") -> Callable[..., PanelBuilder]:
    def panel(
        title: str, unit: str, *queries: str, width: int = 12, height: int = HEIGHT, decimals: int | None = None
    ) -> PanelBuilder:
        return influx_panel(
            make(), title, unit, queries, width=width, height=height, decimals=decimals, result_format=result_format
        )

    return panel


timeseries = _kind(timeseries_builder.Panel)
bargauge = _kind(bargauge_builder.Panel)
barchart = _kind(barchart_builder.Panel)
state_timeline = _kind(statetimeline_builder.Panel)
table = _kind(table_builder.Panel, "table")  # rows as InfluxDB returns them, one column per field


def variable(name: str, label: str, query: str) -> dashboard_builder.QueryVariable:
    """A template variable whose values come from an InfluxQL query (e.g. SHOW TAG VALUES); one value
    at a time, refreshed with the time range."""
    return (
        dashboard_builder.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .include_all(False)
        .multi(False)
    )


def board(
    uid: str,
    title: str,
    time_from: str,
    panels: Sequence[PanelBuilder],
    variables: Sequence[dashboard_builder.QueryVariable] = (),
) -> dashboard_builder.Dashboard:
    """A provisioned (read-only) dashboard: panels numbered 1, 2, ... in order, refreshed every 30 s."""
    built = (
        dashboard_builder.Dashboard(title)
        .uid(uid)
        .tags(["ferrogate"])
        .timezone("browser")
        .readonly()
        .refresh("30s")
        .time(time_from, "now")
        .version(1)
    )
    for v in variables:
        built.with_variable(v)
    for number, panel in enumerate(panels, 1):
        built.with_panel(panel.id(number))
    return built

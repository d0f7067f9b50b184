"""A typed InfluxQL query for Grafana's InfluxDB data source, in the SDK's own terms.

grafana-foundation-sdk has builders for Prometheus, Loki and others but none for InfluxDB; its
fallback (`cog.runtime.UnknownDataquery`) is an untyped dict. This is the small part of Grafana's
InfluxDB query model (public/app/plugins/datasource/influxdb/types.ts, `InfluxQuery`) that raw
InfluxQL panels use, as a `Dataquery` variant with a builder, registered with the SDK's runtime so
`Dashboard.from_json` reads our panels' targets back into this type."""

from __future__ import annotations

from typing import Any, Literal, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import DataSourceRef

ResultFormat = Literal["time_series", "table", "logs"]


class InfluxQLQuery(cogvariants.Dataquery):
    """A raw InfluxQL target (`rawQuery: true`): Grafana runs `query` as written, after expanding its
    macros ($timeFilter, $__interval) and the dashboard's template variables."""

    def __init__(
        self,
        ref_id: str = "A",
        query: str = "",
        result_format: ResultFormat = "time_series",
        datasource: DataSourceRef | None = None,
        hide: bool | None = None,
    ) -> None:
        self.ref_id = ref_id
        self.query = query
        self.result_format = result_format
        self.datasource = datasource
        self.hide = hide

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {"refId": self.ref_id}
        if self.datasource is not None:
            payload["datasource"] = self.datasource.to_json()
        payload |= {"rawQuery": True, "resultFormat": self.result_format, "query": self.query}
        if self.hide is not None:
            payload["hide"] = self.hide
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        if data.get("rawQuery") is not True:
            raise ValueError(f"target {data.get('refId')}: only raw InfluxQL (rawQuery: true) is modelled here")
        source = data.get("datasource")
        return cls(
            ref_id=data["refId"],
            query=data["query"],
            result_format=data.get("resultFormat", "time_series"),
            datasource=DataSourceRef.from_json(source) if source is not None else None,
            hide=data.get("hide"),
        )


class InfluxQL(cogbuilder.Builder[InfluxQLQuery]):
    """Builder of an `InfluxQLQuery`, like the SDK's builders of other data sources' queries."""

    def __init__(self, query: str) -> None:
        self._internal = InfluxQLQuery(query=query)

    def build(self) -> InfluxQLQuery:
        return self._internal

    def ref_id(self, ref_id: str) -> Self:
        self._internal.ref_id = ref_id
        return self

    def datasource(self, datasource: DataSourceRef) -> Self:
        self._internal.datasource = datasource
        return self

    def result_format(self, result_format: ResultFormat) -> Self:
        self._internal.result_format = result_format
        return self

    def hide(self, hide: bool) -> Self:
        self._internal.hide = hide
        return self


cogruntime.register_dataquery_variant(
    cogruntime.DataqueryConfig(identifier="influxdb", from_json_hook=InfluxQLQuery.from_json)
)

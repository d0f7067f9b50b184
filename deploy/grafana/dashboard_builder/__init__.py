"""ferrogate's Grafana dashboards, built with Grafana's own typed builders (grafana-foundation-sdk),
one module per dashboard; `DASHBOARDS` maps each provisioned file to the function that builds it.

To add a panel: add one call of a helper from `panels` (timeseries, bargauge, barchart,
state_timeline, table) to the dashboard's panel list. To add a dashboard: a new module with a
`dashboard()` built by `panels.board`, and one line in `DASHBOARDS`. Then run
`python deploy/grafana/build_dashboards.py`; tests/test_dashboards.py fails until the committed
JSON equals what this package builds, and runs every query against a filled InfluxDB.
See deploy/README.md, "Dashboards"."""

from __future__ import annotations

import json
from collections.abc import Callable

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from . import carbon, compliance, cost, furnace, group, overview, pollution

DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "overview.json": overview.dashboard,
    "furnace.json": furnace.dashboard,
    "carbon.json": carbon.dashboard,
    "cost.json": cost.dashboard,
    "compliance.json": compliance.dashboard,
    "pollution.json": pollution.dashboard,
    "group.json": group.dashboard,
}


def render() -> dict[str, str]:
    """File name -> the dashboard JSON as provisioned (Chinese kept as written)."""
    return {
        name: json.dumps(build().build(), cls=JSONEncoder, ensure_ascii=False, indent=2) + "\n"
        for name, build in DASHBOARDS.items()
    }

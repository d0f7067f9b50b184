"""What Grafana does with our dashboards, without Grafana: load the JSON, pick a value for each
template variable from its own query, expand the macros and run every panel's InfluxQL query.
Used against the test InfluxDB (tests/test_dashboards.py) and against the InfluxDB of a box set
up by the deployment walkthrough (tests/test_deploy_walkthrough.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ferrogate.gateway.influx import Series
from tests.conftest import ROOT

GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))

Query = Callable[[str], Awaitable[list[Series]]]


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in dashboard["panels"]:
        out.append(p)
        out += p.get("panels", [])  # panels nested in rows
    return out


def expand(query: str, variables: dict[str, str], time_from: str) -> str:
    """Grafana's macros as Grafana expands them for the dashboard's default range (e.g. now-24h)
    and a 1-minute interval; template variables replaced by a value they can take."""
    assert re.fullmatch(r"now-\d+[mhd]", time_from), time_from
    query = query.replace("$timeFilter", f"time >= now() - {time_from[4:]}").replace("$__interval", "1m")
    for name, value in variables.items():
        query = query.replace(f"${name}", re.escape(value))
    assert not re.search(r"\$\w", query), f"unexpanded variable in {query}"
    return query


async def panel_series(board: dict[str, Any], query: Query) -> dict[str, int]:
    """Series returned per panel ("#id title", summed over its targets); a query error raises. Each
    template variable takes the first value its own query returns (none: AssertionError)."""
    variables = {}
    for v in board["templating"]["list"]:
        values = [row[1] for s in await query(v["query"]) for row in s.values]
        assert values, f"variable {v['name']} has no values: {v['query']}"
        variables[v["name"]] = values[0]
    found: dict[str, int] = {}
    for p in panels(board):
        for t in p["targets"]:
            series = await query(expand(t["query"], variables, board["time"]["from"]))
            key = f"#{p['id']} {p['title']}"
            found[key] = found.get(key, 0) + len(series)
    return found

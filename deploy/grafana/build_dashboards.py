"""Builds the Grafana dashboards (deploy/grafana/dashboards/*.json) from one description.

Run `python deploy/grafana/build_dashboards.py` after changing it; tests/test_dashboards.py fails
when the JSON files are out of date, runs every query against a real InfluxDB and checks the
structure. Titles are Chinese first, English second; every panel has a unit.

Raw readings live in the default retention policy (`raw`), derived energy series in `long`
(see gateway/influx_setup.py and docs/accounting.md section 6).
"""

from __future__ import annotations

import json
from pathlib import Path

DATASOURCE = {"type": "influxdb", "uid": "ferrogate-influx"}
OUT = Path(__file__).parent / "dashboards"
KPI = '"long"."energy_kpi"'
RECORD = '"long"."production_record"'
INTERVAL = '"long"."energy_interval"'
COST_RECORD = '"long"."cost_record"'
COST_PERIOD = '"long"."cost_period"'
COST_DEMAND = '"long"."cost_demand"'
COST_SURCHARGE = '"long"."cost_surcharge"'


def target(query: str, fmt: str = "time_series", ref: str = "A") -> dict:
    return {"refId": ref, "datasource": DATASOURCE, "rawQuery": True, "resultFormat": fmt, "query": query}


def panel(
    title: str,
    kind: str,
    unit: str,
    queries: list[str],
    x: int,
    y: int,
    w: int = 12,
    h: int = 8,
    fmt: str = "time_series",
    decimals: int | None = None,
) -> dict:
    defaults: dict = {"unit": unit}
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": kind,
        "title": title,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {},
        "targets": [target(q, fmt, chr(ord("A") + i)) for i, q in enumerate(queries)],
    }


def variable(name: str, label: str, query: str) -> dict:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": query,
        "refresh": 2,
        "includeAll": False,
        "multi": False,
        "sort": 1,
    }


def dashboard(uid: str, title: str, panels: list[dict], variables: list[dict], time_from: str) -> dict:
    for number, p in enumerate(panels, 1):
        p["id"] = number
    return {
        "uid": uid,
        "title": title,
        "tags": ["ferrogate"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "30s",
        "time": {"from": time_from, "to": "now"},
        "templating": {"list": variables},
        "panels": panels,
    }


def overview() -> dict:
    return dashboard(
        "ferrogate-overview",
        "能源管控总览 Energy-center overview",
        [
            panel(
                "全厂负荷 Plant load",
                "timeseries",
                "kwatt",
                [
                    'SELECT sum("power") FROM (SELECT mean("value") AS "power" FROM "reading" WHERE "asset" =~ /^$incomer$/ '
                    'AND "unit" = \'kW\' AND $timeFilter GROUP BY time($__interval), "point") GROUP BY time($__interval)'
                ],
                0,
                0,
            ),
            panel(
                "余热发电 Waste-heat generation",
                "timeseries",
                "kwatth",
                [
                    f'SELECT sum("value") FROM {INTERVAL} WHERE "role" = \'electricity_export\' AND $timeFilter '
                    'GROUP BY time(1h), "asset" fill(none)'
                ],
                12,
                0,
            ),
            panel(
                "今日单耗 kWh/t today (per furnace)",
                "bargauge",
                "none",
                [
                    f'SELECT last("kwh_per_t") AS "kWh/t" FROM {KPI} WHERE "scope" = \'unit\' AND "period" = \'day\' '
                    'AND $timeFilter GROUP BY "subject"'
                ],
                0,
                8,
                w=8,
            ),
            panel(
                "本月单耗 kWh/t this month (per furnace)",
                "bargauge",
                "none",
                [
                    f'SELECT last("kwh_per_t") AS "kWh/t" FROM {KPI} WHERE "scope" = \'unit\' AND "period" = \'month\' '
                    'AND time > now() - 32d GROUP BY "subject"'
                ],
                8,
                8,
                w=8,
            ),
            panel(
                "碳排放强度 Carbon intensity tCO2/t (this month)",
                "bargauge",
                "none",
                [
                    f'SELECT last("tco2_per_t") AS "tCO2/t" FROM {KPI} WHERE "scope" = \'product\' AND "period" = \'month\' '
                    'AND time > now() - 32d GROUP BY "subject"'
                ],
                16,
                8,
                w=8,
                decimals=3,
            ),
            panel(
                "能效标杆状态 Benchmark status (this month, kgce/t)",
                "table",
                "none",
                [
                    f'SELECT last("kgce_per_t") AS "kgce/t", last("benchmark_kgce_per_t") AS "标杆 benchmark", '
                    'last("baseline_kgce_per_t") AS "基准 baseline", last("benchmark_status") AS "status" '
                    f"FROM {KPI} WHERE \"scope\" = 'product' AND \"period\" = 'month' AND time > now() - 32d "
                    'GROUP BY "subject"'
                ],
                0,
                16,
                w=12,
                fmt="table",
            ),
            panel(
                "设备在线 Devices online (1 = online)",
                "state-timeline",
                "bool_on_off",
                [
                    'SELECT last("online") FROM "device_status" WHERE $timeFilter GROUP BY time($__interval), "device" '
                    "fill(previous)"
                ],
                12,
                16,
                w=12,
            ),
        ],
        [
            variable(
                "incomer",
                "总进线 Main incomer",
                'SHOW TAG VALUES FROM "reading" WITH KEY = "asset" WHERE "asset" =~ /incomer/',
            )
        ],
        "now-24h",
    )


def furnace() -> dict:
    return dashboard(
        "ferrogate-furnace",
        "炉况详情 Furnace detail",
        [
            panel(
                "有功功率 Active power",
                "timeseries",
                "kwatt",
                [
                    'SELECT mean("value") FROM "reading" WHERE "asset" =~ /^$furnace$/ AND "unit" = \'kW\' '
                    'AND $timeFilter GROUP BY time($__interval), "point"'
                ],
                0,
                0,
            ),
            panel(
                "每炉/每次出铁电耗 Energy per heat or tap",
                "timeseries",
                "kwatth",
                [f'SELECT "electricity_kwh" FROM {RECORD} WHERE "asset" =~ /^$furnace$/ AND $timeFilter'],
                12,
                0,
            ),
            panel(
                "炉次记录 Heats and taps",
                "table",
                "none",
                [
                    f'SELECT "id", "start", "tonnes_t" AS "t", "electricity_kwh" AS "kWh", "kwh_per_t" AS "kWh/t", '
                    f'"quality" FROM {RECORD} WHERE "asset" =~ /^$furnace$/ AND $timeFilter ORDER BY time DESC'
                ],
                0,
                8,
                w=24,
                fmt="table",
            ),
            panel(
                "变压器油温 Transformer oil temperature",
                "timeseries",
                "celsius",
                [
                    'SELECT mean("value") FROM "reading" WHERE "asset" =~ /^$transformer$/ AND "unit" = \'degC\' '
                    'AND $timeFilter GROUP BY time($__interval), "point"'
                ],
                0,
                16,
            ),
            panel(
                "单耗趋势 kWh/t per heat or tap",
                "timeseries",
                "none",
                [f'SELECT "kwh_per_t" FROM {RECORD} WHERE "asset" =~ /^$furnace$/ AND $timeFilter'],
                12,
                16,
            ),
        ],
        [
            variable("furnace", "炉 Furnace", f'SHOW TAG VALUES FROM {RECORD} WITH KEY = "asset"'),
            variable(
                "transformer",
                "变压器 Transformer",
                'SHOW TAG VALUES FROM "reading" WITH KEY = "asset" WHERE "unit" = \'degC\'',
            ),
        ],
        "now-24h",
    )


def carbon() -> dict:
    return dashboard(
        "ferrogate-carbon",
        "碳排放与能效对标 Carbon and benchmarks",
        [
            panel(
                "直接与间接排放 Direct and indirect emissions (tCO2, month)",
                "barchart",
                "none",
                [
                    f'SELECT last("tco2_direct") AS "direct 直接", last("tco2_indirect") AS "indirect 间接" FROM {KPI} '
                    "WHERE \"scope\" = 'plant' AND \"period\" = 'month' AND $timeFilter GROUP BY time(30d) fill(none)"
                ],
                0,
                0,
                decimals=1,
            ),
            panel(
                "产品碳强度 tCO2/t by product (month)",
                "timeseries",
                "none",
                [
                    f'SELECT last("tco2_per_t") FROM {KPI} WHERE "scope" = \'product\' AND "period" = \'month\' '
                    'AND $timeFilter GROUP BY time(1d), "subject" fill(none)'
                ],
                12,
                0,
                decimals=3,
            ),
            panel(
                "综合能耗对标 kgce/t vs benchmark 标杆 and baseline 基准 ($product)",
                "timeseries",
                "none",
                [
                    f'SELECT last("kgce_per_t") AS "kgce/t", last("benchmark_kgce_per_t") AS "标杆 benchmark", '
                    f'last("baseline_kgce_per_t") AS "基准 baseline" FROM {KPI} WHERE "scope" = \'product\' '
                    'AND "subject" =~ /^$product$/ AND "period" = \'month\' AND $timeFilter GROUP BY time(1d) fill(none)'
                ],
                0,
                8,
                w=24,
            ),
            panel(
                "月度能耗与排放 Monthly energy and emissions by product",
                "table",
                "none",
                [
                    f'SELECT last("tonnes_t") AS "t", last("electricity_kwh") AS "kWh", last("comprehensive_kgce") AS "kgce", '
                    f'last("kgce_per_t") AS "kgce/t", last("tco2_total") AS "tCO2", last("tco2_per_t") AS "tCO2/t" FROM {KPI} '
                    'WHERE "scope" = \'product\' AND "period" = \'month\' AND $timeFilter GROUP BY "subject"'
                ],
                0,
                16,
                w=24,
                fmt="table",
            ),
        ],
        [
            variable(
                "product",
                "产品 Product",
                f'SHOW TAG VALUES FROM {KPI} WITH KEY = "subject" WHERE "scope" = \'product\'',
            )
        ],
        "now-90d",
    )


def cost() -> dict:
    """Electricity cost (docs/cost.md): time-of-use split, cost per heat and tonne, demand, surcharges."""
    return dashboard(
        "ferrogate-cost",
        "电费 Electricity cost",
        [
            panel(
                "每日电费 Energy cost per day by furnace",
                "timeseries",
                "currencyCNY",
                [
                    f'SELECT last("cost_yuan") FROM {COST_PERIOD} WHERE "scope" = \'unit\' AND "period" = \'day\' '
                    'AND $timeFilter GROUP BY time(1d), "subject" fill(none)'
                ],
                0,
                0,
            ),
            panel(
                "谷电占比 Valley share of each furnace's energy (day)",
                "bargauge",
                "percent",
                [
                    f'SELECT last("valley_share_percent") AS "谷 valley %" FROM {COST_PERIOD} WHERE "scope" = \'unit\' '
                    'AND "period" = \'day\' AND $timeFilter GROUP BY "subject"'
                ],
                12,
                0,
                decimals=1,
            ),
            panel(
                "分时电量 kWh by time-of-use period per heat or tap ($furnace)",
                "barchart",
                "kwatth",
                [
                    f'SELECT "kwh_sharp" AS "尖峰 sharp", "kwh_peak" AS "峰 peak", "kwh_flat" AS "平 flat", '
                    f'"kwh_valley" AS "谷 valley" FROM {COST_RECORD} WHERE "asset" =~ /^$furnace$/ AND $timeFilter'
                ],
                0,
                8,
            ),
            panel(
                "吨电费 Energy cost per tonne, each heat or tap (yuan/t, $furnace)",
                "timeseries",
                "none",
                [f'SELECT "yuan_per_t" FROM {COST_RECORD} WHERE "asset" =~ /^$furnace$/ AND $timeFilter'],
                12,
                8,
                decimals=0,
            ),
            panel(
                "15分钟需量 Billing meter 15-minute demand ($meter)",
                "timeseries",
                "kwatt",
                [
                    f'SELECT sum("value") * 4 AS "kW" FROM {INTERVAL} WHERE "asset" =~ /^$meter$/ '
                    "AND \"role\" = 'electricity_import' AND $timeFilter GROUP BY time(15m) fill(none)"
                ],
                0,
                16,
            ),
            panel(
                "本月最大需量与需量电费 Month maximum demand and demand charge",
                "table",
                "none",
                [
                    'SELECT last("max_kw") AS "最大需量 max kW", last("max_window_start") AS "at", '
                    'last("contracted_kw") AS "合同 contracted kW", last("billed_kw") AS "billed kW", '
                    f'last("charge_yuan") AS "基本电费 yuan" FROM {COST_DEMAND} WHERE time > now() - 32d GROUP BY "meter"'
                ],
                12,
                16,
                fmt="table",
            ),
            panel(
                "本月电费 Month energy cost by product",
                "table",
                "none",
                [
                    'SELECT last("electricity_kwh") AS "kWh", last("cost_yuan") AS "yuan", '
                    'last("yuan_per_kwh") AS "yuan/kWh", last("yuan_per_t") AS "yuan/t", '
                    f'last("valley_share_percent") AS "谷 valley %" FROM {COST_PERIOD} '
                    'WHERE "scope" = \'product\' AND "period" = \'month\' AND time > now() - 32d GROUP BY "subject"'
                ],
                0,
                24,
                fmt="table",
            ),
            panel(
                "电价加价 Surcharges this month (tiered / differentiated price)",
                "table",
                "none",
                [
                    'SELECT last("position") AS "位置 position", last("yuan_per_kwh") AS "yuan/kWh", '
                    'last("surcharge_yuan") AS "加价 yuan", last("better_position") AS "one better", '
                    f'last("saving_one_grade_yuan") AS "升一级节省 saving yuan" FROM {COST_SURCHARGE} '
                    'WHERE time > now() - 32d GROUP BY "surcharge", "product"'
                ],
                12,
                24,
                fmt="table",
            ),
        ],
        [
            variable("furnace", "炉 Furnace", f'SHOW TAG VALUES FROM {COST_RECORD} WITH KEY = "asset"'),
            variable("meter", "计量点 Billing meter", f'SHOW TAG VALUES FROM {COST_DEMAND} WITH KEY = "meter"'),
        ],
        "now-24h",
    )


def pollution() -> dict:
    """A stack's CEMS data (HJ 212): the points of the demo's loggers are named so, hourly figures
    end in _hour_avg / _hour_kg; kg per tonne beside kWh/t is served by /api/v1/kpi/pollutant-intensity."""
    cems = 'WHERE "device" =~ /^$cems$/'
    return dashboard(
        "ferrogate-pollution",
        "烟气排放 Stack emissions (HJ 212)",
        [
            panel(
                "小时均值 Hourly averages (mg/m3)",
                "timeseries",
                "conmgm3",
                [
                    f'SELECT mean("value") FROM "reading" {cems} AND "point" =~ /_hour_avg$/ AND "unit" = \'mg/m3\' '
                    'AND $timeFilter GROUP BY time(1h), "point" fill(none)'
                ],
                0,
                0,
            ),
            panel(
                "实时浓度 Real-time concentrations (mg/m3)",
                "timeseries",
                "conmgm3",
                [
                    f'SELECT mean("value") FROM "reading" {cems} AND "point" =~ /^(so2|nox|particulate)$/ '
                    'AND $timeFilter GROUP BY time($__interval), "point" fill(none)'
                ],
                12,
                0,
            ),
            panel(
                "小时排放量 Hourly emissions (kg)",
                "barchart",
                "masskg",
                [
                    f'SELECT sum("value") FROM "reading" {cems} AND "point" =~ /^(so2|nox|particulate)_hour_kg$/ '
                    'AND $timeFilter GROUP BY time(1h), "point" fill(none)'
                ],
                0,
                8,
                decimals=2,
            ),
            panel(
                "烟气流量与氧含量 Flue-gas flow (m3/s) and O2",
                "timeseries",
                "none",
                [
                    f'SELECT mean("value") FROM "reading" {cems} AND "point" =~ /^(flow|o2)$/ AND $timeFilter '
                    'GROUP BY time($__interval), "point" fill(none)'
                ],
                12,
                8,
            ),
            panel(
                "实测与核算 CO2 Stack CO2 measured vs the books' direct CO2 (t per day)",
                "barchart",
                "none",
                [
                    f'SELECT sum("value") / 1000 AS "实测 measured" FROM "reading" {cems} AND "point" = \'co2_hour_kg\' '
                    "AND \"quality\" = 'good' AND $timeFilter GROUP BY time(1d) fill(none)",
                    f'SELECT last("tco2_direct") AS "核算 calculated" FROM {KPI} WHERE "scope" = \'unit\' '
                    'AND "subject" =~ /^$furnace$/ AND "period" = \'day\' AND $timeFilter GROUP BY time(1d) fill(none)',
                ],
                0,
                16,
                decimals=2,
            ),
            panel(
                "数据标记 Flagged readings per hour (maintenance, calibration...)",
                "barchart",
                "short",
                [
                    f'SELECT count("quality") FROM "reading" {cems} AND "quality" != \'good\' AND $timeFilter '
                    'GROUP BY time(1h), "reason" fill(none)'
                ],
                12,
                16,
            ),
        ],
        [
            variable(
                "cems",
                "烟气监测 CEMS logger",
                'SHOW TAG VALUES FROM "reading" WITH KEY = "device" WHERE "unit" = \'mg/m3\'',
            ),
            variable(
                "furnace", "炉 Furnace", f'SHOW TAG VALUES FROM {KPI} WITH KEY = "subject" WHERE "scope" = \'unit\''
            ),
        ],
        "now-24h",
    )


DASHBOARDS = {
    "overview.json": overview,
    "furnace.json": furnace,
    "carbon.json": carbon,
    "cost.json": cost,
    "pollution.json": pollution,
}


def render() -> dict[str, str]:
    return {name: json.dumps(build(), ensure_ascii=False, indent=2) + "\n" for name, build in DASHBOARDS.items()}


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text, encoding="utf-8")
        print(f"wrote {OUT / name}")

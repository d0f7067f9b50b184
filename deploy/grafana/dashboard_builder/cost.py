"""电费 Electricity cost (docs/cost.md): cost per day and per tonne, the time-of-use split of each heat
or tap, valley share, the billing meter's 15-minute demand, the month's demand charge, product costs
and surcharges."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from .panels import (
    COST_DEMAND,
    COST_PERIOD,
    COST_RECORD,
    COST_SURCHARGE,
    INTERVAL,
    barchart,
    bargauge,
    board,
    table,
    timeseries,
    variable,
)


def dashboard() -> Dashboard:
    return board(
        "ferrogate-cost",
        "电费 Electricity cost",
        "now-24h",
        [
            timeseries(
                "每日电费 Energy cost per day by furnace",
                "currencyCNY",
                f'SELECT last("cost_yuan") FROM {COST_PERIOD} WHERE "scope" = \'unit\' AND "period" = \'day\' '
                'AND $timeFilter GROUP BY time(1d), "subject" fill(none)',
            ),
            bargauge(
                "谷电占比 Valley share of each furnace's energy (day)",
                "percent",
                f'SELECT last("valley_share_percent") AS "谷 valley %" FROM {COST_PERIOD} WHERE "scope" = \'unit\' '
                'AND "period" = \'day\' AND $timeFilter GROUP BY "subject"',
                decimals=1,
            ),
            barchart(
                "分时电量 kWh by time-of-use period per heat or tap ($furnace)",
                "kwatth",
                f'SELECT "kwh_sharp" AS "尖峰 sharp", "kwh_peak" AS "峰 peak", "kwh_flat" AS "平 flat", '
                f'"kwh_valley" AS "谷 valley" FROM {COST_RECORD} WHERE "asset" =~ /^$furnace$/ AND $timeFilter',
            ),
            timeseries(
                "吨电费 Energy cost per tonne, each heat or tap (yuan/t, $furnace)",
                "none",
                f'SELECT "yuan_per_t" FROM {COST_RECORD} WHERE "asset" =~ /^$furnace$/ AND $timeFilter',
                decimals=0,
            ),
            timeseries(
                "15分钟需量 Billing meter 15-minute demand ($meter)",
                "kwatt",
                f'SELECT sum("value") * 4 AS "kW" FROM {INTERVAL} WHERE "asset" =~ /^$meter$/ '
                "AND \"role\" = 'electricity_import' AND $timeFilter GROUP BY time(15m) fill(none)",
            ),
            table(
                "本月最大需量与需量电费 Month maximum demand and demand charge",
                "none",
                'SELECT last("max_kw") AS "最大需量 max kW", last("max_window_start") AS "at", '
                'last("contracted_kw") AS "合同 contracted kW", last("billed_kw") AS "billed kW", '
                f'last("charge_yuan") AS "基本电费 yuan" FROM {COST_DEMAND} WHERE time > now() - 32d GROUP BY "meter"',
            ),
            table(
                "本月电费 Month energy cost by product",
                "none",
                'SELECT last("electricity_kwh") AS "kWh", last("cost_yuan") AS "yuan", '
                'last("yuan_per_kwh") AS "yuan/kWh", last("yuan_per_t") AS "yuan/t", '
                f'last("valley_share_percent") AS "谷 valley %" FROM {COST_PERIOD} '
                'WHERE "scope" = \'product\' AND "period" = \'month\' AND time > now() - 32d GROUP BY "subject"',
            ),
            table(
                "电价加价 Surcharges this month (tiered / differentiated price)",
                "none",
                'SELECT last("position") AS "位置 position", last("yuan_per_kwh") AS "yuan/kWh", '
                'last("surcharge_yuan") AS "加价 yuan", last("better_position") AS "one better", '
                f'last("saving_one_grade_yuan") AS "升一级节省 saving yuan" FROM {COST_SURCHARGE} '
                'WHERE time > now() - 32d GROUP BY "surcharge", "product"',
            ),
        ],
        [
            variable("furnace", "炉 Furnace", f'SHOW TAG VALUES FROM {COST_RECORD} WITH KEY = "asset"'),
            variable("meter", "计量点 Billing meter", f'SHOW TAG VALUES FROM {COST_DEMAND} WITH KEY = "meter"'),
        ],
    )

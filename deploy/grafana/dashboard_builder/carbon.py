"""碳排放与能效对标 Carbon and benchmarks: direct and indirect tCO2, tCO2/t per product, kgce/t against
the national benchmark and baseline, and the month's energy and emissions per product."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from .panels import KPI, barchart, board, table, timeseries, variable


def dashboard() -> Dashboard:
    return board(
        "ferrogate-carbon",
        "碳排放与能效对标 Carbon and benchmarks",
        "now-90d",
        [
            barchart(
                "直接与间接排放 Direct and indirect emissions (tCO2, month)",
                "none",
                f'SELECT last("tco2_direct") AS "direct 直接", last("tco2_indirect") AS "indirect 间接" FROM {KPI} '
                "WHERE \"scope\" = 'plant' AND \"period\" = 'month' AND $timeFilter GROUP BY time(30d) fill(none)",
                decimals=1,
            ),
            timeseries(
                "产品碳强度 tCO2/t by product (month)",
                "none",
                f'SELECT last("tco2_per_t") FROM {KPI} WHERE "scope" = \'product\' AND "period" = \'month\' '
                'AND $timeFilter GROUP BY time(1d), "subject" fill(none)',
                decimals=3,
            ),
            timeseries(
                "综合能耗对标 kgce/t vs benchmark 标杆 and baseline 基准 ($product)",
                "none",
                f'SELECT last("kgce_per_t") AS "kgce/t", last("benchmark_kgce_per_t") AS "标杆 benchmark", '
                f'last("baseline_kgce_per_t") AS "基准 baseline" FROM {KPI} WHERE "scope" = \'product\' '
                'AND "subject" =~ /^$product$/ AND "period" = \'month\' AND $timeFilter GROUP BY time(1d) fill(none)',
                width=24,
            ),
            table(
                "月度能耗与排放 Monthly energy and emissions by product",
                "none",
                f'SELECT last("tonnes_t") AS "t", last("electricity_kwh") AS "kWh", last("comprehensive_kgce") AS "kgce", '
                f'last("kgce_per_t") AS "kgce/t", last("tco2_total") AS "tCO2", last("tco2_per_t") AS "tCO2/t" FROM {KPI} '
                'WHERE "scope" = \'product\' AND "period" = \'month\' AND $timeFilter GROUP BY "subject"',
                width=24,
            ),
        ],
        [
            variable(
                "product",
                "产品 Product",
                f'SHOW TAG VALUES FROM {KPI} WITH KEY = "subject" WHERE "scope" = \'product\'',
            )
        ],
    )

"""集团能源管控 Group energy center: every plant side by side from the center's database, where each
plant's books arrive with their `site` tag (docs/group.md): comprehensive energy and emissions per
plant, kgce/t per plant and product against the benchmark, and the benchmark status table. On a
plant's own Grafana it shows that one plant."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from .panels import KPI, barchart, board, table, timeseries, variable


def dashboard() -> Dashboard:
    return board(
        "ferrogate-group",
        "集团能源管控 Group energy center",
        "now-90d",
        [
            barchart(
                "各厂综合能耗 Comprehensive energy per plant (kgce, month)",
                "none",
                f'SELECT last("comprehensive_kgce") FROM {KPI} WHERE "scope" = \'plant\' AND "period" = \'month\' '
                'AND $timeFilter GROUP BY time(30d), "site" fill(none)',
                decimals=0,
            ),
            barchart(
                "各厂碳排放 Emissions per plant (tCO2, month)",
                "none",
                f'SELECT last("tco2_direct") AS "direct 直接", last("tco2_indirect") AS "indirect 间接" FROM {KPI} '
                'WHERE "scope" = \'plant\' AND "period" = \'month\' AND $timeFilter GROUP BY time(30d), "site" fill(none)',
                decimals=1,
            ),
            timeseries(
                "各厂用电 Electricity per plant (kWh, day)",
                "none",
                f'SELECT last("consumption_kwh") FROM {KPI} WHERE "scope" = \'plant\' AND "period" = \'day\' '
                'AND $timeFilter GROUP BY time(1d), "site" fill(none)',
                decimals=0,
            ),
            timeseries(
                "产品单耗对标 kgce/t per plant vs benchmark 标杆 ($product)",
                "none",
                f'SELECT last("kgce_per_t") AS "kgce/t", last("benchmark_kgce_per_t") AS "标杆 benchmark" FROM {KPI} '
                'WHERE "scope" = \'product\' AND "subject" =~ /^$product$/ AND "period" = \'month\' AND $timeFilter '
                'GROUP BY time(1d), "site" fill(none)',
            ),
            table(
                "各厂对标状态 Benchmark status by plant and product (month)",
                "none",
                f'SELECT last("tonnes_t") AS "t", last("kgce_per_t") AS "kgce/t", last("benchmark_status") AS "status", '
                f'last("tco2_per_t") AS "tCO2/t" FROM {KPI} WHERE "scope" = \'product\' AND "period" = \'month\' '
                'AND $timeFilter GROUP BY "site", "subject"',
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

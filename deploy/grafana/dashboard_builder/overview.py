"""能源管控总览 Energy-center overview: plant load, waste-heat power, kWh/t and tCO2/t per furnace and
product, benchmark status, devices online."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from .panels import INTERVAL, KPI, bargauge, board, state_timeline, table, timeseries, variable


def dashboard() -> Dashboard:
    return board(
        "ferrogate-overview",
        "能源管控总览 Energy-center overview",
        "now-24h",
        [
            timeseries(
                "全厂负荷 Plant load",
                "kwatt",
                'SELECT sum("power") FROM (SELECT mean("value") AS "power" FROM "reading" WHERE "asset" =~ /^$incomer$/ '
                'AND "unit" = \'kW\' AND $timeFilter GROUP BY time($__interval), "point") GROUP BY time($__interval)',
            ),
            timeseries(
                "余热发电 Waste-heat generation",
                "kwatth",
                f'SELECT sum("value") FROM {INTERVAL} WHERE "role" = \'electricity_export\' AND $timeFilter '
                'GROUP BY time(1h), "asset" fill(none)',
            ),
            bargauge(
                "今日单耗 kWh/t today (per furnace)",
                "none",
                f'SELECT last("kwh_per_t") AS "kWh/t" FROM {KPI} WHERE "scope" = \'unit\' AND "period" = \'day\' '
                'AND $timeFilter GROUP BY "subject"',
                width=8,
            ),
            bargauge(
                "本月单耗 kWh/t this month (per furnace)",
                "none",
                f'SELECT last("kwh_per_t") AS "kWh/t" FROM {KPI} WHERE "scope" = \'unit\' AND "period" = \'month\' '
                'AND time > now() - 32d GROUP BY "subject"',
                width=8,
            ),
            bargauge(
                "碳排放强度 Carbon intensity tCO2/t (this month)",
                "none",
                f'SELECT last("tco2_per_t") AS "tCO2/t" FROM {KPI} WHERE "scope" = \'product\' AND "period" = \'month\' '
                'AND time > now() - 32d GROUP BY "subject"',
                width=8,
                decimals=3,
            ),
            table(
                "能效标杆状态 Benchmark status (this month, kgce/t)",
                "none",
                f'SELECT last("kgce_per_t") AS "kgce/t", last("benchmark_kgce_per_t") AS "标杆 benchmark", '
                'last("baseline_kgce_per_t") AS "基准 baseline", last("benchmark_status") AS "status" '
                f"FROM {KPI} WHERE \"scope\" = 'product' AND \"period\" = 'month' AND time > now() - 32d "
                'GROUP BY "subject"',
            ),
            state_timeline(
                "设备在线 Devices online (1 = online)",
                "bool_on_off",
                'SELECT last("online") FROM "device_status" WHERE $timeFilter GROUP BY time($__interval), "device" '
                "fill(previous)",
            ),
        ],
        [
            variable(
                "incomer",
                "总进线 Main incomer",
                'SHOW TAG VALUES FROM "reading" WITH KEY = "asset" WHERE "asset" =~ /incomer/',
            )
        ],
    )

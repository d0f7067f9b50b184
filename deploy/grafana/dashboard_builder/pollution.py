"""烟气排放 Stack emissions (HJ 212): a stack's CEMS data as its logger sent it. The points are named
as the demo's loggers' are (real-time so2, nox, particulate, flow, o2; hourly *_hour_avg and
*_hour_kg); kg per tonne beside kWh/t is served by /api/v1/kpi/pollutant-intensity (docs/hj212.md)."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from .panels import KPI, barchart, board, timeseries, variable

CEMS = 'WHERE "device" =~ /^$cems$/'


def dashboard() -> Dashboard:
    return board(
        "ferrogate-pollution",
        "烟气排放 Stack emissions (HJ 212)",
        "now-24h",
        [
            timeseries(
                "小时均值 Hourly averages (mg/m3)",
                "conmgm3",
                f'SELECT mean("value") FROM "reading" {CEMS} AND "point" =~ /_hour_avg$/ AND "unit" = \'mg/m3\' '
                'AND $timeFilter GROUP BY time(1h), "point" fill(none)',
            ),
            timeseries(
                "实时浓度 Real-time concentrations (mg/m3)",
                "conmgm3",
                f'SELECT mean("value") FROM "reading" {CEMS} AND "point" =~ /^(so2|nox|particulate)$/ '
                'AND $timeFilter GROUP BY time($__interval), "point" fill(none)',
            ),
            barchart(
                "小时排放量 Hourly emissions (kg)",
                "masskg",
                f'SELECT sum("value") FROM "reading" {CEMS} AND "point" =~ /^(so2|nox|particulate)_hour_kg$/ '
                'AND $timeFilter GROUP BY time(1h), "point" fill(none)',
                decimals=2,
            ),
            timeseries(
                "烟气流量与氧含量 Flue-gas flow (m3/s) and O2",
                "none",
                f'SELECT mean("value") FROM "reading" {CEMS} AND "point" =~ /^(flow|o2)$/ AND $timeFilter '
                'GROUP BY time($__interval), "point" fill(none)',
            ),
            barchart(
                "实测与核算 CO2 Stack CO2 measured vs the books' direct CO2 (t per day)",
                "none",
                f'SELECT sum("value") / 1000 AS "实测 measured" FROM "reading" {CEMS} AND "point" = \'co2_hour_kg\' '
                "AND \"quality\" = 'good' AND $timeFilter GROUP BY time(1d) fill(none)",
                f'SELECT last("tco2_direct") AS "核算 calculated" FROM {KPI} WHERE "scope" = \'unit\' '
                'AND "subject" =~ /^$furnace$/ AND "period" = \'day\' AND $timeFilter GROUP BY time(1d) fill(none)',
                decimals=2,
            ),
            barchart(
                "数据标记 Flagged readings per hour (maintenance, calibration...)",
                "short",
                f'SELECT count("quality") FROM "reading" {CEMS} AND "quality" != \'good\' AND $timeFilter '
                'GROUP BY time(1h), "reason" fill(none)',
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
    )

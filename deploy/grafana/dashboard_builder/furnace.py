"""炉况详情 Furnace detail: one furnace's power, energy and kWh/t per heat or tap, its heats and taps,
and its transformer's oil temperature."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from .panels import RECORD, board, table, timeseries, variable


def dashboard() -> Dashboard:
    return board(
        "ferrogate-furnace",
        "炉况详情 Furnace detail",
        "now-24h",
        [
            timeseries(
                "有功功率 Active power",
                "kwatt",
                'SELECT mean("value") FROM "reading" WHERE "asset" =~ /^$furnace$/ AND "unit" = \'kW\' '
                'AND $timeFilter GROUP BY time($__interval), "point"',
            ),
            timeseries(
                "每炉/每次出铁电耗 Energy per heat or tap",
                "kwatth",
                f'SELECT "electricity_kwh" FROM {RECORD} WHERE "asset" =~ /^$furnace$/ AND $timeFilter',
            ),
            table(
                "炉次记录 Heats and taps",
                "none",
                f'SELECT "id", "start", "tonnes_t" AS "t", "electricity_kwh" AS "kWh", "kwh_per_t" AS "kWh/t", '
                f'"quality" FROM {RECORD} WHERE "asset" =~ /^$furnace$/ AND $timeFilter ORDER BY time DESC',
                width=24,
            ),
            timeseries(
                "变压器油温 Transformer oil temperature",
                "celsius",
                'SELECT mean("value") FROM "reading" WHERE "asset" =~ /^$transformer$/ AND "unit" = \'degC\' '
                'AND $timeFilter GROUP BY time($__interval), "point"',
            ),
            timeseries(
                "单耗趋势 kWh/t per heat or tap",
                "none",
                f'SELECT "kwh_per_t" FROM {RECORD} WHERE "asset" =~ /^$furnace$/ AND $timeFilter',
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
    )

"""合规 Compliance (docs/compliance.md): each product's grade under its mandatory limit standard for the
month and the rolling 12 months, the carbon market's month by process, CBAM specific embedded
emissions against the default with its mark-up, and product footprints. The compliance watch
writes these series for the current month (docs/compliance.md section 8)."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from .panels import COMPLIANCE_CARBON, COMPLIANCE_FOOTPRINT, COMPLIANCE_GRADE, board, table, timeseries, variable


def grades(window: str) -> str:
    return (
        'SELECT last("value") AS "value", last("unit") AS "unit", last("status") AS "等级 grade", '
        'last("grade_1") AS "1级", last("grade_2") AS "2级", last("grade_3") AS "3级 limit", '
        'last("margin_to_next_grade") AS "margin to next grade", last("standard") AS "standard" '
        f"FROM {COMPLIANCE_GRADE} WHERE \"window\" = '{window}' AND time > now() - 32d "
        'GROUP BY "product", "indicator"'
    )


def dashboard() -> Dashboard:
    return board(
        "ferrogate-compliance",
        "合规 Compliance: limits, carbon market, CBAM, footprints",
        "now-90d",
        [
            table("能耗限额等级 Limit grades (this month)", "none", grades("month"), width=24),
            table(
                "近12个月能耗限额等级 Limit grades (rolling 12 months)", "none", grades("rolling_12_months"), width=24
            ),
            timeseries(
                "月度值与限额等级 Monthly value against the grade levels ($product)",
                "none",
                'SELECT last("value") AS "value", last("grade_1") AS "1级", last("grade_2") AS "2级", '
                f'last("grade_3") AS "3级 limit" FROM {COMPLIANCE_GRADE} WHERE "product" =~ /^$product$/ '
                'AND "window" = \'month\' AND $timeFilter GROUP BY time(1d), "indicator" fill(none)',
                width=24,
                decimals=1,
            ),
            table(
                "全国碳市场 China ETS: covered direct CO2 by process (this month)",
                "none",
                'SELECT last("tco2_direct") AS "direct tCO2", last("tco2_indirect") AS "indirect tCO2 (outside)", '
                f'last("tco2_per_t") AS "tCO2/t", last("complete") AS "complete" FROM {COMPLIANCE_CARBON} '
                'WHERE "kind" =~ /^ets_/ AND time > now() - 32d GROUP BY "kind", "subject"',
                decimals=3,
            ),
            table(
                "欧盟CBAM CBAM: specific embedded emissions vs default + mark-up (tCO2e/t)",
                "none",
                'SELECT last("see_direct") AS "SEE", last("default_with_markup") AS "default + mark-up", '
                f'last("cn") AS "CN", last("verified") AS "verified" FROM {COMPLIANCE_CARBON} '
                'WHERE "kind" = \'cbam_good\' AND time > now() - 32d GROUP BY "subject"',
                decimals=3,
            ),
            table(
                "产品碳足迹 Product carbon footprint (cradle to gate, this month)",
                "none",
                'SELECT last("kgco2e_per_t") AS "kgCO2e/t", last("tonnes_t") AS "t", last("complete") AS "complete", '
                f'last("verified") AS "verified" FROM {COMPLIANCE_FOOTPRINT} WHERE time > now() - 32d GROUP BY "product"',
                width=24,
                decimals=1,
            ),
        ],
        [variable("product", "产品 Product", f'SHOW TAG VALUES FROM {COMPLIANCE_GRADE} WITH KEY = "product"')],
    )

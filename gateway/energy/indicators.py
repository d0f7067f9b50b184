"""Indicators the provincial carbon-peak plans track, as percentages with their inputs kept.

water reuse rate 水重复利用率 = recirculated / (recirculated + fresh intake) x 100
waste-heat self-generation share = waste-heat generation / electricity consumption x 100
green-electricity share = green power bought / electricity consumption x 100
"""

from __future__ import annotations


def percent(part: float, whole: float) -> float | None:
    return part / whole * 100.0 if whole > 0 else None


def water_reuse_rate(recirculated: float, fresh_intake: float) -> float | None:
    return percent(recirculated, recirculated + fresh_intake)


def waste_heat_share(generation_kwh: float, consumption_kwh: float) -> float | None:
    return percent(generation_kwh, consumption_kwh)


def green_share(green_kwh: float, consumption_kwh: float) -> float | None:
    return percent(green_kwh, consumption_kwh)

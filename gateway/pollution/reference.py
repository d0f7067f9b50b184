"""Reference data of pollutant accounting: the pollutants with their HJ 212 factor codes, the
Appendix D statistics rules, and emission limits a plant file can name, each with value, unit,
source and year (`Factor`, as the energy books use).

The statistics rules are the checked facts of ../shared/reference/hj212.md (HJ 212-2017 Appendix D).
The limits are not in ../shared/reference: they stay `verified=False` until checked against the text.
"""

from __future__ import annotations

from dataclasses import dataclass

from ferrogate.gateway.energy.reference import Confidence, Factor

HJ212_2017 = "HJ 212-2017 污染物在线监控(监测)系统数据传输标准, Appendix D"
STEEL_ULTRA_LOW = "环大气〔2019〕35号 关于推进实施钢铁行业超低排放的意见 (MEE, NDRC, MIIT, MOF, MOT), 2019-04-22"
O2_AIR_PCT = 21.0  # oxygen in air, % by volume: the O2 correction's reference point


@dataclass(frozen=True, slots=True)
class Pollutant:
    id: str
    code: str  # HJ 212 factor code
    name: str
    concentration_unit: str  # of the real-time and average values
    mass_unit: str  # of the period's Cou


POLLUTANTS = {
    p.id: p
    for p in (
        Pollutant("so2", "a21026", "SO2", "mg/m3", "kg"),
        Pollutant("nox", "a21002", "NOx", "mg/m3", "kg"),
        Pollutant("particulate", "a34013", "particulate", "mg/m3", "kg"),
        Pollutant("co2", "a05001", "CO2", "mg/m3", "kg"),
        Pollutant("co", "a21005", "CO", "mg/m3", "kg"),
        Pollutant("hcl", "a21024", "HCl", "mg/m3", "kg"),
    )
}
FLOW_CODE, O2_CODE = "a00000", "a19001"


def _rule(value: float, unit: str, note: str) -> Factor:
    return Factor(value, unit, HJ212_2017, 2017, Confidence.H, True, note)


# HJ 212-2017 Appendix D: which averages are valid (reference hj212.md "Statistics")
STATISTICS_RULES = {
    "minute_min_readings": _rule(12, "readings", "a minute average needs at least this many valid readings"),
    "max_spacing_s": _rule(5, "s", "... taken at most this far apart"),
    "hour_min_minutes": _rule(45, "minutes", "an hourly average needs at least this many valid minutes"),
    "day_min_hours": _rule(20, "hours", "a daily average needs at least this many valid hours"),
    "normal_share": _rule(0.75, "1", "a period is flagged N when at least this share of its values is normal"),
}


def _limit(value: float, note: str) -> Factor:
    return Factor(value, "mg/m3", STEEL_ULTRA_LOW, 2019, Confidence.UNVERIFIED, False, note)


# Ultra-low-emission concentration limits (hourly averages, mg/m3) a plant file may name by key.
EMISSION_LIMITS = {
    "steel_ultra_low.sinter_head.particulate": _limit(10, "sinter machine head, pellet roasting; at 16 % O2"),
    "steel_ultra_low.sinter_head.so2": _limit(35, "sinter machine head, pellet roasting; at 16 % O2"),
    "steel_ultra_low.sinter_head.nox": _limit(50, "sinter machine head, pellet roasting; at 16 % O2"),
    "steel_ultra_low.other.particulate": _limit(10, "other production facilities, e.g. the electric arc furnace"),
}

"""Emission rates and masses of a stack, per hour and per day (HJ 212-2017 Appendix D).

- Emission rate G (kg/h) = C (mg/m3) x Qsn (m3/h, standard dry) x 1e-6, from the hour's average
  concentration and flow; an hour's mass is G x 1 h. Only valid hours have a mass; a flagged hour
  keeps its flag and average and gets none (never filled).
- O2-corrected concentration (折算), where a reference O2 is configured:
  C_ref = C x (21 - O2_ref) / (21 - O2), minute by minute with the minute's measured O2.
- Where the logger sends its own hourly data (2061: Avg, Cou), those are the hour's figures; their
  data flags decide validity.
- A day's mass is the sum of its valid hours' masses; the day is flagged unless `day_min_hours`
  are valid (kpi.period_emission).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ferrogate.gateway.pollution.reference import O2_AIR_PCT
from ferrogate.gateway.pollution.statistics import HOUR_NS, NORMAL, TOO_FEW, Average, Rules, roll_up


@dataclass(frozen=True, slots=True)
class HourEmission:
    start_ns: int
    concentration: float | None  # mg/m3, hour average of the valid minutes
    corrected: float | None  # mg/m3 at the reference O2 (None without one)
    flow_m3_s: float | None  # standard dry, hour average
    rate_kg_h: float | None
    mass_kg: float | None  # None unless the hour is valid
    flag: str

    @property
    def valid(self) -> bool:
        return self.flag == NORMAL


def corrected_concentration(concentration: float, o2_pct: float, reference_o2_pct: float) -> float | None:
    """C x (21 - O2_ref) / (21 - O2); None when the measured O2 leaves no flue gas to correct."""
    if o2_pct >= O2_AIR_PCT:
        return None
    return concentration * (O2_AIR_PCT - reference_o2_pct) / (O2_AIR_PCT - o2_pct)


def hour_emission(
    concentration: Sequence[Average],
    flow: Sequence[Average],
    start_ns: int,
    rules: Rules,
    o2: Sequence[Average] = (),
    reference_o2_pct: float | None = None,
) -> HourEmission:
    """One hour of a pollutant from the minute averages of its concentration, the flow and O2.
    A minute counts when both its concentration and its flow are valid."""
    flows = {m.start_ns: m for m in flow if m.valid}
    o2s = {m.start_ns: m for m in o2 if m.valid}
    paired = [m for m in concentration if m.valid and m.start_ns in flows]
    unpaired = [m if m.valid is False else _flow_missing(m) for m in concentration if m not in paired]
    hour = roll_up([*paired, *unpaired], start_ns, start_ns + HOUR_NS, 60, rules.hour_min_minutes, rules)
    flow_avg = _mean(flows[m.start_ns].value for m in paired)
    corrected = None
    if reference_o2_pct is not None:
        corrected = _mean(
            corrected_concentration(m.value, o2s[m.start_ns].value, reference_o2_pct)  # type: ignore[arg-type]
            for m in paired
            if m.start_ns in o2s
        )
    rate = None
    if hour.value is not None and flow_avg is not None:
        rate = hour.value * flow_avg * 3600 * 1e-6
    mass = rate if hour.valid else None  # G x 1 h
    return HourEmission(start_ns, hour.value, corrected, flow_avg, rate, mass, hour.flag)


def _flow_missing(minute: Average) -> Average:
    return Average(minute.start_ns, minute.end_ns, minute.value, minute.parts, minute.valid_parts, TOO_FEW)


def _mean(values: Iterable[float | None]) -> float | None:
    numbers = [v for v in values if v is not None]
    return sum(numbers) / len(numbers) if numbers else None


def reported_hour(
    start_ns: int, avg: float | None, mass_kg: float | None, flag: str, flow_m3: float | None = None
) -> HourEmission:
    """An hour as the logger reported it (2061): its average, its Cou and its data flag's verdict."""
    if mass_kg is None and flag == NORMAL:
        flag = TOO_FEW  # an hour without its Cou has no mass to count
    flow = flow_m3 / 3600 if flow_m3 is not None else None
    # a mass over one hour is the hour's mean rate in kg/h
    return HourEmission(start_ns, avg, None, flow, mass_kg, mass_kg if flag == NORMAL else None, flag)

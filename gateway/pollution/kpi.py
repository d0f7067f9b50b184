"""A stack's hours from its readings, and the per-period figures beside the energy books: kg of each
pollutant over the period's valid hours, kg per tonne of the furnace's product, and the stack's
measured CO2 next to the books' calculated direct CO2. Pure: readings in, figures out.

An hour counts where its data is valid; flagged hours are counted and listed, never filled, so a
period's kg says over how many of its hours it was measured (`valid_hours` of `expected_hours`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ferrogate.gateway.pollution.config import StackConfig
from ferrogate.gateway.pollution.emissions import HourEmission, hour_emission, reported_hour
from ferrogate.gateway.pollution.reference import POLLUTANTS
from ferrogate.gateway.pollution.statistics import HOUR_NS, NORMAL, TOO_FEW, Rules, Sample, minutes


def flag_of(sample: Sample) -> str:
    """N for a good reading, else the first word of its reason (e.g. `calibration`)."""
    return NORMAL if sample.good and sample.value is not None else (sample.reason or "not_good").split(":", 1)[0]


Readings = Mapping[str, Sequence[Sample]]  # "device.point" -> its readings in time order


def stack_hours(stack: StackConfig, readings: Readings, rules: Rules) -> dict[str, list[HourEmission]]:
    """pollutant -> its hours: the logger's hourly figures where configured, else Appendix D
    statistics of the real-time readings (with the flow, O2-corrected where configured)."""
    out: dict[str, list[HourEmission]] = {}
    flow_points = stack.hourly.get("flow")
    volumes = {r.t_ns: r.value for r in readings.get(flow_points.mass or "", ())} if flow_points else {}
    for pollutant in POLLUTANTS:
        hourly = stack.hourly.get(pollutant)  # type: ignore[call-overload]
        if hourly is not None and hourly.mass is not None:
            avg = {r.t_ns: r.value for r in readings.get(hourly.avg or "", ())}
            out[pollutant] = [
                reported_hour(r.t_ns, avg.get(r.t_ns), r.value, flag_of(r), volumes.get(r.t_ns))
                for r in readings.get(hourly.mass, ())
            ]
        elif pollutant in stack.realtime and "flow" in stack.realtime:
            out[pollutant] = _computed_hours(stack, pollutant, readings, rules)
    return out


def _computed_hours(stack: StackConfig, pollutant: str, readings: Readings, rules: Rules) -> list[HourEmission]:
    concentration = minutes(readings.get(stack.realtime[pollutant], ()), rules)  # type: ignore[index]
    flow = minutes(readings.get(stack.realtime["flow"], ()), rules)
    o2 = minutes(readings.get(stack.realtime.get("o2", ""), ()), rules)
    starts = sorted({m.start_ns - m.start_ns % HOUR_NS for m in concentration})
    return [
        hour_emission(
            [m for m in concentration if h <= m.start_ns < h + HOUR_NS],
            [m for m in flow if h <= m.start_ns < h + HOUR_NS],
            h,
            rules,
            [m for m in o2 if h <= m.start_ns < h + HOUR_NS],
            stack.reference_o2_pct,
        )
        for h in starts
    ]


@dataclass(slots=True)
class PeriodEmission:
    kg: float = 0.0
    valid_hours: int = 0
    flagged_hours: int = 0
    expected_hours: int = 0
    flags: dict[str, int] = field(default_factory=dict)  # why hours were flagged
    min_valid_hours: int | None = None  # a day's rule (HJ 212-2017 Appendix D: 20); none for months

    @property
    def flag(self) -> str | None:
        """A day's flag: N with enough valid hours, else too_few_values (its kg is still only theirs)."""
        if self.min_valid_hours is None:
            return None
        return NORMAL if self.valid_hours >= self.min_valid_hours else TOO_FEW

    def as_dict(self, tonnes: float | None) -> dict[str, object]:
        return {
            "kg": self.kg,
            "kg_per_t": self.kg / tonnes if tonnes else None,
            "valid_hours": self.valid_hours,
            "flagged_hours": self.flagged_hours,
            "expected_hours": self.expected_hours,
            "flags": self.flags,
            "flag": self.flag,
        }


def period_emission(
    hours: Iterable[HourEmission], start_ns: int, end_ns: int, min_valid_hours: int | None = None
) -> PeriodEmission:
    """Sum over the valid hours that start in [start_ns, end_ns)."""
    out = PeriodEmission(expected_hours=round((end_ns - start_ns) / HOUR_NS), min_valid_hours=min_valid_hours)
    for h in hours:
        if not start_ns <= h.start_ns < end_ns:
            continue
        if h.valid and h.mass_kg is not None:
            out.kg += h.mass_kg
            out.valid_hours += 1
        else:
            out.flagged_hours += 1
            out.flags[h.flag] = out.flags.get(h.flag, 0) + 1
    return out


def co2_comparison(measured_kg: float | None, calculated_direct_t: float | None) -> dict[str, float | None]:
    """The stack's measured CO2 beside the books' direct CO2; their difference is a data-quality signal."""
    measured_t = None if measured_kg is None else measured_kg / 1000
    difference = None
    if measured_t is not None and calculated_direct_t:
        difference = 100 * (measured_t - calculated_direct_t) / calculated_direct_t
    return {"measured_t": measured_t, "calculated_direct_t": calculated_direct_t, "difference_percent": difference}

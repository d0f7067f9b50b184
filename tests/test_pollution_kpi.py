"""A stack's hours from its stored readings: Appendix D statistics of real-time data where the logger
sends no hourly data, the logger's own hourly figures where it does; the per-period sums and the
day's flag; measured vs calculated CO2."""

from __future__ import annotations

import pytest

from ferrogate.gateway.pollution.config import StackConfig
from ferrogate.gateway.pollution.kpi import co2_comparison, period_emission, stack_hours
from ferrogate.gateway.pollution.statistics import HOUR_NS, Rules, Sample

T0 = 1_767_571_200_000_000_000  # a whole hour
S = 1_000_000_000


def every_5s(value: float, hours: int, good: bool = True, reason: str | None = None) -> list[Sample]:
    return [Sample(T0 + t * S, value, good, reason) for t in range(0, hours * 3600, 5)]


def test_hours_from_real_time_data_only() -> None:
    stack = StackConfig(
        id="s1",
        name="s",
        furnace="saf1",
        realtime={"so2": "c.so2", "flow": "c.flow", "o2": "c.o2"},
        reference_o2_pct=16,
    )
    readings = {"c.so2": every_5s(20.0, 2), "c.flow": every_5s(100.0, 2), "c.o2": every_5s(19.0, 2)}
    hours = stack_hours(stack, readings, Rules())
    assert list(hours) == ["so2"]
    assert [(h.start_ns, h.mass_kg, h.corrected, h.flag) for h in hours["so2"]] == [
        (T0, pytest.approx(7.2), pytest.approx(50.0), "N"),
        (T0 + HOUR_NS, pytest.approx(7.2), pytest.approx(50.0), "N"),
    ]


def test_the_loggers_hourly_figures_win_and_their_flags_decide() -> None:
    stack = StackConfig(
        id="s1",
        name="s",
        furnace="saf1",
        realtime={"so2": "c.so2", "flow": "c.flow"},
        hourly={"so2": {"avg": "c.so2_h", "mass": "c.so2_kg"}, "flow": {"mass": "c.flow_m3"}},
    )
    readings = {
        "c.so2": every_5s(999.0, 2),  # not used: the logger's hourly data are
        "c.flow": every_5s(999.0, 2),
        "c.so2_h": [Sample(T0, 20.0, True), Sample(T0 + HOUR_NS, 30.0, False, "calibration: C")],
        "c.so2_kg": [Sample(T0, 7.25, True), Sample(T0 + HOUR_NS, 9.0, False, "calibration: C")],
        "c.flow_m3": [Sample(T0, 360_000.0, True)],
    }
    [first, second] = stack_hours(stack, readings, Rules())["so2"]
    assert (first.concentration, first.mass_kg, first.flag, first.flow_m3_s) == (20.0, 7.25, "N", 100.0)
    assert (second.concentration, second.mass_kg, second.flag) == (30.0, None, "calibration")
    day = period_emission([first, second], T0, T0 + 24 * HOUR_NS, min_valid_hours=20)
    assert (day.kg, day.valid_hours, day.flagged_hours, day.expected_hours, day.flags, day.flag) == (
        7.25,
        1,
        1,
        24,
        {"calibration": 1},
        "too_few_values",
    )
    assert day.as_dict(tonnes=2.5)["kg_per_t"] == 2.9
    assert period_emission([first], T0, T0 + 24 * HOUR_NS).flag is None  # months carry no flag


def test_measured_co2_beside_the_books() -> None:
    assert co2_comparison(110_000.0, 100.0) == {
        "measured_t": 110.0,
        "calculated_direct_t": 100.0,
        "difference_percent": pytest.approx(10.0),
    }
    assert co2_comparison(None, 100.0)["difference_percent"] is None

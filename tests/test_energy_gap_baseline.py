"""A tap inside a device's outage, through the books as the live cycle runs them (a window that starts
inside the gap): the readings before the gap are the baseline, never the BAD readings the gateway
stamped inside it. Before: `Series.since` took the last reading before the window, a bad one, so the
tap inside the gap was not seen and the next heat started at the first reading after the gap (its
energy before that in no record); and `Series.add` said a reading after the gap changed the books
from the last bad reading on, so the heat ending inside the gap was never re-derived. Each unit's
heats then summed 0.3-1 % off its metered energy (the device-fault test's "surplus across a gap")."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferrogate.gateway.config_loader import parse_plant
from ferrogate.gateway.energy.books import Books
from ferrogate.gateway.energy.model import resolve
from ferrogate.gateway.energy.production import NO_PREVIOUS_TAP
from ferrogate.gateway.energy.series import Series
from ferrogate.gateway.reading import Quality

S = 1_000_000_000
MIN = 60 * S
T0 = 1_772_400_000 * S
PLANT = """
site: {id: gap, name: "Gap", timezone: Asia/Shanghai, province: Guizhou}
devices:
  - id: eaf_meter
    protocol: modbus
    host: 127.0.0.1
    points:
      - {id: energy, address: 0, type: uint32, unit: kWh}
      - {id: taps, address: 2, type: uint16, unit: count}
      - {id: tap_weight, address: 3, type: float32, unit: t}
      - {id: tap_time, address: 5, type: uint32, unit: s}
assets:
  - id: eaf1
    type: eaf
    name: "EAF"
    product: crude_steel_eaf
    rated_power_kw: 80000
    meters:
      electricity_import: eaf_meter.energy
      tap_counter: eaf_meter.taps
      tap_weight: eaf_meter.tap_weight
      tap_time: eaf_meter.tap_time
accounting:
  interval_s: 900
  products: [{id: crude_steel_eaf, carbon_fixed: none}]
  units: [{asset: eaf1}]
"""
# a heat: 40 min at 60 MW (40,000 kWh), then 15 min without power (tap at 45 min, then turnaround)
HEAT_NS, ON_NS, TAP_AT_NS, POWER_KW = 55 * MIN, 40 * MIN, 45 * MIN, 60_000.0
# heat 3's meter silent from 30 to 70 min: the last 10 min of power, its tap (45 min) and turnaround inside
GAP = (T0 + 2 * HEAT_NS + 30 * MIN, T0 + 2 * HEAT_NS + 70 * MIN)


def energy_at(t: int) -> float:
    heats, into = divmod(t - T0, HEAT_NS)
    return (heats * ON_NS + min(into, ON_NS)) * POWER_KW / (3600 * S)


def tap_times() -> list[int]:
    return [T0 + k * HEAT_NS + TAP_AT_NS for k in range(6)]


def store() -> dict[tuple[str, str], Series]:
    """Scans every 2 min; inside the gap the gateway's BAD readings, stamped with its own (right) time."""
    out = {("eaf_meter", p): Series() for p in ("energy", "taps", "tap_weight", "tap_time")}
    t = T0 + 30 * S
    while t < T0 + 5 * HEAT_NS:
        done = [x for x in tap_times() if x <= t]
        values = {"energy": float(int(energy_at(t))), "taps": float(len(done)), "tap_weight": 100.0}
        values["tap_time"] = float((done[-1] if done else T0) // S)
        for point, value in values.items():
            if GAP[0] <= t < GAP[1]:
                out[("eaf_meter", point)].add(t, None, Quality.BAD)
            else:
                out[("eaf_meter", point)].add(t, value, Quality.GOOD)
        t += 2 * MIN
    return out


def test_since_keeps_the_last_usable_reading_before_the_window_as_its_baseline() -> None:
    series = Series()
    for t, v, q in ((10, 5.0, Quality.GOOD), (20, None, Quality.BAD), (30, None, Quality.BAD), (40, 9.0, Quality.GOOD)):
        series.add(t, v, q)
    assert series.since(35).times == [10, 20, 30, 40]  # from the usable 10 on, not from the bad 30
    assert series.since(15).times == [10, 20, 30, 40]
    assert series.since(40).times == [10, 20, 30, 40]
    assert series.since(5).times == [10, 20, 30, 40]
    # a reading after the gap changes the books from the last usable reading before it on
    assert series.add(50, 11.0, Quality.GOOD) == 40
    series.add(60, None, Quality.BAD)
    series.add(70, None, Quality.BAD)
    assert series.add(80, 12.0, Quality.GOOD) == 50
    assert series.add(75, None, Quality.BAD) == 70  # a bad one changes nothing before it


@pytest.mark.parametrize("since_min_before_tap", [5, 10, 20])  # 5: max_wait_s, the live cycle's
def test_a_tap_inside_a_gap_is_found_from_a_window_that_starts_inside_the_gap(since_min_before_tap: int) -> None:
    plant = parse_plant(PLANT, Path("gap.yaml"))
    model, problems = resolve(plant, plant.accounting)
    assert model is not None, problems
    books = Books(model)
    readings = store()
    taps = tap_times()
    inside = taps[2]
    assert GAP[0] < inside < GAP[1]
    whole = books.derive(readings, T0, T0 + 6 * HEAT_NS, since_ns=T0)
    # the live cycle after the next tap: records ending after the tap inside the gap, from readings
    # since a little before it (the previous record's end - max_wait_s): inside the gap, after bad readings
    live = books.derive(readings, inside, T0 + 6 * HEAT_NS, since_ns=inside - since_min_before_tap * MIN)
    after = next(r for r in live.records if r.start_ns == inside or NO_PREVIOUS_TAP in r.flags)
    assert NO_PREVIOUS_TAP not in after.flags and after.start_ns == inside, (after.id, after.flags)
    same = next(r for r in whole.records if r.id == after.id)
    assert after.electricity_kwh == pytest.approx(same.electricity_kwh)
    # the heats either side of the gap are estimates, but together exactly what the meter counted
    pair = [r for r in whole.records if r.end_ns in (inside, taps[3])]
    assert {"interpolated_gap"} <= set().union(*(r.flags for r in pair))
    assert sum(r.electricity_kwh for r in pair) == pytest.approx(
        int(energy_at(taps[3] + MIN)) - int(energy_at(taps[1] - MIN)), abs=2.0
    )

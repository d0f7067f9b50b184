"""docs/worked-example.md is generated from the engine: a month of a SiMn furnace with waste-heat
generation, from meter readings to kgce/t, benchmark status and tCO2/t. The test fails when the
document and the engine disagree; regenerate with `.venv/bin/python -m tests.test_energy_worked_example`.
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from ferrogate.gateway.config_loader import parse_plant
from ferrogate.gateway.energy import reference as ref
from ferrogate.gateway.energy.aggregate import PeriodKind
from ferrogate.gateway.energy.books import Books, BooksResult
from ferrogate.gateway.energy.model import AccountingModel, resolve
from ferrogate.gateway.energy.production import NO_PREVIOUS_TAP
from ferrogate.gateway.energy.series import Series
from ferrogate.gateway.reading import Quality
from ferrogate.gateway.timeutil import datetime_to_ns, ns_to_datetime

DOC = Path(__file__).resolve().parent.parent / "docs" / "worked-example.md"
TZ = ZoneInfo("Asia/Shanghai")
S = 1_000_000_000
SCAN_S = 600  # the meters are read every 10 minutes in this example
POWER_KW = 21_000.0  # furnace load while running
WHG_SHARE = 0.17  # waste-heat generation as a share of furnace power (reference §6: 10-25 %)
KWH_PER_T = 3_900.0  # smelting electricity of SiMn (reference §6)
ELECTRODE_KG_PER_T = 25.0
TAP_EVERY_S = 150 * 60
COUNTER_START = 4_294_000_000  # a uint32 kWh register close to its 2^32 wrap
STOP = (datetime(2026, 11, 15, 9, 0, tzinfo=TZ), datetime(2026, 11, 15, 15, 0, tzinfo=TZ))  # maintenance stop
GAP = (datetime(2026, 11, 20, 10, 0, tzinfo=TZ), datetime(2026, 11, 20, 11, 0, tzinfo=TZ))  # link down

PLANT = """
site: {id: example, name: "Worked example", timezone: Asia/Shanghai, province: Guizhou}
devices:
  - id: saf1_meter
    protocol: modbus
    host: 127.0.0.1
    points:
      - {id: energy, address: 0, type: uint32, unit: kWh}
      - {id: taps, address: 2, type: uint16, unit: "1"}
      - {id: tap_weight, address: 3, type: float32, unit: t}
      - {id: tap_time, address: 5, type: uint32, unit: s}
      - {id: electrode, address: 7, type: float32, unit: kg}
  - id: whg1_meter
    protocol: modbus
    host: 127.0.0.1
    port: 503
    points:
      - {id: export, address: 0, type: uint32, unit: kWh}
assets:
  - id: saf1
    type: submerged_arc_furnace
    name: "1# 25 MVA SiMn furnace"
    product: SiMn
    rated_power_kw: 22500
    meters: {electricity_import: saf1_meter.energy, tap_counter: saf1_meter.taps, tap_weight: saf1_meter.tap_weight,
             tap_time: saf1_meter.tap_time, electrode_counter: saf1_meter.electrode}
  - id: whg1
    type: waste_heat_generator
    name: "1# waste-heat generator"
    rated_power_kw: 5000
    meters: {electricity_export: whg1_meter.export}
accounting:
  interval_s: 900
  products: [{id: SiMn}]
  units:
    - asset: saf1
      waste_heat: [whg1]
      consumables:
        - {material: coke, per_tonne: 0.55}
        - {material: electrode, meter: saf1.electrode_counter}
"""


def local(*args: int) -> int:
    return datetime_to_ns(datetime(*args, tzinfo=TZ))


def readings(start_ns: int, end_ns: int) -> dict[tuple[str, str], Series]:
    """What the gateway would have stored: exact integrals of the furnace's load, truncated the way
    the registers truncate, one scan every 10 minutes, a link outage and a maintenance stop."""
    stop = (datetime_to_ns(STOP[0]), datetime_to_ns(STOP[1]))
    gap = (datetime_to_ns(GAP[0]), datetime_to_ns(GAP[1]))
    store = {
        k: Series()
        for k in [("saf1_meter", p) for p in ("energy", "taps", "tap_weight", "tap_time", "electrode")]
        + [("whg1_meter", "export")]
    }
    energy = 0.0  # kWh since start
    since_tap = 0.0
    taps, weight, tap_time = 0, 0.0, start_ns // S
    t = start_ns
    step = 60 * S  # the plant is integrated minute by minute; the meters are read every SCAN_S
    next_tap = start_ns + TAP_EVERY_S * S
    while t <= end_ns:
        if t >= next_tap and since_tap == 0.0:  # no metal while stopped: that tap is skipped
            next_tap += TAP_EVERY_S * S
        if t >= next_tap:
            taps += 1
            weight = round(since_tap / KWH_PER_T * (1 + 0.02 * math.sin(taps)), 1)
            tap_time, since_tap = t // S, 0.0
            next_tap += TAP_EVERY_S * S
        if (t - start_ns) % (SCAN_S * S) == 0:
            bad = gap[0] < t <= gap[1]
            counter = (COUNTER_START + math.floor(energy)) % 2**32
            q = Quality.BAD if bad else Quality.GOOD
            store[("saf1_meter", "energy")].add(t, None if bad else float(counter), q)
            store[("saf1_meter", "taps")].add(t, None if bad else float(taps), q)
            store[("saf1_meter", "tap_weight")].add(t, None if bad else weight, q)
            store[("saf1_meter", "tap_time")].add(t, None if bad else float(tap_time), q)
            store[("saf1_meter", "electrode")].add(t, None if bad else energy / KWH_PER_T * ELECTRODE_KG_PER_T, q)
            store[("whg1_meter", "export")].add(t, None if bad else float(math.floor(energy * WHG_SHARE)), q)
        power = 0.0 if stop[0] <= t < stop[1] else POWER_KW
        energy += power / 60
        since_tap += power / 60
        t += step
    return store


def compute() -> tuple[AccountingModel, BooksResult, dict[tuple[str, str], Series]]:
    plant = parse_plant(PLANT, Path("worked-example"))
    model, problems = resolve(plant, plant.accounting)
    assert model is not None, problems
    start, end = local(2026, 11, 1, 0, 0), local(2026, 12, 1, 0, 0)
    store = readings(local(2026, 10, 31, 12, 0), end + 3600 * S)
    return model, Books(model).compute(store, start, end, kinds=[PeriodKind.month]), store


def n(x: float, digits: int = 1) -> str:
    return f"{x:,.{digits}f}"


def when(t_ns: int) -> str:
    return ns_to_datetime(t_ns).astimezone(TZ).strftime("%Y-%m-%d %H:%M")


def render() -> str:
    model, result, store = compute()
    kpi = next(k for k in result.kpis if k.scope == "unit" and k.subject == "saf1")
    f = kpi.fields
    month = kpi.period
    records = [r for r in result.records if month.start_ns < r.end_ns <= month.end_ns]
    energy = store[("saf1_meter", "energy")]
    rows = [r for r in result.intervals if month.start_ns <= r.start_ns < month.end_ns]
    saf_rows = [r for r in rows if r.asset == "saf1" and r.role == "electricity_import"]
    rollovers = [r for r in saf_rows if "rollover" in r.flags]
    bad = sum(1 for q in energy.qualities if q is Quality.BAD)
    start_reg, end_reg = _reg(energy, month.start_ns), _reg(energy, month.end_ns)
    coke_f = ref.MATERIALS["coke"]
    coke_kgce, coke_co2 = coke_f.kgce, coke_f.co2
    electrode_co2 = ref.MATERIALS["electrode"].co2
    simn = ref.PRODUCTS["SiMn"].carbon_fixed
    assert coke_kgce is not None and coke_co2 is not None and electrode_co2 is not None and simn is not None
    grid = model.grid(2026)
    levels = model.benchmarks["2023"]["SiMn"]
    assert levels is not None
    first = records[:3]
    e_kgce = f["electricity_kwh"] * model.electricity_factor.value
    w_kgce = f["waste_heat_kwh"] * model.electricity_factor.value
    lines = [
        "# Worked example: one month of a SiMn furnace with waste-heat generation",
        "",
        "<!-- generated by tests/test_energy_worked_example.py from the engine; do not edit by hand -->",
        "",
        "A 25 MVA silicomanganese submerged-arc furnace (`saf1`) in Guizhou with a waste-heat generator",
        f"(`whg1`), November 2026 (plant time Asia/Shanghai; the month runs {when(month.start_ns)} to",
        f"{when(month.end_ns)}). The furnace runs at {n(POWER_KW, 0)} kW except a maintenance stop on",
        f"{STOP[0]:%Y-%m-%d} {STOP[0]:%H:%M}-{STOP[1]:%H:%M}; it is tapped every {TAP_EVERY_S // 60} minutes; the",
        f"generator makes {WHG_SHARE:.0%} of the furnace's power. Coke is charged at 0.55 t per t of SiMn",
        "(configured from the plant's material ledger); electrodes are metered. The plant file is in",
        "`tests/test_energy_worked_example.py` (`PLANT`).",
        "",
        "## 1. Meter readings",
        "",
        f"The gateway reads the meters every {SCAN_S // 60} minutes. The furnace's energy register is a 32-bit",
        f"kWh counter that stood at {COUNTER_START:,} kWh at the start of the data: it wraps at",
        f"2^32 = 4,294,967,296 kWh during the month. The link to the meter was down on {GAP[0]:%Y-%m-%d}",
        f"{GAP[0]:%H:%M}-{GAP[1]:%H:%M}: {bad} readings are stored as bad (no value), none as 0.",
        "",
        "| quantity | at the month start | at the month end | how |",
        "|---|---|---|---|",
        f"| furnace energy register | {n(start_reg, 0)} kWh | {n(end_reg, 0)} kWh | the readings at those times |",
        "",
        f"Across the wrap: (4,294,967,296 - {n(start_reg, 0)}) + {n(end_reg, 0)} = "
        f"{n(2**32 - start_reg + end_reg, 0)} kWh metered in the month.",
        "",
        "## 2. Interval energy",
        "",
        "Each delta between readings is a counter interval. The wrap appears as a negative delta; adding 2^32 gives a",
        f"delta below rated power x elapsed time, so it is a rollover ({len(rollovers)} bucket flagged `rollover`,",
        "quality stays good). The outage is spanned by the first delta after it: the counter lost nothing. The",
        f"{len(saf_rows)} buckets of 15 minutes add up to the month's metered energy:",
        "",
        "| series | month total |",
        "|---|---|",
        f"| saf1 electricity_import | {n(sum(r.value for r in saf_rows))} kWh |",
        f"| whg1 electricity_export | {n(sum(r.value for r in rows if r.asset == 'whg1'))} kWh |",
        "",
        "## 3. Taps and records",
        "",
        "A tap is a step of the tap counter; its time is the furnace's tap-time register, its tonnes the",
        "tap-weight register of the same scan. Energy at the tap time is interpolated inside the counter interval",
        "that brackets it, so a tap's energy does not depend on the scan interval. The first three records:",
        "",
        "| record | from (previous tap) | to (tap) | electricity kWh | waste heat kWh | t | kWh/t |",
        "|---|---|---|---|---|---|---|",
        *[
            f"| {r.id} | {when(r.start_ns)} | {when(r.end_ns)} | {n(r.electricity_kwh)} | {n(r.waste_heat_kwh)} "
            f"| {n(r.tonnes or 0)} | {n(r.kwh_per_t or 0)} |"
            for r in first
        ],
        "",
        f"{len(records)} taps ended in the month; {f['excluded_records']} had no known previous tap and were left out;",
        f"{f['records']} records are summed. No tap was made during the maintenance stop, so the record that spans",
        "it is longer but carries only the energy the furnace drew while it ran; the record spanning the outage is",
        "good (the counter bridged it). The record whose interval holds the wrap is flagged `rollover`, still good.",
        "",
        "## 4. Sums of energy over sums of tonnes",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| tonnes of SiMn (sum of {f['records']} taps) | {n(f['tonnes_t'], 1)} t |",
        f"| furnace electricity (sum of the records) | {n(f['electricity_kwh'])} kWh |",
        f"| waste-heat generation (same windows) | {n(f['waste_heat_kwh'])} kWh |",
        f"| kWh/t = {n(f['electricity_kwh'])} / {n(f['tonnes_t'])} | **{n(f['kwh_per_t'])} kWh/t** |",
        f"| coke = 0.55 x {n(f['tonnes_t'])} | {n(f['coke_t'], 3)} t |",
        f"| electrodes (metered, kg -> t) | {n(f['electrode_t'], 3)} t |",
        "",
        "## 5. Standard coal (GB/T 2589-2020)",
        "",
        "| carrier | quantity | coefficient | kgce |",
        "|---|---|---|---|",
        f"| electricity in | {n(f['electricity_kwh'])} kWh | {model.electricity_factor.value} kgce/kWh (当量值) "
        f"| {n(e_kgce)} |",
        f"| coke | {n(f['coke_t'], 3)} t | {coke_kgce.value} kgce/t (UNVERIFIED) | {n(f['coke_kgce'])} |",
        f"| waste-heat power sent out | {n(f['waste_heat_kwh'])} kWh | {model.electricity_factor.value} kgce/kWh "
        f"| -{n(w_kgce)} |",
        f"| **comprehensive energy consumption** | | | **{n(f['comprehensive_kgce'])}** |",
        "",
        f"kgce/t = {n(f['comprehensive_kgce'])} / {n(f['tonnes_t'])} = **{n(f['kgce_per_t'])} kgce/t**.",
        "Electrodes are a material, not an energy carrier, and are not counted here.",
        "",
        "## 6. Benchmark status",
        "",
        f"Edition {f['benchmark_edition']} ({levels.benchmark.source}): SiMn 标杆 {n(levels.benchmark.value, 0)},",
        f"基准 {n(levels.baseline.value, 0)} kgce/t. {n(f['kgce_per_t'])} is above the benchmark and not above the",
        f"baseline: **`{f['benchmark_status']}`**, {n(f['margin_to_benchmark_kgce_per_t'])} kgce/t above the benchmark "
        "and",
        f"{n(-f['margin_to_baseline_kgce_per_t'])} kgce/t below the baseline. The waste-heat generator is worth",
        f"{n(w_kgce / f['tonnes_t'])} kgce/t: without it the furnace would be "
        f"{n(f['kgce_per_t'] + w_kgce / f['tonnes_t'])} kgce/t.",
        "",
        "## 7. Carbon (tCO2)",
        "",
        "| part | calculation | tCO2 |",
        "|---|---|---|",
        f"| coke (reductant carbon, mass balance) | {n(f['coke_t'], 3)} t x {coke_co2.value:.4f} tCO2/t | "
        f"{n(f['coke_t'] * coke_co2.value, 2)} |",
        f"| electrodes | {n(f['electrode_t'], 3)} t x {electrode_co2.value} tCO2/t | "
        f"{n(f['electrode_t'] * electrode_co2.value, 2)} |",
        f"| carbon fixed in SiMn | -{n(f['tonnes_t'])} t x {simn.value} tCO2/t | -{n(f['tco2_fixed_in_product'], 2)} |",
        f"| **direct** | | **{n(f['tco2_direct'], 2)}** |",
        f"| indirect: net purchased electricity | ({n(f['electricity_kwh'])} - {n(f['waste_heat_kwh'])}) kWh / 1000 "
        f"x {grid.factor.value} tCO2/MWh | {n(f['tco2_indirect'], 2)} |",
        f"| **total** | | **{n(f['tco2_total'], 2)}** |",
        "",
        f"tCO2/t = {n(f['tco2_total'], 2)} / {n(f['tonnes_t'])} = **{f['tco2_per_t']:.3f} tCO2/t** "
        f"(direct alone {f['tco2_direct_per_t']:.3f} tCO2/t).",
        f"The grid factor is the {grid.level} `{grid.name}` value for {grid.factor.year}: Guizhou's provincial factor",
        "is published only up to 2022 and the regional one up to 2023, the latest year up to the period's.",
        "",
        "## 8. Provenance of every factor used",
        "",
        "| factor | value | unit | source | year | confidence | verified |",
        "|---|---|---|---|---|---|---|",
        *[
            f"| {name} | {p['value']:g} | {p['unit']} | {p['source']} | {p['year']} | {p['confidence']} "
            f"| {'yes' if p['verified'] else '**no**'} |"
            for name, p in sorted(kpi.provenance.items())
        ],
        "",
        "Every KPI the engine writes carries this table as its `provenance` field (docs/accounting.md §6).",
        "",
    ]
    return "\n".join(lines)


def _reg(series: Series, t_ns: int) -> float:
    found = series.latest_at(t_ns)
    assert found is not None
    return found[1]


def test_worked_example_document_matches_the_engine() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/worked-example.md is out of date: .venv/bin/python -m tests.test_energy_worked_example"
    )


def test_worked_example_figures_are_sums_and_products_by_hand() -> None:
    _model, result, _ = compute()
    kpi = next(k for k in result.kpis if k.scope == "unit" and k.subject == "saf1")
    f = kpi.fields
    month = kpi.period
    records = [
        r for r in result.records if month.start_ns < r.end_ns <= month.end_ns and NO_PREVIOUS_TAP not in r.flags
    ]
    assert len(records) == f["records"] and kpi.complete
    tonnes = sum(r.tonnes or 0 for r in records)
    kwh = sum(r.electricity_kwh for r in records)
    assert math.isclose(f["kwh_per_t"], kwh / tonnes, rel_tol=1e-12)
    # the counters gave back exactly the energy the furnace drew between the first and last tap
    stop_h = (STOP[1] - STOP[0]).total_seconds() / 3600
    span_h = (records[-1].end_ns - records[0].start_ns) / 3600e9
    assert math.isclose(kwh, POWER_KW * (span_h - stop_h), rel_tol=1e-5)
    assert f["benchmark_status"] == "between"
    assert yaml.safe_load(PLANT)["accounting"]["units"][0]["waste_heat"] == ["whg1"]


if __name__ == "__main__":
    DOC.write_text(render(), encoding="utf-8")
    print(f"wrote {DOC}")

"""Physics of the demo plant's models, run second by second on a ManualClock for 12 simulated hours
(no servers): realistic figures, counters that only grow, energy equal to integrated power, books
that balance, a ledger that equals the counter deltas, and determinism under a seed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise

import pytest

from ferrogate.gateway.config_loader import load_plant
from ferrogate.simulators.cells import MN_GRAMS_PER_AH
from ferrogate.simulators.clock import ManualClock
from ferrogate.simulators.config import SAF_PRODUCT_DEFAULTS, SafProduct
from ferrogate.simulators.plant import SimulatedPlant
from tests.conftest import DEMO_PLANT
from tests.simulator_plants import T0

HOURS = 12
POWER_SAMPLE_S = 10  # how often the "gateway" samples power for the integration check
# ledger kind -> (counter signal behind energy_kwh or exported_kwh, counter behind tonnes)
LEDGER_COUNTERS = {
    "eaf_heat": ("energy_import_kwh", None),
    "saf_tap": ("energy_import_kwh", None),
    "generation": ("exported_kwh", None),
    "cells_product": ("energy_import_kwh", "product_t"),
}


def seconds(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


@dataclass
class Run:
    plant: SimulatedPlant
    counters_at: dict[tuple[str, str, int], float] = field(default_factory=dict)  # (asset, counter, t)
    integrated_kwh: dict[str, float] = field(default_factory=dict)  # trapezoid of sampled power
    first: dict[str, dict[str, float]] = field(default_factory=dict)
    whg1_zero_while_eaf1_off: int = 0

    def value(self, equipment: str, signal: str) -> float:
        return self.plant.engine.signal(equipment, signal)


@pytest.fixture(scope="module")
def run() -> Run:
    clock = ManualClock(T0)
    plant = load_plant(DEMO_PLANT)
    sim = SimulatedPlant(plant, plant.simulation, clock=clock)
    result = Run(sim)
    models = sim.models
    counters = {(eq, c) for eq, m in models.items() for c in m.COUNTERS}
    result.first = {eq: {c: result.value(eq, c) for c in m.COUNTERS} for eq, m in models.items()}
    for eq in models:
        for c in models[eq].COUNTERS:
            result.counters_at[(eq, c, T0)] = result.value(eq, c)
    last = {key: result.value(*key) for key in counters}
    power = {eq: m.power_kw for eq, m in models.items()}
    for t in range(T0 + 1, T0 + HOURS * 3600 + 1):
        clock.set(t)
        before = len(sim.truth)
        sim.advance()
        for key in counters:  # counters never go backwards
            now = result.value(*key)
            assert now >= last[key], f"{key} went backwards at {t}"
            last[key] = now
        for line in sim.truth[before:]:  # counters at each ledger instant
            for counter in filter(None, LEDGER_COUNTERS[line["kind"]]):
                result.counters_at[(line["asset"], counter, t)] = result.value(line["asset"], counter)
        if (t - T0) % POWER_SAMPLE_S == 0:
            for eq, m in models.items():
                result.integrated_kwh[eq] = result.integrated_kwh.get(eq, 0.0) + (
                    (power[eq] + m.power_kw) / 2 * POWER_SAMPLE_S / 3600
                )
                power[eq] = m.power_kw
        if models["eaf1"].power_kw == 0 and models["whg1"].power_kw == 0:
            result.whg1_zero_while_eaf1_off += 1
    return result


def lines(run: Run, kind: str, asset: str) -> list[dict]:
    return [line for line in run.plant.truth if line["kind"] == kind and line["asset"] == asset]


@pytest.mark.parametrize("asset, nominal_t", [("eaf1", 100), ("eaf2", 70)])
def test_eaf_heats_are_realistic(run: Run, asset: str, nominal_t: float) -> None:
    heats = lines(run, "eaf_heat", asset)
    assert len(heats) >= 10
    for previous, heat in pairwise(heats):
        assert heat["start"] == previous["end"], "a heat runs from the previous tap to its own"
        assert int(heat["id"][-5:]) == int(previous["id"][-5:]) + 1
    for heat in heats:
        assert 350 <= heat["energy_kwh"] / heat["tonnes"] <= 450, heat
        assert 0.95 * nominal_t <= heat["tonnes"] <= 1.05 * nominal_t
        assert heat["product"] == "crude_steel_eaf" and heat["exported_kwh"] is None
    tap_to_tap = [(seconds(h["end"]) - seconds(h["start"])) / 60 for h in heats[1:]]
    assert min(tap_to_tap) >= 45 and max(tap_to_tap) <= 70
    assert len({round(h["energy_kwh"] / h["tonnes"]) for h in heats}) > len(heats) // 2, "kWh/t varies"


@pytest.mark.parametrize("asset", ["saf1", "saf2", "saf3"])
def test_saf_taps_are_realistic(run: Run, asset: str) -> None:
    taps = lines(run, "saf_tap", asset)
    cfg = next(e for e in run.plant.config.equipment if e.id == asset)
    assert len(taps) >= 3
    for tap in taps:
        assert 2 * 3600 <= seconds(tap["end"]) - seconds(tap["start"]) <= 3 * 3600
        assert abs(tap["energy_kwh"] / tap["tonnes"] / cfg.specific_energy - 1) < 0.08
        assert tap["product"] == cfg.product.value
    if cfg.product is SafProduct.SiMn:  # reference: a 25 MVA SiMn furnace makes about 120-130 t/d
        hours = sum(seconds(t["end"]) - seconds(t["start"]) for t in taps) / 3600
        per_day = sum(t["tonnes"] for t in taps) / hours * 24 * 25000 / cfg.rated_kva
        assert 110 <= per_day <= 135
    assert SAF_PRODUCT_DEFAULTS[SafProduct.SiMn][0] == 3900.0


def test_ledger_equals_the_counter_deltas(run: Run) -> None:
    """Each line's energy (and exported energy, and tonnes for cells) is the counter at its end minus
    the counter at its start, exactly; the totals are therefore the counter deltas too."""
    checked = 0
    for line in run.plant.truth:
        energy_counter, tonnes_counter = LEDGER_COUNTERS[line["kind"]]
        start, end, asset = seconds(line["start"]), seconds(line["end"]), line["asset"]
        delta = run.counters_at[(asset, energy_counter, end)] - run.counters_at[(asset, energy_counter, start)]
        assert delta == (line["exported_kwh"] if line["kind"] == "generation" else line["energy_kwh"]), line
        if tonnes_counter is not None:
            produced = run.counters_at[(asset, tonnes_counter, end)] - run.counters_at[(asset, tonnes_counter, start)]
            assert produced == line["tonnes"]
        checked += 1
    assert {line["kind"] for line in run.plant.truth} == set(LEDGER_COUNTERS)
    assert checked == len(run.plant.truth) > 50


def test_energy_counters_agree_with_integrated_power(run: Run) -> None:
    """Power sampled every 10 s and integrated (trapezoid) matches each energy counter within 0.5 %."""
    for eq, model in run.plant.models.items():
        if eq == "incomer":
            counter = "energy_import_kwh"
        elif not model.COUNTERS:
            continue  # a stack: flue gas, no energy counter
        else:
            counter = next(c for c, rate in model.COUNTERS.items() if rate == "power_kw")
        delta = run.value(eq, counter) - run.first[eq][counter]
        assert delta > 0
        assert run.integrated_kwh[eq] == pytest.approx(delta, rel=0.005), eq


def test_books_balance_at_the_incomer(run: Run) -> None:
    def delta(eq: str, counter: str) -> float:
        return run.value(eq, counter) - run.first[eq][counter]

    incomer = delta("incomer", "energy_import_kwh") - delta("incomer", "energy_export_kwh")
    feeders = sum(
        delta(f, "energy_import_kwh") for f in ("tr_eaf1", "tr_eaf2", "tr_saf1", "tr_saf2", "tr_saf3", "emm1")
    )
    generated = delta("whg1", "exported_kwh") + delta("whg2", "exported_kwh")
    assert incomer == pytest.approx(feeders + delta("incomer", "auxiliary_kwh") - generated, rel=1e-9)


@pytest.mark.parametrize("transformer, furnace", [("tr_eaf1", "eaf1"), ("tr_saf1", "saf1")])
def test_transformer_losses_and_oil_temperature(run: Run, transformer: str, furnace: str) -> None:
    hv = run.value(transformer, "energy_import_kwh") - run.first[transformer]["energy_import_kwh"]
    lv = run.value(furnace, "energy_import_kwh") - run.first[furnace]["energy_import_kwh"]
    losses = run.value(transformer, "loss_energy_kwh")
    assert hv - lv == pytest.approx(losses, rel=1e-6)
    assert 0.001 < losses / hv < 0.02, "furnace transformers lose well under 2 %"
    cfg = next(e for e in run.plant.config.equipment if e.id == transformer)
    assert cfg.ambient_c < run.value(transformer, "oil_temp_c") < cfg.ambient_c + cfg.top_oil_rise_k * 1.2


def test_waste_heat_follows_its_furnace(run: Run) -> None:
    assert run.whg1_zero_while_eaf1_off > 0, "whg1 never reached zero while its EAF was off"
    for whg, furnace, efficiency in [("whg1", "eaf1", 0.12), ("whg2", "saf1", 0.18)]:
        exported = run.value(whg, "exported_kwh") - run.first[whg]["exported_kwh"]
        used = run.value(furnace, "energy_import_kwh") - run.first[furnace]["energy_import_kwh"]
        assert 0.8 * efficiency < exported / used <= efficiency
    assert len(lines(run, "generation", "whg1")) == HOURS, "one line per whole simulated hour"


def test_cells_follow_faradays_law(run: Run) -> None:
    cfg = next(e for e in run.plant.config.equipment if e.id == "emm1")
    dc_kwh_per_t = cfg.cell_voltage_v / (cfg.current_efficiency * MN_GRAMS_PER_AH * 1e-3)
    for hour in lines(run, "cells_product", "emm1"):
        dc_per_t = hour["energy_kwh"] * cfg.rectifier_efficiency / hour["tonnes"]
        assert dc_per_t == pytest.approx(dc_kwh_per_t, rel=0.01)
    assert 6000 < dc_kwh_per_t < 6500, "reference: above 6,000 kWh/t DC at under 75 % current efficiency"


def test_same_seed_same_plant_whenever_it_is_read(run: Run) -> None:
    """A plant advanced in one jump tells the same truth as one read every second; another seed differs."""
    plant = load_plant(DEMO_PLANT)
    sim = plant.simulation
    assert sim is not None
    stepped = [line for line in run.plant.truth if seconds(line["end"]) <= T0 + 6 * 3600]
    for seed, same in [(sim.seed, True), (sim.seed + 1, False)]:
        clock = ManualClock(T0)
        jump = SimulatedPlant(plant, sim.model_copy(update={"seed": seed}), clock=clock)
        clock.set(T0 + 6 * 3600)
        jump.advance()
        assert (jump.truth == stepped) is same
    assert len(stepped) > 10

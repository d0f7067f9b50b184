"""Furnace models: the electric arc furnace heat cycle and the submerged-arc furnace with periodic taps."""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING, ClassVar

from ferrogate.simulators.model_base import Equipment, TruthRecord

if TYPE_CHECKING:
    from ferrogate.simulators.config import EafEquipment, SafEquipment

# Heat states served by the furnace (register / OPC UA value = index). A heat runs from the
# previous tap to its own: turnaround, charge, bore-down, melt, refine, tap.
EAF_STATES = ("turnaround", "charge", "bore_down", "melt", "refine", "tap")
EAF_STATE_CODE = {name: code for code, name in enumerate(EAF_STATES)}
# Furnace transformer tap per phase: bore-down on a lower voltage to protect the roof, melting on
# the highest, refining in between (illustrative positions of a 13-step on-load tap changer).
EAF_TRANSFORMER_TAPS = {"bore_down": 7, "melt": 13, "refine": 9}
TAP_WEIGHT_LIMIT = 0.05  # tap weights are drawn within nominal +- 5 %


def _tan_phi(power_factor: float) -> float:
    return math.tan(math.acos(power_factor))


def _seconds(low_min: float, high_min: float, rng: random.Random) -> int:
    return round(rng.uniform(low_min, high_min) * 60)


class EafModel(Equipment):
    """Electric arc furnace. Each heat draws its tap weight and kWh/t, which fix how long the power-on
    phases last; the power inside a phase fluctuates second to second around the phase's load."""

    kind = "eaf"
    COUNTERS: ClassVar[dict[str, str]] = {"energy_import_kwh": "power_kw"}
    SIGNALS = frozenset(
        {
            "energy_import_kwh",
            "power_kw",
            "reactive_kvar",
            "power_factor",
            "transformer_tap",
            "heat_number",
            "heat_state",
            "tap_weight_t",
            "taps",
            "last_tap_time",
            "last_tap_time_ms",
            "power_on",
        }
    )

    def __init__(self, cfg: EafEquipment, rng: random.Random, t0: int) -> None:
        super().__init__(cfg.id, t0)
        self.cfg = cfg
        self.rng = rng
        self._tan_phi = _tan_phi(cfg.power_factor)
        self.energy_import_kwh = cfg.energy_start_kwh
        self.power_kw = 0.0
        self.reactive_kvar = 0.0
        self.power_factor = 1.0
        self.power_on = False
        self.transformer_tap = 1
        self.heat_number = cfg.first_heat
        self.taps = 0
        self.tap_weight_t = 0.0
        # the simulation starts right after a tap: the first heat begins at t0
        self.last_tap_time = t0
        self._heat_start_energy = self.energy_import_kwh
        self._schedule: list[tuple[str, int]] = []  # (phase, end time) of the current heat
        self._weight = 0.0
        self._plan_heat(t0, with_turnaround=False)
        self.heat_state = EAF_STATE_CODE[self._schedule[0][0]]

    @property
    def last_tap_time_ms(self) -> int:
        return self.last_tap_time * 1000

    @property
    def phase(self) -> str:
        return self._schedule[0][0]

    def _plan_heat(self, t: int, with_turnaround: bool) -> None:
        cfg, rng = self.cfg, self.rng
        spread = max(-TAP_WEIGHT_LIMIT, min(TAP_WEIGHT_LIMIT, rng.gauss(0.0, cfg.tap_weight_spread)))
        self._weight = round(cfg.nominal_t * (1.0 + spread), 1)
        energy = self._weight * rng.uniform(*cfg.kwh_per_t)
        melt_share = 1.0 - cfg.bore_down_share - cfg.refine_share
        durations = []
        if with_turnaround:
            idle = _seconds(*cfg.turnaround_min, rng)
            if rng.random() < cfg.delay_probability:
                idle += _seconds(*cfg.delay_min, rng)
            durations.append(("turnaround", idle))
        durations += [
            ("charge", _seconds(*cfg.charge_min, rng)),
            ("bore_down", self._power_on_s(energy * cfg.bore_down_share, cfg.bore_down_load)),
            ("melt", self._power_on_s(energy * melt_share, cfg.melt_load)),
            ("refine", self._power_on_s(energy * cfg.refine_share, cfg.refine_load)),
            ("tap", _seconds(*cfg.tap_min, rng)),
        ]
        end = t
        self._schedule = []
        for phase, seconds in durations:
            end += max(1, seconds)
            self._schedule.append((phase, end))

    def _power_on_s(self, energy_kwh: float, load: float) -> int:
        return round(energy_kwh / (self.cfg.rated_kw * load) * 3600)

    def begin(self, t: int) -> None:
        while t >= self._schedule[0][1]:
            finished = self._schedule.pop(0)[0]
            if finished == "tap":
                self._tap(t)
        phase = self._schedule[0][0]
        self.heat_state = EAF_STATE_CODE[phase]
        load = {"bore_down": self.cfg.bore_down_load, "melt": self.cfg.melt_load, "refine": self.cfg.refine_load}.get(
            phase
        )
        if load is None:
            self.power_kw = self.reactive_kvar = 0.0
            self.power_factor = 1.0
            self.power_on = False
            return
        noise = max(0.75, min(1.1, 1.0 + self.rng.gauss(0.0, self.cfg.arc_noise)))
        self.power_kw = min(self.cfg.rated_kw * 1.05, self.cfg.rated_kw * load * noise)
        self.reactive_kvar = self.power_kw * self._tan_phi
        self.power_factor = self.cfg.power_factor
        self.power_on = True
        self.transformer_tap = EAF_TRANSFORMER_TAPS[phase]

    def _tap(self, t: int) -> None:
        """The heat is tapped and weighed at t: ledger line, counter, weight and time change together."""
        energy = self.energy_import_kwh - self._heat_start_energy
        self.records.append(
            TruthRecord(
                "eaf_heat",
                self.id,
                f"{self.id}-H{self.heat_number:05d}",
                self.last_tap_time,
                t,
                energy,
                self._weight,
                None,
                "crude_steel_eaf",
            )
        )
        self.taps += 1
        self.tap_weight_t = self._weight
        self.last_tap_time = t
        self.heat_number += 1
        self._heat_start_energy = self.energy_import_kwh
        self._plan_heat(t, with_turnaround=True)


class SafModel(Equipment):
    """Submerged-arc furnace: load near its rating with slow fluctuation (an AR(1) process), metal
    accumulating with the energy, and a weighed tap every 2-3 h."""

    kind = "submerged_arc_furnace"
    COUNTERS: ClassVar[dict[str, str]] = {"energy_import_kwh": "power_kw", "electrode_kg": "electrode_rate_kg_h"}
    SIGNALS = frozenset(
        {
            "energy_import_kwh",
            "power_kw",
            "reactive_kvar",
            "power_factor",
            "transformer_tap",
            "taps",
            "tap_weight_t",
            "last_tap_time",
            "last_tap_time_ms",
            "electrode_kg",
            "tapping",
            "power_on",
        }
    )
    AR_COEFFICIENT = 0.995  # per second: load wanders over minutes, not seconds

    def __init__(self, cfg: SafEquipment, rng: random.Random, t0: int) -> None:
        super().__init__(cfg.id, t0)
        self.cfg = cfg
        self.rng = rng
        self.product = cfg.product.value
        self._base_kw = cfg.rated_kva * cfg.power_factor * cfg.load_factor
        self._tan_phi = _tan_phi(cfg.power_factor)
        self._noise_step = cfg.load_noise * math.sqrt(1.0 - self.AR_COEFFICIENT**2)
        self._deviation = 0.0
        self.energy_import_kwh = cfg.energy_start_kwh
        self.electrode_kg = 0.0
        self.electrode_rate_kg_h = 0.0
        self.power_kw = self.reactive_kvar = 0.0
        self.power_factor = cfg.power_factor
        self.power_on = True
        self.tapping = False
        self.transformer_tap = 10
        self._next_oltc = t0 + rng.randint(1200, 3600)
        self.taps = 0
        self.tap_number = cfg.first_tap
        self.tap_weight_t = 0.0
        self.last_tap_time = t0  # the simulation starts right after a tap
        self._tap_start_energy = self.energy_import_kwh
        self._plan_tap(t0)

    @property
    def last_tap_time_ms(self) -> int:
        return self.last_tap_time * 1000

    def _plan_tap(self, t: int) -> None:
        low, high = self.cfg.tap_interval_h
        self._next_tap = t + round(self.rng.uniform(low, high) * 3600)
        self._kwh_per_t = self.cfg.specific_energy * (1.0 + self.rng.gauss(0.0, self.cfg.kwh_per_t_spread))

    def begin(self, t: int) -> None:
        if t >= self._next_tap:
            self._tap(t)
        self.tapping = t >= self._next_tap - self.cfg.tapping_min * 60
        if t >= self._next_oltc:
            self.transformer_tap = max(6, min(14, self.transformer_tap + self.rng.choice((-1, 1))))
            self._next_oltc = t + self.rng.randint(1200, 3600)
        self._deviation = self.AR_COEFFICIENT * self._deviation + self.rng.gauss(0.0, self._noise_step)
        self.power_kw = self._base_kw * (1.0 + self._deviation)
        self.reactive_kvar = self.power_kw * self._tan_phi
        self.electrode_rate_kg_h = self.power_kw * self.cfg.electrode_use / self.cfg.specific_energy

    def _tap(self, t: int) -> None:
        energy = self.energy_import_kwh - self._tap_start_energy
        tonnes = round(energy / self._kwh_per_t, 1)
        self.records.append(
            TruthRecord(
                "saf_tap",
                self.id,
                f"{self.id}-T{self.tap_number:05d}",
                self.last_tap_time,
                t,
                energy,
                tonnes,
                None,
                self.product,
            )
        )
        self.taps += 1
        self.tap_number += 1
        self.tap_weight_t = tonnes
        self.last_tap_time = t
        self._tap_start_energy = self.energy_import_kwh
        self._plan_tap(t)

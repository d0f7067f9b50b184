"""Physical models of plant equipment, advanced on simulated time (no I/O here).

Energy counters are exact integrals of the modelled power: power is piecewise constant between
the instants the model is advanced to, so counter deltas and the integrated power agree.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# (phase, minutes, fraction of rated active power) of one EAF heat
EAF_PHASES: tuple[tuple[str, float, float], ...] = (
    ("charge", 3.0, 0.0),
    ("bore_down", 5.0, 0.70),
    ("melt", 25.0, 0.95),
    ("refine", 10.0, 0.40),
    ("tap", 3.0, 0.0),
    ("turnaround", 6.0, 0.0),
)


@dataclass
class EafModel:
    """Electric arc furnace heat cycle: charge, bore-down, melt, refine, tap, turnaround."""

    id: str
    rated_kw: float
    nominal_t: float
    rng: random.Random
    t: float  # simulated Unix seconds of the model state
    energy_import_kwh: float = 0.0
    power_kw: float = 0.0
    heat_number: int = 1
    phase_index: int = 0
    phase_left_s: float = EAF_PHASES[0][1] * 60
    tap_weight_t: float = 0.0
    taps: int = 0
    last_tap_time: float = 0.0
    _load: float = 1.0  # this heat's load factor (heat-to-heat variation)

    def advance(self, t: float) -> None:
        while t > self.t:
            step = min(t - self.t, self.phase_left_s)
            self.energy_import_kwh += self.power_kw * step / 3600.0
            self.t += step
            self.phase_left_s -= step
            if self.phase_left_s <= 1e-9:
                self._next_phase()

    def _next_phase(self) -> None:
        name = EAF_PHASES[self.phase_index][0]
        if name == "tap":
            self.taps += 1
            self.tap_weight_t = round(self.nominal_t * self.rng.uniform(0.95, 1.05), 1)
            self.last_tap_time = self.t
        self.phase_index = (self.phase_index + 1) % len(EAF_PHASES)
        if self.phase_index == 0:
            self.heat_number += 1
            self._load = self.rng.uniform(0.92, 1.08)
        _, minutes, fraction = EAF_PHASES[self.phase_index]
        self.phase_left_s = minutes * 60 * self.rng.uniform(0.9, 1.1)
        self.power_kw = self.rated_kw * fraction * self._load

    @property
    def phase(self) -> str:
        return EAF_PHASES[self.phase_index][0]


@dataclass
class WasteHeatGeneratorModel:
    """Waste-heat power: a share of its furnace's power, with a first-order lag on the off-gas heat."""

    id: str
    furnace: EafModel
    efficiency: float  # electrical output / furnace electrical input at steady state
    lag_s: float
    t: float
    power_kw: float = 0.0
    exported_kwh: float = 0.0

    def advance(self, t: float) -> None:
        if t <= self.t:
            return
        self.furnace.advance(t)
        dt = t - self.t
        self.exported_kwh += self.power_kw * dt / 3600.0
        target = self.furnace.power_kw * self.efficiency
        alpha = min(1.0, dt / self.lag_s) if self.lag_s > 0 else 1.0
        self.power_kw += (target - self.power_kw) * alpha
        self.t = t

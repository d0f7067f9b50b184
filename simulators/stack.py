"""A furnace's stack: standard dry flue-gas flow and the concentrations a CEMS measures there.

Load is the furnace's active power over its full-load power (an EAF's melting power, a SAF's
steady load). Each one-second step the fans approach the flow for that load through a first-order
lag, CO2, O2 and the temperature follow the load, and SO2, NOx and particulate wander around their
load-dependent levels (each with its own AR(1) noise). Listeners (the CEMS logger) are called once
per step with the values that hold for [t, t + 1 s), so statistics over the steps are exact.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from ferrogate.simulators.model_base import STEP_S, Equipment

if TYPE_CHECKING:
    from ferrogate.simulators.config import StackEquipment

StackListener = Callable[[int, "StackModel"], None]
NOISY = ("so2_mg_m3", "nox_mg_m3", "particulate_mg_m3", "co2_mg_m3")


def full_load_kw(furnace: Equipment) -> float:
    """The furnace's active power at full load, kW."""
    cfg = furnace.cfg  # type: ignore[attr-defined]
    if furnace.kind == "eaf":
        return cfg.rated_kw * cfg.melt_load
    return cfg.rated_kva * cfg.power_factor * cfg.load_factor


class StackModel(Equipment):
    kind = "stack"
    SIGNALS = frozenset({"flow_m3_s", "o2_pct", "temperature_c", "load", *NOISY})

    def __init__(self, cfg: StackEquipment, furnace: Equipment, rng: random.Random, t0: int) -> None:
        super().__init__(cfg.id, t0)
        self.cfg = cfg
        self.furnace = furnace
        self.depends_on = (furnace,)
        self.rng = rng
        self.listeners: list[StackListener] = []
        self._full_kw = full_load_kw(furnace)
        self._alpha = 1.0 if cfg.flow_lag_s <= 0 else 1.0 - math.exp(-STEP_S / cfg.flow_lag_s)
        self._ar = math.exp(-STEP_S / cfg.noise_correlation_s)
        self._step_sd = cfg.noise * math.sqrt(1.0 - self._ar**2)
        self._deviation = dict.fromkeys(NOISY, 0.0)
        self.load = 0.0
        self.power_kw = 0.0  # its fans are not modelled as an electrical load
        self.flow_m3_s = cfg.flow_m3_s.idle
        self.o2_pct = cfg.o2_pct.idle
        self.temperature_c = cfg.temperature_c.idle
        self.so2_mg_m3 = self.nox_mg_m3 = self.particulate_mg_m3 = self.co2_mg_m3 = 0.0

    def begin(self, t: int) -> None:
        cfg = self.cfg
        load = self.load = max(0.0, min(1.1, self.furnace.power_kw / self._full_kw))  # type: ignore[attr-defined]
        self.flow_m3_s += (cfg.flow_m3_s.at(load) - self.flow_m3_s) * self._alpha
        self.o2_pct = cfg.o2_pct.at(load)
        self.temperature_c = cfg.temperature_c.at(load)
        for name in NOISY:
            deviation = self._ar * self._deviation[name] + self.rng.gauss(0.0, self._step_sd)
            self._deviation[name] = deviation
            level: float = getattr(cfg, name).at(load)
            setattr(self, name, max(0.0, level * (1.0 + deviation)))
        for listener in self.listeners:
            listener(t, self)

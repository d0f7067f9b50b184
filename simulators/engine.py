"""Steps a plant's models together on the one-second simulated grid."""

from __future__ import annotations

import math

from ferrogate.simulators.model_base import CLOCK_SIGNAL, STEP_S, Equipment, TruthRecord


class Engine:
    """Advances every model to a simulated time. Whole steps run in dependency order (a transformer
    sees its furnace's power of the same step); inside a step, counters are interpolated."""

    def __init__(self, models: dict[str, Equipment], t0: int) -> None:
        self.models = models
        self._order = list(models.values())  # build_models already put followers after leaders
        self.tick = t0
        self.elapsed = 0.0  # simulated seconds into the current step
        for model in self._order:
            model.begin(t0)

    @property
    def now(self) -> float:
        return self.tick + self.elapsed

    def advance(self, t: float) -> None:
        """Run up to simulated time t (never backwards)."""
        if t <= self.tick + self.elapsed:
            return
        order = self._order
        while t >= self.tick + STEP_S:
            for model in order:
                model.integrate(STEP_S)
            self.tick += STEP_S
            for model in order:
                model.begin(self.tick)
        self.elapsed = t - self.tick

    def run_to(self, t: int) -> None:
        """Advance to a whole second (tests and scripted runs)."""
        self.advance(float(t))

    def signal(self, equipment_id: str, name: str) -> float:
        if name == CLOCK_SIGNAL:
            return self.tick * 1000 + math.floor(self.elapsed * 1000)
        return self.models[equipment_id].signal(name, self.elapsed)

    def drain_records(self) -> list[TruthRecord]:
        out: list[TruthRecord] = []
        for model in self._order:
            if model.records:
                out += model.records
                model.records.clear()
        out.sort(key=lambda r: (r.end, r.asset))
        return out

"""Electrical equipment that follows the furnaces: furnace transformers, waste-heat generators and
the plant's main incomer."""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING, ClassVar

from ferrogate.simulators.model_base import STEP_S, Equipment, HourlyLedger, TruthRecord, hour_id

if TYPE_CHECKING:
    from ferrogate.simulators.config import IncomerEquipment, TransformerEquipment, WasteHeatGeneratorEquipment


def _lag_factor(time_constant_s: float) -> float:
    """Share of the gap a first-order lag closes in one step (exact for a constant input)."""
    return 1.0 if time_constant_s <= 0 else 1.0 - math.exp(-STEP_S / time_constant_s)


class TransformerModel(Equipment):
    """Furnace transformer. Losses: iron (no-load) all the time it is energised, copper with the square
    of the load. Top-oil temperature: IEC 60076-7 exponential model, steady-state rise
    dT_or * ((K^2 R + 1) / (R + 1))^x approached with the oil time constant."""

    kind = "transformer"
    COUNTERS: ClassVar[dict[str, str]] = {"energy_import_kwh": "power_kw", "loss_energy_kwh": "losses_kw"}
    SIGNALS = frozenset(
        {
            "energy_import_kwh",
            "loss_energy_kwh",
            "power_kw",
            "reactive_kvar",
            "losses_kw",
            "load_pct",
            "oil_temp_c",
            "transformer_tap",
        }
    )

    def __init__(self, cfg: TransformerEquipment, furnace: Equipment, t0: int) -> None:
        super().__init__(cfg.id, t0)
        self.cfg = cfg
        self.furnace = furnace
        self.depends_on = (furnace,)
        self._no_load_kw = cfg.rated_kva * cfg.no_load_loss_pct / 100.0
        self._load_loss_kw = cfg.rated_kva * cfg.load_loss_pct / 100.0
        self._ratio = self._load_loss_kw / self._no_load_kw if self._no_load_kw > 0 else 0.0
        self._alpha = _lag_factor(cfg.oil_time_constant_min * 60.0)
        self.energy_import_kwh = cfg.energy_start_kwh
        self.loss_energy_kwh = 0.0
        self.power_kw = self.reactive_kvar = self.losses_kw = self.load_pct = 0.0
        self.transformer_tap = 1
        self.oil_temp_c = self._steady_oil(0.6)  # as if it had run at 60 % load for hours

    def _steady_oil(self, k: float) -> float:
        cfg = self.cfg
        rise = ((k * k * self._ratio + 1.0) / (self._ratio + 1.0)) ** cfg.oil_exponent
        return cfg.ambient_c + cfg.top_oil_rise_k * rise

    def begin(self, t: int) -> None:
        furnace = self.furnace
        k = math.hypot(furnace.power_kw, furnace.reactive_kvar) / self.cfg.rated_kva
        self.losses_kw = self._no_load_kw + self._load_loss_kw * k * k
        self.power_kw = furnace.power_kw + self.losses_kw
        self.reactive_kvar = furnace.reactive_kvar
        self.load_pct = 100.0 * k
        self.transformer_tap = furnace.transformer_tap
        self.oil_temp_c += (self._steady_oil(k) - self.oil_temp_c) * self._alpha


class WasteHeatGeneratorModel(Equipment):
    """Waste-heat power: a share of its furnace's electrical input, through a first-order lag (boiler
    and steam); the turbine trips below its minimum load, so the output reaches zero when the furnace
    stops. Ground truth: exported kWh per whole simulated hour."""

    kind = "waste_heat_generator"
    COUNTERS: ClassVar[dict[str, str]] = {"exported_kwh": "power_kw"}
    SIGNALS = frozenset({"power_kw", "exported_kwh", "running"})

    def __init__(self, cfg: WasteHeatGeneratorEquipment, furnace: Equipment, t0: int) -> None:
        super().__init__(cfg.id, t0)
        self.cfg = cfg
        self.furnace = furnace
        self.depends_on = (furnace,)
        self._alpha = _lag_factor(cfg.lag_s)
        self._trip_kw = cfg.min_load * cfg.rated_kw
        self.power_kw = 0.0
        self.exported_kwh = cfg.energy_start_kwh
        self.running = False
        self._hours = HourlyLedger()

    def begin(self, t: int) -> None:
        if self._hours.due(t):
            assert self._hours.hour_start is not None
            self.records.append(
                TruthRecord(
                    "generation",
                    self.id,
                    hour_id(self.id, self._hours.hour_start),
                    self._hours.hour_start,
                    t,
                    0.0,  # a generator imports nothing in this model
                    None,
                    self.exported_kwh - self._hours.at_start[0],
                    None,
                )
            )
        self._hours.restart(t, (self.exported_kwh,))
        target = min(self.cfg.rated_kw, self.furnace.power_kw * self.cfg.efficiency)
        power = self.power_kw + (target - self.power_kw) * self._alpha
        if power < self._trip_kw and target < self._trip_kw:
            power = 0.0
        self.power_kw = power
        self.running = power > 0.0


class IncomerModel(Equipment):
    """Main incomer: net import = feeders + the rest of the plant - embedded generation, so its
    counters equal the sum of the others' (the books balance). Reverse flow counts as export."""

    kind = "main_incomer"
    COUNTERS: ClassVar[dict[str, str]] = {
        "energy_import_kwh": "import_kw",
        "energy_export_kwh": "export_kw",
        "auxiliary_kwh": "auxiliary_kw",
    }
    SIGNALS = frozenset(
        {
            "energy_import_kwh",
            "energy_export_kwh",
            "auxiliary_kwh",
            "auxiliary_kw",
            "power_kw",
            "reactive_kvar",
            "power_factor",
        }
    )
    AR_COEFFICIENT = 0.999

    def __init__(
        self,
        cfg: IncomerEquipment,
        feeders: list[Equipment],
        generators: list[Equipment],
        rng: random.Random,
        t0: int,
    ) -> None:
        super().__init__(cfg.id, t0)
        self.cfg = cfg
        self.rng = rng
        self.feeders = feeders
        self.generators = generators
        self.depends_on = (*feeders, *generators)
        self._aux_tan_phi = math.tan(math.acos(cfg.auxiliary_power_factor))
        self._noise_step = cfg.auxiliary_noise * math.sqrt(1.0 - self.AR_COEFFICIENT**2)
        self._deviation = 0.0
        self.energy_import_kwh = cfg.energy_start_kwh
        self.energy_export_kwh = 0.0
        self.auxiliary_kwh = 0.0
        self.auxiliary_kw = self.import_kw = self.export_kw = 0.0
        self.power_kw = self.reactive_kvar = 0.0
        self.power_factor = 1.0

    def begin(self, t: int) -> None:
        self._deviation = self.AR_COEFFICIENT * self._deviation + self.rng.gauss(0.0, self._noise_step)
        self.auxiliary_kw = self.cfg.auxiliary_kw * max(0.0, 1.0 + self._deviation)
        net = self.auxiliary_kw + sum(f.power_kw for f in self.feeders) - sum(g.power_kw for g in self.generators)
        self.power_kw = net
        self.import_kw, self.export_kw = max(net, 0.0), max(-net, 0.0)
        self.reactive_kvar = self.auxiliary_kw * self._aux_tan_phi + sum(f.reactive_kvar for f in self.feeders)
        apparent = math.hypot(net, self.reactive_kvar)
        self.power_factor = abs(net) / apparent if apparent > 0 else 1.0

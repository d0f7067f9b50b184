"""Electrolytic manganese cell line: DC power, current efficiency and metal by Faraday's law."""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING, ClassVar

from ferrogate.simulators.model_base import Equipment, HourlyLedger, TruthRecord, hour_id

if TYPE_CHECKING:
    from ferrogate.simulators.config import CellsEquipment

# Mn2+ + 2e- -> Mn: grams deposited per ampere-hour at 100 % current efficiency
# (molar mass 54.938044 g/mol, IUPAC; Faraday constant 96485.33212 C/mol, CODATA 2018)
MN_GRAMS_PER_AH = 3600.0 * 54.938044 / (2 * 96485.33212)


class CellsModel(Equipment):
    """A series line of cells: every cell carries the line current. Ground truth: AC energy imported
    and tonnes of metal deposited per whole simulated hour."""

    kind = "electrolytic_cells"
    COUNTERS: ClassVar[dict[str, str]] = {
        "energy_import_kwh": "power_kw",
        "dc_energy_kwh": "dc_power_kw",
        "product_t": "production_t_h",
    }
    SIGNALS = frozenset(
        {
            "energy_import_kwh",
            "dc_energy_kwh",
            "product_t",
            "power_kw",
            "reactive_kvar",
            "dc_power_kw",
            "current_a",
            "line_voltage_v",
            "current_efficiency_pct",
            "power_on",
        }
    )

    def __init__(self, cfg: CellsEquipment, rng: random.Random, t0: int) -> None:
        super().__init__(cfg.id, t0)
        self.cfg = cfg
        self.rng = rng
        self._tan_phi = math.tan(math.acos(cfg.rectifier_power_factor))
        self.energy_import_kwh = cfg.energy_start_kwh
        self.dc_energy_kwh = 0.0
        self.product_t = 0.0
        self.power_kw = self.reactive_kvar = self.dc_power_kw = self.production_t_h = 0.0
        self.current_a = self.line_voltage_v = 0.0
        self.current_efficiency_pct = 100.0 * cfg.current_efficiency
        self.power_on = True
        self._hours = HourlyLedger()

    def begin(self, t: int) -> None:
        if self._hours.due(t):
            start = self._hours.hour_start
            assert start is not None
            energy0, product0 = self._hours.at_start
            self.records.append(
                TruthRecord(
                    "cells_product",
                    self.id,
                    hour_id(self.id, start),
                    start,
                    t,
                    self.energy_import_kwh - energy0,
                    self.product_t - product0,
                    None,
                    "EMM",
                )
            )
        self._hours.restart(t, (self.energy_import_kwh, self.product_t))
        cfg = self.cfg
        self.current_a = cfg.current_a * (1.0 + self.rng.gauss(0.0, cfg.current_noise))
        self.line_voltage_v = cfg.cells * cfg.cell_voltage_v
        self.dc_power_kw = self.current_a * self.line_voltage_v / 1000.0
        self.power_kw = self.dc_power_kw / cfg.rectifier_efficiency
        self.reactive_kvar = self.power_kw * self._tan_phi
        self.production_t_h = cfg.cells * self.current_a * cfg.current_efficiency * MN_GRAMS_PER_AH / 1e6

"""The equipment models by kind, and building a plant's models from its `simulation:` section."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from ferrogate.simulators.cells import CellsModel
from ferrogate.simulators.electrical import IncomerModel, TransformerModel, WasteHeatGeneratorModel
from ferrogate.simulators.furnaces import EafModel, SafModel
from ferrogate.simulators.model_base import CLOCK_SIGNAL, STEP_S, Equipment, TruthRecord
from ferrogate.simulators.stack import StackModel

if TYPE_CHECKING:
    from ferrogate.simulators.config import Simulation

__all__ = ["CLOCK_SIGNAL", "MODEL_CLASSES", "STEP_S", "Equipment", "TruthRecord", "build_models"]

MODEL_CLASSES: dict[str, type[Equipment]] = {
    cls.kind: cls
    for cls in (EafModel, SafModel, TransformerModel, WasteHeatGeneratorModel, IncomerModel, CellsModel, StackModel)
}


def build_models(sim: Simulation, t0: int) -> dict[str, Equipment]:
    """Models keyed by equipment id, in an order where each comes after what it follows. Each draws
    from its own RNG seeded with (seed, id), so adding equipment does not change the others."""
    models: dict[str, Equipment] = {}
    pending = list(sim.equipment)
    while pending:
        progressed = False
        for cfg in list(pending):
            model = _build(cfg, models, random.Random(f"{sim.seed}:{cfg.id}"), t0)
            if model is not None:
                models[cfg.id] = model
                pending.remove(cfg)
                progressed = True
        if not progressed:
            raise ValueError(f"simulation.equipment: circular references among {[c.id for c in pending]}")
    return models


def _build(cfg, models: dict[str, Equipment], rng: random.Random, t0: int) -> Equipment | None:
    """The model, or None while something it follows is not built yet."""
    if cfg.kind == "eaf":
        return EafModel(cfg, rng, t0)
    if cfg.kind == "submerged_arc_furnace":
        return SafModel(cfg, rng, t0)
    if cfg.kind == "electrolytic_cells":
        return CellsModel(cfg, rng, t0)
    if cfg.kind in ("transformer", "waste_heat_generator", "stack"):
        furnace = models.get(cfg.furnace)
        if furnace is None:
            return None
        if cfg.kind == "stack":
            return StackModel(cfg, furnace, rng, t0)
        cls = TransformerModel if cfg.kind == "transformer" else WasteHeatGeneratorModel
        return cls(cfg, furnace, t0)
    feeders = [models.get(f) for f in cfg.feeders]
    generators = [models.get(g) for g in cfg.generators]
    if None in feeders or None in generators:
        return None
    return IncomerModel(cfg, feeders, generators, rng, t0)  # type: ignore[arg-type]

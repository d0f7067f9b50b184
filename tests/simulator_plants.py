"""Plants for the simulator tests: the demo plant or a small one, every device on a free loopback
port, run on a ManualClock so each test decides exactly which simulated second it reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ferrogate.gateway.config_loader import parse_plant
from ferrogate.gateway.plant_file import PlantFile
from ferrogate.simulators.clock import ManualClock
from ferrogate.simulators.plant import SimulatedPlant
from tests.conftest import DEMO_PLANT

T0 = 1_800_000_000  # 2027-01-15T08:00:00Z: a whole hour, so hourly ledger lines start at once
NS = "nsu=urn:ferrogate:simulator;s="


def load(doc: dict[str, Any], name: str = "plant.yaml") -> PlantFile:
    return parse_plant(yaml.safe_dump(doc, allow_unicode=True), Path(name))


def demo_doc() -> dict[str, Any]:
    return yaml.safe_load(DEMO_PLANT.read_text(encoding="utf-8"))


def manual_plant(plant: PlantFile, t0: int = T0, truth: Path | None = None) -> tuple[SimulatedPlant, ManualClock]:
    clock = ManualClock(t0)
    # the ports are on_free_ports' choice: one taken meanwhile is moved (tests read the sim's devices)
    return SimulatedPlant(plant, plant.simulation, clock=clock, truth=truth, move_taken_ports=True), clock


def small_doc(eaf_start_kwh: float = 0.0) -> dict[str, Any]:
    """One EAF (Modbus, map eaf_meter) and one SiMn furnace with its transformer (OPC UA)."""
    return {
        "site": {"id": "sim", "name": "simulator test plant"},
        "devices": [
            {
                "id": "eaf_meter",
                "protocol": "modbus",
                "host": "127.0.0.1",
                "port": 502,
                "points": [
                    {"id": "energy", "address": 0, "type": "uint32", "unit": "kWh"},
                    {"id": "power", "address": 2, "type": "float32", "unit": "kW"},
                ],
            },
            {
                "id": "saf_dcs",
                "protocol": "opcua",
                "endpoint": "opc.tcp://127.0.0.1:4840/saf",
                "points": [{"id": "power", "node": f"{NS}SAF1.P_kW", "unit": "kW"}],
            },
        ],
        "simulation": {
            "seed": 7,
            "equipment": [
                {"id": "eaf1", "kind": "eaf", "rated_kw": 80000, "nominal_t": 100, "energy_start_kwh": eaf_start_kwh},
                {"id": "saf1", "kind": "submerged_arc_furnace", "product": "SiMn", "rated_kva": 25000},
                {"id": "tr_saf1", "kind": "transformer", "furnace": "saf1", "rated_kva": 25000},
            ],
            "devices": [
                {"device": "eaf_meter", "model": "eaf_meter", "equipment": "eaf1"},
                {"device": "saf_dcs", "model": "submerged_arc_furnace", "equipment": "saf1"},
                {"device": "saf_dcs", "model": "transformer", "equipment": "tr_saf1"},
            ],
        },
    }

"""The `simulation:` section: typed parameters per equipment kind, cross-references, the fault
script, and the check that a simulated device's points read its map exactly as documented. Golden
cases in tests/testcases/simulators/config/<case>/ (plant.yaml + expected.txt, `line: yaml.path: reason`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferrogate.gateway.config_loader import load_plant
from ferrogate.simulators.config import EafEquipment, SafEquipment, parse_duration
from tests.conftest import DEMO_PLANT
from tests.test_config import describe

CASES = sorted((Path(__file__).parent / "testcases" / "simulators" / "config").iterdir())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_case(case: Path) -> None:
    expected = (case / "expected.txt").read_text(encoding="utf-8").splitlines()
    assert describe(case / "plant.yaml") == expected


def test_demo_plant_has_what_the_issue_asks_for() -> None:
    sim = load_plant(DEMO_PLANT).simulation
    assert sim is not None
    kinds: dict[str, list] = {}
    for eq in sim.equipment:
        kinds.setdefault(eq.kind, []).append(eq)
    assert len(kinds["eaf"]) >= 2
    products = {saf.product.value for saf in kinds["submerged_arc_furnace"]}
    assert len(kinds["submerged_arc_furnace"]) >= 2 and len(products) >= 2
    furnaces = {eq.id for eq in kinds["eaf"] + kinds["submerged_arc_furnace"]}
    assert {t.furnace for t in kinds["transformer"]} == furnaces, "every furnace has its transformer"
    assert len(kinds["waste_heat_generator"]) >= 2 and len(kinds["main_incomer"]) == 1
    ids = {eq.id for eq in sim.equipment}
    assert {"eaf1", "eaf2", "saf1", "saf2", "tr_eaf1", "whg1", "whg2", "incomer"} <= ids
    protocols = {load_plant(DEMO_PLANT).device(sd.device).protocol for sd in sim.devices}
    assert protocols == {"modbus", "opcua"}


def test_product_defaults_and_durations() -> None:
    saf = SafEquipment(id="saf1", kind="submerged_arc_furnace", rated_kva=25000, product="FeSi75")
    assert (saf.specific_energy, saf.electrode_use) == (8000.0, 45.0)
    own = saf.model_copy(update={"kwh_per_t": 8300.0, "electrode_kg_per_t": 40.0})
    assert (own.specific_energy, own.electrode_use) == (8300.0, 40.0)
    assert [parse_duration(v) for v in ("90", "90s", "15m", "6h", "1d", 12.5)] == [90, 90, 900, 21600, 86400, 12.5]
    with pytest.raises(ValueError, match="melting"):
        EafEquipment(id="e", kind="eaf", rated_kw=1, nominal_t=1, bore_down_share=0.5, refine_share=0.5)

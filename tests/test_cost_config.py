"""The cost section of the plant file: golden error cases (tests/testcases/cost_config/<case>/
plant.yaml + expected.txt, as `ferrogate check-config` reports them) and the shipped example tariffs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferrogate.gateway.config_loader import load_plant
from ferrogate.gateway.cost.model import resolve_cost
from tests.conftest import ROOT
from tests.test_config import describe

CASES = sorted((Path(__file__).parent / "testcases" / "cost_config").iterdir())
PLANTS = ROOT / "deploy" / "plants"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_cost_config(case: Path) -> None:
    assert describe(case / "plant.yaml") == (case / "expected.txt").read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("name", ["demo.yaml", "fujian-eaf-steel.yaml", "guizhou-ferroalloy.yaml"])
def test_example_plants_carry_a_labelled_unverified_example_tariff(name: str) -> None:
    """No tariff is built in: each example plant names its tariff's source document and says the
    figures are an unverified example."""
    plant = load_plant(PLANTS / name)
    assert plant.cost is not None
    model, problems = resolve_cost(plant, plant.cost, plant.accounting)
    assert model is not None, problems
    for tariff in model.config.tariffs:
        assert "EXAMPLE" in tariff.name and tariff.source.document
        assert tariff.source.verified is False
    for rule in model.config.surcharges:
        assert "EXAMPLE" in rule.name and rule.source.verified is False

"""The accounting section of the plant file: golden error cases (tests/testcases/accounting_config/
<case>/plant.yaml + expected.txt, as `ferrogate check-config` reports them) and shape rules."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from ferrogate.gateway.config_loader import load_plant
from ferrogate.gateway.energy.config import AccountingConfig
from ferrogate.gateway.energy.model import resolve
from tests.conftest import DEMO_PLANT
from tests.test_config import describe

CASES = sorted((Path(__file__).parent / "testcases" / "accounting_config").iterdir())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_accounting_config(case: Path) -> None:
    assert describe(case / "plant.yaml") == (case / "expected.txt").read_text(encoding="utf-8").splitlines()


def test_demo_plant_resolves_every_unit_and_meter() -> None:
    plant = load_plant(DEMO_PLANT)
    model, problems = resolve(plant, plant.accounting)
    assert problems == [] and model is not None
    assert {u.asset: u.kind for u in model.units} == {
        "eaf1": "eaf_heat",
        "eaf2": "eaf_heat",
        "saf1": "saf_tap",
        "saf2": "saf_tap",
        "saf3": "saf_tap",
        "emm1": "continuous",
    }
    eaf2 = model.consumers["eaf2"].counter
    # little-endian uint32 with scale 0.1: wraps at 2^32 x 0.1 kWh, one step is 0.1 kWh
    assert eaf2 is not None and eaf2.spec.modulus == pytest.approx(2**32 * 0.1) and eaf2.spec.resolution == 0.1
    assert model.consumers["saf1"].counter is not None and model.consumers["saf1"].counter.spec.modulus is None
    saf1 = next(u for u in model.units if u.asset == "saf1")
    assert saf1.metered["electrode"].to_base == 0.001  # kg counter into t
    assert saf1.tap_time is not None and saf1.tap_time.to_base == 1e6  # ms to ns


def base(**extra: object) -> dict[str, object]:
    return {"products": [{"id": "SiMn"}], "units": [{"asset": "saf1"}], **extra}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"interval_s": 700}, "divide 3600"),
        ({"calendar": {"shifts": [{"name": "A", "start": "08:10"}]}}, "not on a 900 s boundary"),
        ({"calendar": {"shifts": [{"name": "A", "start": "16:00"}, {"name": "B", "start": "08:00"}]}}, "increasing"),
        ({"allocations": [{"id": "a", "meter": "x", "rule": "fixed_shares", "shares": {"u": 0.5}}]}, "sum to 1"),
        ({"allocations": [{"id": "a", "meter": "x", "rule": "pro_rata_remainder"}]}, "needs 'targets'"),
        ({"green_power": [{"start": "2026-02-01", "end": "2026-01-01", "kwh": 1, "certificate": "c"}]}, "after start"),
        (
            {
                "factors": {
                    "benchmarks": [
                        {"key": "X", "edition": "2023", "benchmark": 9, "baseline": 8, "source": "doc", "year": 2023}
                    ]
                }
            },
            "<= baseline",
        ),
        ({"factors": {"emission": {"coke": {"value": 3.0, "unit": "tCO2/t"}}}}, "Field required"),
    ],
)
def test_section_shape_errors(extra: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AccountingConfig.model_validate(base(**extra))

"""The compliance section of the plant file: the golden error case (each cross-check with its line
and YAML path, as `ferrogate check-config` prints them), the defaults without a section, and the
checks a manual input goes through before it is stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferrogate.gateway.compliance.inputs import InputError
from ferrogate.gateway.compliance.model import ComplianceModel, build
from ferrogate.gateway.config_loader import load_plant
from ferrogate.gateway.energy.model import resolve
from tests.compliance_cases import CASES_DIR
from tests.test_config import describe

ERRORS = Path(__file__).parent / "testcases" / "compliance_config" / "errors"


def test_golden_compliance_config_errors() -> None:
    assert describe(ERRORS / "plant.yaml") == (ERRORS / "expected.txt").read_text(encoding="utf-8").splitlines()


def base_model() -> ComplianceModel:
    plant = load_plant(CASES_DIR / "gb21341_ferroalloys" / "plant.yaml")
    accounting, _ = resolve(plant, plant.accounting)
    assert accounting is not None
    model, problems = build(plant, plant.compliance, accounting)
    assert model is not None, problems
    return model


def test_without_a_section_every_product_is_mapped_by_its_id() -> None:
    model = base_model()
    assert {p: (lim.entry.key if lim.entry else lim.status) for p, lim in model.limits.items()} == {
        "EMM": "no_limit_standard",
        "FeSi75": "GB21341/FeSi",
        "HC_FeCr": "GB21341/HC_FeCr",
        "SiMn": "GB21341/SiMn",
        "crude_steel_eaf": "GB21256/eaf",
        "industrial_silicon": "GB21347/industrial_silicon",
    }
    assert model.limits["SiMn"].standing["ore_grade_percent"].value == 35.0
    scope = {p: s["status"] for p, s in model.cbam_scope.items()}
    assert scope == {
        "EMM": "out_of_scope",
        "FeSi75": "out_of_scope",
        "SiMn": "out_of_scope",
        "industrial_silicon": "out_of_scope",
        "HC_FeCr": "not_configured",
        "crude_steel_eaf": "not_configured",
    }


@pytest.mark.parametrize(
    ("subject", "name", "value", "code"),
    [
        ("SiMn", "melting_point", 1, "unknown_input"),
        ("SiMn", "eaf_size_class", "ge_70t", "input_not_applicable"),
        ("EMM", "ore_grade_percent", 30, "input_not_applicable"),
        ("FeNi", "ore_grade_percent", 30, "unknown_subject"),
        ("SiMn", "ore_grade_percent", 130, "out_of_range"),
        ("SiMn", "ore_grade_percent", "high", "bad_value"),
        ("SiMn", "ore_grade_percent", float("nan"), "bad_value"),
        ("industrial_silicon", "reductant", "wood", "bad_value"),
        ("moonrock", "carbon_content", 0.1, "unknown_subject"),
        ("natural_gas", "supplier_see", 1.0, "input_not_applicable"),
        ("saf_simn/electrode", "consumption", 10, "metered"),
        ("saf_simn", "consumption", 10, "unknown_subject"),
        ("nope/scrap", "consumption", 10, "unknown_subject"),
    ],
)
def test_a_bad_manual_input_is_refused_with_a_reason(subject: str, name: str, value: object, code: str) -> None:
    with pytest.raises(InputError) as caught:
        base_model().check_input(subject, name, value)  # type: ignore[arg-type]
    assert caught.value.code == code, str(caught.value)


@pytest.mark.parametrize(
    ("subject", "name", "value", "unit"),
    [
        ("SiMn", "ore_grade_percent", 34, "%"),
        ("industrial_silicon", "reductant", "coal", ""),
        ("coke", "ncv", 28.8, "GJ/t"),
        ("natural_gas", "ncv", 0.0389, "GJ/m3"),
        ("crude_steel_eaf", "carbon_content", 0.002, "tC/t"),
        ("saf_simn/coke", "consumption", 1700, "t"),
        ("eaf1/scrap", "consumption", 52000, "t"),
        ("eaf1/slag", "output", 5000, "t"),
        ("pig_iron", "supplier_see", 1.9, "tCO2e/t"),
    ],
)
def test_a_good_manual_input_gets_its_unit(subject: str, name: str, value: object, unit: str) -> None:
    checked, got = base_model().check_input(subject, name, value)  # type: ignore[arg-type]
    assert got == unit and checked == (value if isinstance(value, str) else float(value))  # type: ignore[arg-type]

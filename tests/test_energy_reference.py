"""Reference data, factor choice, standard coal, carbon and benchmark rules."""

from __future__ import annotations

import math
from datetime import date

import pytest

from ferrogate.gateway.energy import reference as ref
from ferrogate.gateway.energy.aggregate import Totals
from ferrogate.gateway.energy.benchmark import Status, assess
from ferrogate.gateway.energy.carbon import carbon
from ferrogate.gateway.energy.kgce import Material, comprehensive
from ferrogate.gateway.energy.reference import Confidence, Factor


def all_factors() -> list[Factor]:
    out: list[Factor] = [ref.ELECTRICITY_EQUIVALENT]
    for table in ref.BENCHMARKS.values():
        for levels in table.values():
            if levels is not None:
                out += [levels.benchmark, levels.baseline]
    for m in ref.MATERIALS.values():
        out += [f for f in (m.kgce, m.co2) if f is not None]
    for p in ref.PRODUCTS.values():
        if p.carbon_fixed is not None:
            out.append(p.carbon_fixed)
    for table in (
        ref.GRID_NATIONAL,
        ref.GRID_NATIONAL_RESIDUAL,
        *ref.GRID_REGIONS.values(),
        *ref.GRID_PROVINCES.values(),
    ):
        out += table.values()
    return out


def test_every_factor_has_unit_source_year_and_confidence() -> None:
    for f in all_factors():
        assert f.unit and len(f.source) > 5 and 1990 < f.year <= 2026, f
        assert f.verified == (f.confidence is not Confidence.UNVERIFIED), f
        assert set(f.provenance()) >= {"value", "unit", "source", "year", "confidence", "verified"}


def test_checked_numbers_are_the_reference_ones() -> None:
    assert (ref.ELECTRICITY_EQUIVALENT.value, ref.ELECTRICITY_EQUIVALENT.unit) == (0.1229, "kgce/kWh")
    simn = ref.BENCHMARKS["2023"]["SiMn"]
    assert simn is not None and (simn.benchmark.value, simn.baseline.value) == (860, 950)
    fesi21, fesi23 = ref.BENCHMARKS["2021"]["FeSi75"], ref.BENCHMARKS["2023"]["FeSi75"]
    assert fesi21 is not None and fesi23 is not None and (fesi21.baseline.value, fesi23.baseline.value) == (1900, 1850)
    eaf = ref.BENCHMARKS["2023"]["crude_steel_eaf"]
    assert eaf is not None and not eaf.benchmark.verified and "not confirmed" in eaf.benchmark.note
    assert ref.BENCHMARKS["2023"]["EMM"] is None
    coke = ref.MATERIALS["coke"]
    assert coke.kgce is not None and not coke.kgce.verified and coke.kgce.value == 971.4
    # coke CO2 from its reference NCV and carbon content: 28.435 GJ/t x 29.42 tC/TJ x 44/12
    assert coke.co2 is not None and math.isclose(coke.co2.value, 3.0674, abs_tol=1e-4)
    gas = ref.MATERIALS["natural_gas"].co2
    assert gas is not None and math.isclose(gas.value, 389.31e-4 * 15.32e-3 * 0.99 * 44 / 12, rel_tol=1e-12)
    assert ref.MATERIALS["raw_coal"].co2 is None  # not in the reference: a plant using it must configure it
    assert ref.GRID_NATIONAL[2023].value == 0.5306 and ref.GRID_NATIONAL_RESIDUAL[2023].value == 0.6096


def test_edition_by_date() -> None:
    assert ref.edition_for(date(2023, 7, 3)) == "2021"
    assert ref.edition_for(date(2023, 7, 4)) == "2023"


def test_grid_factor_province_then_region_then_national() -> None:
    assert ref.grid_factor(2022, "Fujian").factor.value == 0.4092
    choice = ref.grid_factor(2023, "Fujian")
    assert (choice.level, choice.name, choice.factor.value) == ("region", "east_china", 0.5500)
    latest = ref.grid_factor(2026, "Fujian")  # not yet published: the latest year up to 2026
    assert (latest.factor.year, latest.level) == (2023, "region")
    assert ref.grid_factor(2022, "Inner Mongolia").level == "national"
    with pytest.raises(LookupError, match="no grid emission factor for 2026"):
        ref.grid_factor(2026, "Fujian", exact=True)
    with pytest.raises(LookupError):
        ref.grid_factor(2020, None)


def test_override_must_keep_the_reference_unit() -> None:
    with pytest.raises(ValueError, match="does not match"):
        ref.with_override(ref.ELECTRICITY_EQUIVALENT, 0.3, "kgce/MWh", "site", 2026)
    site = ref.with_override(ref.ELECTRICITY_EQUIVALENT, 0.30, "kgce/kWh", "supply coal rate 2026", 2026)
    assert site.confidence is Confidence.CONFIGURED and site.value == 0.30


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (850.0, Status.at_or_better_than_benchmark),
        (860.0, Status.at_or_better_than_benchmark),
        (900.0, Status.between),
        (950.0, Status.between),
        (950.1, Status.worse_than_baseline),
    ],
)
def test_benchmark_status(value: float, status: Status) -> None:
    levels = ref.BENCHMARKS["2023"]["SiMn"]
    result = assess(value, levels, "2023", "SiMn")
    assert result.status is status
    assert result.margin_to_benchmark == pytest.approx(value - 860)


def test_benchmark_status_with_negative_levels_and_without_levels() -> None:
    bof = ref.BENCHMARKS["2023"]["bof"]
    assert assess(-31.0, bof, "2023", "bof").status is Status.at_or_better_than_benchmark
    assert assess(-20.0, bof, "2023", "bof").status is Status.between
    assert assess(-5.0, bof, "2023", "bof").status is Status.worse_than_baseline
    assert assess(7000.0, None, "2023", "EMM").status is Status.no_benchmark
    assert assess(None, bof, "2023", "bof").status is Status.no_production


def test_comprehensive_energy_and_carbon_by_hand() -> None:
    materials = {
        "coke": Material("coke", "t", ref.MATERIALS["coke"].kgce, ref.MATERIALS["coke"].co2, "process"),
        "electrode": Material("electrode", "t", None, ref.MATERIALS["electrode"].co2, "process"),
        "natural_gas": Material(
            "natural_gas", "m3", ref.MATERIALS["natural_gas"].kgce, ref.MATERIALS["natural_gas"].co2, "combustion"
        ),
    }
    totals = Totals(records=4, tonnes=100.0, electricity_kwh=390_000.0, waste_heat_kwh=60_000.0)
    totals.consumables = {"coke": 55.0, "electrode": 2.5, "natural_gas": 1000.0}
    coal = comprehensive(totals, ref.ELECTRICITY_EQUIVALENT, materials)
    expected = 390_000 * 0.1229 - 60_000 * 0.1229 + 55 * 971.4 + 1000 * 1.2143
    assert coal.total_kgce == pytest.approx(expected) and coal.per_t == pytest.approx(expected / 100)
    assert "electrode" not in coal.carriers_kgce  # not an energy carrier by default
    simn_c = ref.PRODUCTS["SiMn"].carbon_fixed
    grid = ref.grid_factor(2023, "Guizhou").factor  # south China region 0.4042
    co2 = carbon(totals, materials, simn_c, grid, ref.GRID_NATIONAL_RESIDUAL[2023], green_kwh=100_000.0)
    process = 55 * ref.MATERIALS["coke"].co2.value + 2.5 * 3.663  # type: ignore[union-attr]
    combustion = 1000 * ref.MATERIALS["natural_gas"].co2.value  # type: ignore[union-attr]
    direct = process + combustion - 100 * 0.092
    indirect = (390_000 - 60_000) / 1000 * 0.4042
    assert co2.process_t == pytest.approx(process) and co2.combustion_t == pytest.approx(combustion)
    assert co2.direct_t == pytest.approx(direct) and co2.indirect_t == pytest.approx(indirect)
    assert co2.per_t == pytest.approx((direct + indirect) / 100)
    assert co2.indirect_market_t == pytest.approx((330 - 100) * 0.6096)
    assert set(co2.factors) >= {"grid", "grid_residual", "coke_co2", "electrode_co2", "product_carbon"}

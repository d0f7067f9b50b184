"""The one reference-data module: every default level, coefficient and emission factor the
accounting engine uses, each with value, unit, source document, year and confidence.

Numbers come from ../shared/reference/README.md (checked by the product side). Entries marked
UNVERIFIED there carry `verified=False` and are shown as such in every KPI's provenance. A plant
file may override any entry (`accounting.factors`); nothing here is ever replaced by a silent zero:
a missing entry is a configuration error raised where the plant file is checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

# --- confidence grades of shared/reference/README.md ----------------------------------------


class Confidence(StrEnum):
    H = "H"  # official text, page-referenced transcription, or two sources agree
    M = "M"  # one reputable secondary source, or arithmetic on H/M data
    L = "L"  # a single third-party source
    UNVERIFIED = "UNVERIFIED"
    CONFIGURED = "configured"  # given in the plant file by the site


@dataclass(frozen=True, slots=True)
class Factor:
    """One number with everything an auditor needs to trace it."""

    value: float
    unit: str
    source: str
    year: int
    confidence: Confidence
    verified: bool = True
    note: str = ""
    edition: str = ""  # of the source document where it has editions (standards, regulations)

    def provenance(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "value": self.value,
            "unit": self.unit,
            "source": self.source,
            "year": self.year,
            "confidence": self.confidence.value,
            "verified": self.verified,
        }
        if self.note:
            out["note"] = self.note
        if self.edition:
            out["edition"] = self.edition
        return out


def factor(value: float, unit: str, source: str, year: int, conf: str, note: str = "", edition: str = "") -> Factor:
    """A reference entry: UNVERIFIED confidence makes it `verified=False` (shown so everywhere)."""
    confidence = Confidence(conf)
    return Factor(value, unit, source, year, confidence, confidence is not Confidence.UNVERIFIED, note, edition)


_f = factor


# --- sources ------------------------------------------------------------------------------------

BENCHMARK_2021 = "《高耗能行业重点领域能效标杆水平和基准水平（2021年版）》"
BENCHMARK_2023 = "《工业重点领域能效标杆水平和基准水平（2023年版）》(发改产业〔2023〕723号)"
GB_21347_2023 = "GB 21347-2023 工业硅单位产品能源消耗限额 (grades 1 and 3 used until the 2023 edition is confirmed)"
GB_T_2589_2020 = "GB/T 2589-2020 综合能耗计算通则"
STEEL_GUIDELINE = "GB/T 32151.5-2015 / NDRC 2013 steel-enterprise GHG accounting guideline (default factors)"
THIRD_PARTY = "third-party compilation transcribed in ferrogate shared/reference §4"


def _grid_source(year: int) -> str:
    return f"MEE/NBS announcement of {year} electricity CO2 emission factors"


# --- 1. energy-efficiency benchmark (标杆) and baseline (基准) levels, kgce/t ------------------

KGCE_PER_T = "kgce/t"
# The 2023 edition governs from this date (plant-local date of the period start).
EDITION_2023_FROM = date(2023, 7, 4)
EDITIONS = ("2021", "2023")


@dataclass(frozen=True, slots=True)
class BenchmarkLevels:
    benchmark: Factor  # 标杆
    baseline: Factor  # 基准


def _levels(benchmark: float, baseline: float, source: str, year: int, conf: str, note: str = "") -> BenchmarkLevels:
    return BenchmarkLevels(
        _f(benchmark, KGCE_PER_T, source, year, conf, note), _f(baseline, KGCE_PER_T, source, year, conf, note)
    )


_CARRIED = "level in the 2023 edition not confirmed; the 2021 edition's level is used"
_EAF_NOTE = "EAF >= 50 t, ordinary steel; matches GB 21256-2025 grades 1/3"

# edition -> benchmark key -> levels. A key maps to None where the reference says there is no
# national benchmark (the KPI then says `no_benchmark`, never a made-up status).
BENCHMARKS: dict[str, dict[str, BenchmarkLevels | None]] = {
    "2021": {
        "SiMn": _levels(860, 950, BENCHMARK_2021, 2021, "M"),
        "FeSi75": _levels(1770, 1900, BENCHMARK_2021, 2021, "M"),
        "coke_top_charged": _levels(110, 135, BENCHMARK_2021, 2021, "M"),
        "blast_furnace": _levels(361, 435, BENCHMARK_2021, 2021, "M"),
        "bof": _levels(-30, -10, BENCHMARK_2021, 2021, "M"),
        "crude_steel_eaf": _levels(61, 72, BENCHMARK_2021, 2021, "UNVERIFIED", _EAF_NOTE),
        "HC_FeCr": _levels(710, 800, BENCHMARK_2021, 2021, "UNVERIFIED"),
        "EMM": None,
    },
    "2023": {
        "SiMn": _levels(860, 950, BENCHMARK_2023, 2023, "M"),
        "FeSi75": _levels(1770, 1850, BENCHMARK_2023, 2023, "M"),
        "coke_top_charged": _levels(110, 135, BENCHMARK_2023, 2023, "M"),
        "blast_furnace": _levels(361, 435, BENCHMARK_2023, 2023, "M"),
        "bof": _levels(-30, -10, BENCHMARK_2023, 2023, "M"),
        "crude_steel_eaf": _levels(61, 72, BENCHMARK_2021, 2021, "UNVERIFIED", f"{_EAF_NOTE}; {_CARRIED}"),
        "HC_FeCr": _levels(710, 800, BENCHMARK_2021, 2021, "UNVERIFIED", _CARRIED),
        "industrial_silicon/charcoal": _levels(2500, 3300, GB_21347_2023, 2023, "UNVERIFIED"),
        "industrial_silicon/petcoke_coal": _levels(2700, 3500, GB_21347_2023, 2023, "UNVERIFIED"),
        "industrial_silicon/coal": _levels(2800, 3600, GB_21347_2023, 2023, "UNVERIFIED"),
        "EMM": None,
    },
}


def edition_for(day: date) -> str:
    return "2023" if day >= EDITION_2023_FROM else "2021"


# --- 2. products ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProductRef:
    id: str
    name: str
    benchmark_key: str | None  # None: must be chosen in the plant file (e.g. silicon by reductant)
    carbon_fixed: Factor | None  # tCO2 per t of product bound in the product (subtracted); None: not known


_PRODUCT_CARBON = "tCO2/t"
PRODUCTS: dict[str, ProductRef] = {
    p.id: p
    for p in (
        ProductRef("crude_steel_eaf", "EAF crude steel 电炉粗钢", "crude_steel_eaf", None),
        ProductRef("SiMn", "silicomanganese 锰硅合金", "SiMn", _f(0.092, _PRODUCT_CARBON, THIRD_PARTY, 2026, "L")),
        ProductRef("FeSi75", "ferrosilicon 75 硅铁", "FeSi75", _f(0.007, _PRODUCT_CARBON, THIRD_PARTY, 2026, "L")),
        ProductRef(
            "HC_FeCr", "high-carbon ferrochrome 高碳铬铁", "HC_FeCr", _f(0.348, _PRODUCT_CARBON, THIRD_PARTY, 2026, "L")
        ),
        ProductRef("industrial_silicon", "industrial silicon 工业硅", None, None),
        ProductRef("EMM", "electrolytic manganese metal 电解金属锰", "EMM", None),
    )
}
SILICON_BENCHMARKS = ("industrial_silicon/charcoal", "industrial_silicon/petcoke_coal", "industrial_silicon/coal")

# --- 3. standard-coal coefficients (GB/T 2589-2020) and materials -------------------------------

ELECTRICITY_EQUIVALENT = _f(0.1229, "kgce/kWh", GB_T_2589_2020, 2020, "H", "equivalent value 当量值")
# 等价值 depends on the year's supply coal rate: the site must configure it (about 0.30 kgce/kWh).
ELECTRICITY_METHODS = ("equivalent", "equal_value")


class EmissionKind(StrEnum):
    combustion = "combustion"  # fuel burnt for heat
    process = "process"  # reductants, electrodes, carbonates (carbon mass balance)
    heat = "heat"  # purchased heat (indirect)


@dataclass(frozen=True, slots=True)
class MaterialRef:
    """A carrier or material a unit consumes: its kgce coefficient and CO2 factor per unit.

    `energy_carrier` False means it is not counted in comprehensive energy by definition (e.g.
    limestone); True with `kgce=None` means the site must configure the coefficient. Likewise
    `emits` with `co2=None`: the factor must be configured before the material can be used.
    """

    id: str
    unit: str
    energy_carrier: bool
    kgce: Factor | None
    emits: bool
    co2: Factor | None
    kind: EmissionKind = EmissionKind.process
    note: str = ""


_C_TO_CO2 = 44.0 / 12.0
# coke: 28.435 GJ/t x 29.42 tC/TJ x 44/12 (full oxidation: reductant carbon leaves as CO2)
_COKE_CO2 = 28.435 * 29.42 / 1000.0 * _C_TO_CO2
# natural gas: 389.31 GJ per 10^4 Nm3 x 15.32 tC/TJ x 0.99 oxidation x 44/12, per Nm3
_NG_CO2 = 389.31 / 10_000 * 15.32 / 1000.0 * 0.99 * _C_TO_CO2

MATERIALS: dict[str, MaterialRef] = {
    m.id: m
    for m in (
        MaterialRef(
            "coke",
            "t",
            True,
            _f(971.4, "kgce/t", GB_T_2589_2020, 2020, "UNVERIFIED", "0.9714 kgce/kg"),
            True,
            _f(_COKE_CO2, "tCO2/t", STEEL_GUIDELINE, 2015, "M", "28.435 GJ/t x 29.42 tC/TJ x 44/12"),
            EmissionKind.process,
        ),
        MaterialRef(
            "natural_gas",
            "m3",
            True,
            _f(1.2143, "kgce/m3", GB_T_2589_2020, 2020, "M", "common value; 1.1000-1.3300 by supplier LHV"),
            True,
            _f(_NG_CO2, "tCO2/m3", STEEL_GUIDELINE, 2015, "M", "389.31 GJ/10^4 Nm3 x 15.32 tC/TJ x 0.99 x 44/12"),
            EmissionKind.combustion,
        ),
        MaterialRef("raw_coal", "kg", True, _f(0.7143, "kgce/kg", GB_T_2589_2020, 2020, "H"), True, None),
        MaterialRef("diesel", "kg", True, _f(1.4571, "kgce/kg", GB_T_2589_2020, 2020, "M"), True, None),
        MaterialRef("blast_furnace_gas", "m3", True, _f(0.1286, "kgce/m3", GB_T_2589_2020, 2020, "M"), True, None),
        MaterialRef("converter_gas", "m3", True, _f(0.2714, "kgce/m3", GB_T_2589_2020, 2020, "L"), True, None),
        MaterialRef(
            "coke_oven_gas", "m3", True, None, True, None, note="GB/T 2589-2020 gives 0.5714-0.6143 kgce/m3 by LHV"
        ),
        MaterialRef(
            "heat",
            "MJ",
            True,
            _f(0.03412, "kgce/MJ", GB_T_2589_2020, 2020, "M"),
            True,
            _f(0.11e-3, "tCO2/MJ", STEEL_GUIDELINE, 2015, "M", "0.11 tCO2/GJ"),
            EmissionKind.heat,
        ),
        MaterialRef(
            "electrode",
            "t",
            False,
            None,
            True,
            _f(3.663, "tCO2/t", STEEL_GUIDELINE, 2015, "M", "graphite electrode or paste"),
            note="not counted in comprehensive energy by default; configure a coefficient to count it",
        ),
        MaterialRef("limestone", "t", False, None, True, _f(0.440, "tCO2/t", STEEL_GUIDELINE, 2015, "M")),
        MaterialRef("dolomite", "t", False, None, True, _f(0.471, "tCO2/t", STEEL_GUIDELINE, 2015, "M")),
    )
}

# --- 4. grid emission factors, tCO2/MWh ----------------------------------------------------------

TCO2_PER_MWH = "tCO2/MWh"


def _grid(values: dict[int, float | tuple[float, str]]) -> dict[int, Factor]:
    out = {}
    for year, v in values.items():
        value, conf = v if isinstance(v, tuple) else (v, "H")
        out[year] = _f(value, TCO2_PER_MWH, _grid_source(year), year, conf)
    return out


GRID_NATIONAL = _grid({2021: 0.5568, 2022: 0.5366, 2023: 0.5306})
# national average excluding market-traded non-fossil power: the residual mix for market-based figures
GRID_NATIONAL_RESIDUAL = _grid({2022: 0.5856, 2023: 0.6096})
GRID_REGIONS: dict[str, dict[int, Factor]] = {
    "south_china": _grid({2022: 0.3869, 2023: 0.4042}),
    "east_china": _grid({2022: 0.5617, 2023: 0.5500}),
}
GRID_PROVINCES: dict[str, dict[int, Factor]] = {
    "Guizhou": _grid({2021: (0.5182, "M"), 2022: (0.4989, "M")}),
    "Fujian": _grid({2021: (0.4711, "M"), 2022: (0.4092, "M")}),
}
REGION_OF_PROVINCE = {
    **dict.fromkeys(("Shanghai", "Jiangsu", "Zhejiang", "Anhui", "Fujian"), "east_china"),
    **dict.fromkeys(("Guangdong", "Guangxi", "Yunnan", "Guizhou", "Hainan"), "south_china"),
}


@dataclass(frozen=True, slots=True)
class GridChoice:
    factor: Factor
    level: str  # province / region / national
    name: str


def grid_factor(
    year: int,
    province: str | None,
    region: str | None = None,
    *,
    exact: bool = False,
    provinces: dict[str, dict[int, Factor]] | None = None,
    regions: dict[str, dict[int, Factor]] | None = None,
    national: dict[int, Factor] | None = None,
) -> GridChoice:
    """Location-based grid factor: the plant's province, else its region, else national.

    With `exact` the factor must be for `year` (a configured year). Otherwise the latest published
    year up to `year` is used (factors are announced a year or two late) and named in the result.
    Raises LookupError saying what is available when nothing fits.
    """
    provinces = GRID_PROVINCES if provinces is None else provinces
    regions = GRID_REGIONS if regions is None else regions
    national = GRID_NATIONAL if national is None else national
    region = region or (REGION_OF_PROVINCE.get(province) if province else None)
    chain: list[tuple[str, str, dict[int, Factor]]] = []
    if province is not None:
        chain.append(("province", province, provinces.get(province, {})))
    if region is not None:
        chain.append(("region", region, regions.get(region, {})))
    chain.append(("national", "China", national))
    years = {y for _, _, table in chain for y in table}
    candidates = [year] if exact else sorted((y for y in years if y <= year), reverse=True)[:1]
    for y in candidates:
        for level, name, table in chain:
            if y in table:
                return GridChoice(table[y], level, name)
    raise LookupError(
        f"no grid emission factor for {year}{'' if exact else ' or earlier'} "
        f"(years available: {sorted(years)}); add one under accounting.factors.grid"
    )


def latest_factor(table: dict[int, Factor], year: int) -> Factor | None:
    """The table's entry for the latest year up to `year` (None when there is none)."""
    years = [y for y in table if y <= year]
    return table[max(years)] if years else None


def with_override(base: Factor | None, value: float, unit: str, source: str, year: int, note: str = "") -> Factor:
    """A site's own value replacing (or supplying) a reference entry; always marked as configured."""
    if base is not None and base.unit != unit:
        raise ValueError(f"unit {unit!r} does not match the reference unit {base.unit!r}")
    return Factor(value, unit, source, year, Confidence.CONFIGURED, True, note)

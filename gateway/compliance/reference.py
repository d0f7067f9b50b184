"""Reference data of the compliance layer, in the style of the accounting's one reference-data module
(`gateway/energy/reference.py`): every level, correction, carbon parameter and default is a `Factor`
with value, unit, source document, edition, year, confidence and `verified`.

Numbers come from ../shared/reference/README.md sections 2, 4 and 5 (checked by the product side).
What that file marks UNVERIFIED, or does not contain at all, is `verified=False` here and in every
API answer that uses it. A plant file may override any entry (`compliance:` section); a missing
entry is reported as missing, never replaced by a zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from ferrogate.gateway.energy import reference as energy_ref
from ferrogate.gateway.energy.reference import Factor, factor

# --- 1. mandatory energy-consumption limit standards ------------------------------------------


@dataclass(frozen=True, slots=True)
class Standard:
    code: str  # e.g. "GB 21341-2022"
    title: str
    edition: str  # the year part of the code
    in_force: date
    replaces: str = ""


GB_21341 = Standard("GB 21341-2022", "铁合金单位产品能源消耗限额 ferroalloys", "2022", date(2024, 1, 1))
GB_21347 = Standard("GB 21347-2023", "工业硅单位产品能源消耗限额 industrial silicon", "2023", date(2024, 10, 1))
GB_21256 = Standard(
    "GB 21256-2025",
    "粗钢生产主要工序单位产品能源消耗限额 crude steel processes",
    "2025",
    date(2026, 7, 1),
    replaces="GB 21256-2013 and GB 32050-2015",
)

KWH_PER_T = "kWh/t"
KGCE_PER_T = "kgce/t"
ELECTRICITY = "electricity"  # smelting electricity 冶炼电耗, kWh/t
COMPREHENSIVE = "comprehensive"  # comprehensive energy 单位产品综合能耗, kgce/t
INDICATOR_NAMES = {
    ELECTRICITY: "冶炼电耗 smelting electricity",
    COMPREHENSIVE: "单位产品综合能耗 comprehensive energy consumption",
}
INDICATOR_UNITS = {ELECTRICITY: KWH_PER_T, COMPREHENSIVE: KGCE_PER_T}


def _levels(
    standard: Standard, unit: str, values: tuple[float, float | None, float], conf: str = "H", note: str = ""
) -> tuple[Factor | None, Factor | None, Factor]:
    year = int(standard.edition)
    made = [None if v is None else factor(v, unit, standard.code, year, conf, note, standard.edition) for v in values]
    assert made[2] is not None
    return made[0], made[1], made[2]


@dataclass(frozen=True, slots=True)
class LinearCorrection:
    """The limits of `indicator` move by `coefficient` per unit of the input below `reference`:
    delta = coefficient x (reference - input). Applied only when `condition` (another input at or
    above a threshold) holds, where one is named."""

    input: str
    indicator: str
    coefficient: Factor  # per unit of the input (e.g. kWh/t per percentage point)
    reference: Factor  # the input's reference value (the base of the table)
    condition: tuple[str, float] | None = None


@dataclass(frozen=True, slots=True)
class ClassCorrection:
    """A categorical input (e.g. steel grade class) that adds to or multiplies the limits of the
    indicators it names; the base class has no entry."""

    input: str
    base: str
    adjustments: dict[str, tuple[str, Factor]]  # class -> ("add" | "multiply", factor)
    indicators: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LimitEntry:
    """One product or process of a limit standard: its graded indicators, per variant where a
    categorical input picks the table (reductant, EAF size class), and its corrections."""

    key: str
    standard: Standard
    name: str
    selector: str | None  # the input that picks the variant, or None (one variant "")
    variants: dict[str, dict[str, tuple[Factor | None, Factor | None, Factor]]]  # variant -> indicator -> levels
    linear: tuple[LinearCorrection, ...] = ()
    classes: tuple[ClassCorrection, ...] = ()
    # how electricity turns into kgce for the comprehensive indicator (the standards' own rule)
    electricity_kgce: Factor = energy_ref.ELECTRICITY_EQUIVALENT
    notes: tuple[str, ...] = ()

    @property
    def inputs(self) -> tuple[str, ...]:
        names = [self.selector] if self.selector else []
        for c in self.linear:
            names.append(c.input)
            if c.condition:
                names.append(c.condition[0])
        names += [c.input for c in self.classes]
        return tuple(dict.fromkeys(names))


def _ore(
    product: str, reference: float, coefficient: float, condition: tuple[str, float] | None = None
) -> LinearCorrection:
    return LinearCorrection(
        "ore_grade_percent",
        ELECTRICITY,
        factor(coefficient, "kWh/t per percentage point", GB_21341.code, 2022, "H", edition=GB_21341.edition),
        factor(reference, "%", GB_21341.code, 2022, "H", f"reference charged-ore grade, {product}", GB_21341.edition),
        condition,
    )


def _ferroalloy(
    key: str, name: str, kwh: tuple[float, float, float], kgce: tuple[float, float, float], ore: LinearCorrection
) -> LimitEntry:
    return LimitEntry(
        key,
        GB_21341,
        name,
        None,
        {"": {ELECTRICITY: _levels(GB_21341, KWH_PER_T, kwh), COMPREHENSIVE: _levels(GB_21341, KGCE_PER_T, kgce)}},
        (ore,),
        notes=(
            "the two indicators are graded separately",
            "electricity in the comprehensive indicator at the equivalent value 0.1229 kgce/kWh only",
            "the ore-grade correction moves the smelting-electricity levels only (the reference gives no "
            "correction of the comprehensive indicator)",
        ),
    )


_EAF_SIZE = "eaf_size_class"
_GRADE_CLASS = ClassCorrection(
    "steel_grade_class",
    "plain_carbon",
    {
        "quality_carbon_structural": ("add", factor(8, KGCE_PER_T, GB_21256.code, 2025, "H", edition="2025")),
        "bearing_gear_tool": ("add", factor(15, KGCE_PER_T, GB_21256.code, 2025, "H", edition="2025")),
        "stainless": ("multiply", factor(1.10, "1", GB_21256.code, 2025, "H", edition="2025")),
    },
    (COMPREHENSIVE,),
)
_HOT_METAL = LinearCorrection(
    "hot_metal_ratio_percent",
    COMPREHENSIVE,
    factor(0.8, "kgce/t per percentage point", GB_21256.code, 2025, "H", edition="2025"),
    factor(0.0, "%", GB_21256.code, 2025, "H", "base: 100 % scrap", "2025"),
)
_UNSTATED_METHOD = factor(
    0.1229,
    "kgce/kWh",
    "GB/T 2589-2020 equivalent value; the reference does not say which value this standard uses",
    2020,
    "UNVERIFIED",
    "equivalent value 当量值 assumed",
)
_STEEL_NOTES = (
    "corrections applied in this order: hot-metal ratio (added), then steel grade class (added or multiplied); "
    "the order is our reading, not confirmed from the text",
    "EAF 50-70 t and < 50 t have no grade 2",
)


def _process(key: str, name: str, levels: tuple[float, float | None, float]) -> LimitEntry:
    """A GB 21256 process graded on comprehensive energy only, without corrections."""
    table = {"": {COMPREHENSIVE: _levels(GB_21256, KGCE_PER_T, levels)}}
    return LimitEntry(key, GB_21256, name, None, table, electricity_kgce=_UNSTATED_METHOD)


LIMITS: dict[str, LimitEntry] = {
    e.key: e
    for e in (
        _ferroalloy(
            "GB21341/FeSi",
            "硅铁 ferrosilicon",
            (8050, 8300, 8400),
            (1700, 1770, 1850),
            _ore("FeSi (SiO2 of the charged silica: our reading)", 98, 40),
        ),
        _ferroalloy(
            "GB21341/SiMn", "锰硅合金 silicomanganese", (3800, 4000, 4250), (850, 860, 950), _ore("SiMn", 36, 100)
        ),
        _ferroalloy(
            "GB21341/HC_FeCr",
            "高碳铬铁 high-carbon ferrochrome",
            (3100, 3300, 3500),
            (800, 850, 900),
            _ore("HC FeCr (Cr2O3)", 40, 80, ("cr_fe_ratio", 2.2)),
        ),
        _ferroalloy(
            "GB21341/HC_FeMn",
            "电炉高碳锰铁 EAF high-carbon ferromanganese",
            (2100, 2400, 2550),
            (610, 660, 700),
            _ore("HC FeMn (Mn)", 39, 50),
        ),
        LimitEntry(
            "GB21347/industrial_silicon",
            GB_21347,
            "工业硅 industrial silicon",
            "reductant",
            {
                "charcoal": {COMPREHENSIVE: _levels(GB_21347, KGCE_PER_T, (2500, 2800, 3300))},
                "petcoke_coal": {COMPREHENSIVE: _levels(GB_21347, KGCE_PER_T, (2700, 3000, 3500))},
                "coal": {COMPREHENSIVE: _levels(GB_21347, KGCE_PER_T, (2800, 3100, 3600))},
            },
            electricity_kgce=_UNSTATED_METHOD,
            notes=("levels by main reductant: charcoal, petroleum coke + coal, coal",),
        ),
        LimitEntry(
            "GB21256/eaf",
            GB_21256,
            "电炉炼钢工序 EAF steelmaking",
            _EAF_SIZE,
            {
                "ge_70t": {COMPREHENSIVE: _levels(GB_21256, KGCE_PER_T, (61, 64, 72))},
                "50_to_70t": {COMPREHENSIVE: _levels(GB_21256, KGCE_PER_T, (61, None, 72))},
                "lt_50t": {COMPREHENSIVE: _levels(GB_21256, KGCE_PER_T, (61, None, 86))},
            },
            (_HOT_METAL,),
            (_GRADE_CLASS,),
            electricity_kgce=_UNSTATED_METHOD,
            notes=_STEEL_NOTES,
        ),
        _process("GB21256/sintering", "烧结工序 sintering", (43, 46, 52)),
        _process("GB21256/pelletizing", "球团工序 pelletizing", (15, 22, 33)),
        _process("GB21256/blast_furnace", "高炉工序 blast furnace", (361, 370, 415)),
        _process("GB21256/bof", "转炉工序 BOF", (-30, -28, -12)),
    )
}
NO_LIMIT_STANDARD = "no_limit_standard"  # e.g. electrolytic manganese: no mandatory national limit

# product id (accounting reference spelling) -> limit entry; NO_LIMIT_STANDARD where none exists
PRODUCT_LIMITS: dict[str, str] = {
    "FeSi75": "GB21341/FeSi",
    "SiMn": "GB21341/SiMn",
    "HC_FeCr": "GB21341/HC_FeCr",
    "HC_FeMn": "GB21341/HC_FeMn",
    "industrial_silicon": "GB21347/industrial_silicon",
    "crude_steel_eaf": "GB21256/eaf",
    "EMM": NO_LIMIT_STANDARD,
}

# choices of the categorical inputs
CHOICES: dict[str, tuple[str, ...]] = {
    "reductant": ("charcoal", "petcoke_coal", "coal"),
    _EAF_SIZE: ("ge_70t", "50_to_70t", "lt_50t"),
    "steel_grade_class": ("plain_carbon", "quality_carbon_structural", "bearing_gear_tool", "stainless"),
}

# --- 2. carbon parameters for the carbon mass balance (ETS, CBAM, footprints) ---------------------

C_TO_CO2 = factor(44.0 / 12.0, "tCO2/tC", "molar masses of CO2 and C", 2024, "H", "44/12")
CETS_GUIDELINE = "CETS-AG-03.01-V01-2024 (MEE accounting guideline, steel)"
CETS_VERIFICATION = "CETS-VG-03.01-V01-2024 (MEE verification guideline, steel)"
# monthly evidence deposit within 40 days of month end: the power sector's rule, likely but unverified for steel
DEPOSIT_DAYS = factor(
    40,
    "d",
    "MEE monthly evidence deposit (月度信息化存证), power sector",
    2024,
    "UNVERIFIED",
    "assumed to apply to steel as well",
)


@dataclass(frozen=True, slots=True)
class FuelCarbon:
    """A fuel's carbon from its net calorific value and carbon per unit of heat (lab values replace
    either), and the share that oxidises."""

    ncv: Factor  # GJ per material unit
    carbon_per_gj: Factor  # tC/GJ
    oxidation: Factor


_STEEL_DEFAULTS = energy_ref.STEEL_GUIDELINE
FUELS: dict[str, FuelCarbon] = {
    "coke": FuelCarbon(
        factor(28.435, "GJ/t", _STEEL_DEFAULTS, 2015, "M"),
        factor(29.42e-3, "tC/GJ", _STEEL_DEFAULTS, 2015, "M", "29.42 tC/TJ"),
        factor(1.0, "1", "carbon mass balance: reductant carbon leaves as CO2", 2015, "M"),
    ),
    "natural_gas": FuelCarbon(
        factor(389.31e-4, "GJ/m3", _STEEL_DEFAULTS, 2015, "M", "389.31 GJ per 10^4 Nm3"),
        factor(15.32e-3, "tC/GJ", _STEEL_DEFAULTS, 2015, "M", "15.32 tC/TJ"),
        factor(0.99, "1", _STEEL_DEFAULTS, 2015, "M"),
    ),
}


def _carbon_of(co2: Factor, note: str) -> Factor:
    """Carbon content of a material whose reference gives tCO2 per unit at full oxidation."""
    unit = co2.unit.replace("tCO2", "tC")
    return Factor(co2.value * 12.0 / 44.0, unit, co2.source, co2.year, co2.confidence, co2.verified, note)


# materials whose carbon content the reference gives directly (tCO2/t x 12/44)
CARBON_CONTENT: dict[str, Factor] = {
    mid: _carbon_of(energy_ref.MATERIALS[mid].co2, "reference tCO2/t x 12/44")  # type: ignore[arg-type]
    for mid in ("electrode", "limestone", "dolomite")
}
# materials of the mass balance beyond the accounting's: no reference carbon content (a lab value is needed)
MASS_BALANCE_MATERIALS: dict[str, str] = {
    "scrap": "t",
    "pig_iron": "t",
    "hot_metal": "t",
    "dri": "t",
    "slag": "t",
    "dust": "t",
}


def product_carbon_content(product_carbon: Factor | None) -> Factor | None:
    """Carbon in a product from the accounting's carbon-fixed factor (tCO2/t x 12/44)."""
    return None if product_carbon is None else _carbon_of(product_carbon, "carbon fixed in the product, tCO2/t x 12/44")


# --- 3. EU CBAM ------------------------------------------------------------------------------------

CBAM_MASS_BALANCE = factor(
    3.664, "tCO2/tC", "Implementing Regulation (EU) 2025/2547 (CBAM monitoring rules)", 2025, "H", "44.01/12.01"
)
CBAM_DEFAULTS_SOURCE = "Implementing Regulation (EU) 2025/2621, default values, China (OJ 2025-12-31)"
_CBAM_NOTE = "third-party transcription of the annex; check against the published annex before relying on it"
TCO2E_PER_T = "tCO2e/t"


@dataclass(frozen=True, slots=True)
class CbamGoodRef:
    cn: str  # CN code prefix, digits only
    name: str
    default: Factor | None  # China default (direct), before the mark-up; None: none shipped


def _default(value: float) -> Factor:
    return factor(value, TCO2E_PER_T, CBAM_DEFAULTS_SOURCE, 2025, "UNVERIFIED", _CBAM_NOTE, "2025/2621")


CBAM_GOODS: dict[str, CbamGoodRef] = {
    g.cn: g
    for g in (
        CbamGoodRef("720211", "FeMn > 2 % C", _default(1.69)),
        CbamGoodRef("720219", "FeMn <= 2 % C", _default(5.59)),
        CbamGoodRef("720241", "FeCr > 4 % C", _default(2.35)),
        CbamGoodRef("720249", "FeCr <= 4 % C", _default(2.87)),
        CbamGoodRef("720260", "FeNi", _default(6.15)),
        CbamGoodRef("7201", "pig iron", _default(1.66)),
        CbamGoodRef("720610", "ingots", _default(1.74)),
        CbamGoodRef("7207", "semi-finished products of iron or non-alloy steel", _default(3.169)),
        CbamGoodRef("7208", "hot-rolled flat products", _default(3.187)),
        CbamGoodRef("7209", "cold-rolled flat products", _default(3.205)),
        CbamGoodRef("7210", "coated flat products", _default(3.205)),
        CbamGoodRef("7213", "wire rod", _default(3.169)),
        CbamGoodRef("721420", "rebar", _default(3.169)),
        # stainless (5.58-5.65) and other alloy steel (6.11-6.18) are ranges in the transcription:
        # none ship; give the annex value for the CN code in the plant file
    )
}


@dataclass(frozen=True, slots=True)
class OutOfScope:
    cn: str
    name: str


# goods among the plants' products that CBAM does not cover (reference section 5)
CBAM_OUT_OF_SCOPE: dict[str, OutOfScope] = {
    o.cn: o
    for o in (
        OutOfScope("720221", "ferrosilicon > 55 % Si"),
        OutOfScope("720229", "ferrosilicon, other"),
        OutOfScope("720230", "ferro-silico-manganese (SiMn)"),
        OutOfScope("280469", "silicon metal (< 99.99 % Si)"),
        OutOfScope("280461", "silicon (>= 99.99 % Si)"),
        OutOfScope("8111", "manganese (electrolytic manganese metal)"),
    )
}
# product id -> CN code where it is unambiguous (steel depends on the form shipped: configure it)
PRODUCT_CN: dict[str, str] = {
    "HC_FeCr": "720241",
    "HC_FeMn": "720211",
    "FeSi75": "720221",
    "SiMn": "720230",
    "industrial_silicon": "280469",
    "EMM": "8111",
}
# mark-up on the default values in the definitive period (reference section 5)
CBAM_MARKUP: dict[int, Factor] = {
    year: factor(pct, "%", CBAM_DEFAULTS_SOURCE, 2025, "UNVERIFIED", _CBAM_NOTE, "2025/2621")
    for year, pct in ((2026, 10.0), (2027, 20.0), (2028, 30.0))
}
CBAM_DEFINITIVE_FROM = 2026


def cbam_markup(year: int) -> Factor | None:
    """The mark-up of `year` (30 % from 2028 on); None before the definitive period."""
    if year < CBAM_DEFINITIVE_FROM:
        return None
    return CBAM_MARKUP[min(year, max(CBAM_MARKUP))]


def cn_match(cn: str, table: dict[str, CbamGoodRef] | dict[str, OutOfScope]) -> str | None:
    """The longest table key that is a prefix of `cn` (CN codes nest: 7202 41 10 is in 7202 41)."""
    hits = [key for key in table if cn.startswith(key)]
    return max(hits, key=len) if hits else None


# --- 4. product carbon footprint ---------------------------------------------------------------

GB_T_24067 = "GB/T 24067-2024 温室气体 产品碳足迹 量化要求和指南 (ISO 14067 based)"
GB_T_47064 = "GB/T 47064-2026 steel product carbon footprint (text not read)"
# No footprint factor ships: the published electricity carbon-footprint factor and the upstream
# factors of inputs are not in ../shared/reference (CISA numbers are UNVERIFIED there). The plant
# file gives them (compliance.footprint), each with its source.


@dataclass(frozen=True, slots=True)
class Method:
    """A method the compliance layer follows, with what is and is not verified about it."""

    name: str
    source: str
    verified: bool
    notes: tuple[str, ...] = field(default_factory=tuple)


METHODS: dict[str, Method] = {
    "ets": Method(
        "China ETS, steel: direct CO2 by carbon mass balance per process and for the enterprise",
        CETS_GUIDELINE,
        False,
        (
            "structure (enterprise and process level, captive power plant as its own process, carbon in minus "
            "carbon out, CO2 only, purchased electricity and heat outside the covered total) is H in the reference",
            "the guideline's full monthly item list, its defaults and the steel allowance formula are UNVERIFIED",
            "monthly evidence deposit within 40 days of month end is the power sector's rule, UNVERIFIED for steel",
        ),
    ),
    "cbam": Method(
        "EU CBAM specific direct embedded emissions (definitive period)",
        "Implementing Regulations (EU) 2025/2547 (monitoring) and 2025/2621 (default values)",
        False,
        (
            "SEE = (attributed direct emissions + sum(precursor mass x precursor SEE)) / activity level (H)",
            "iron and steel goods (incl. 7202 ferroalloys) count direct emissions only (H)",
            "default values are third-party transcriptions of the annex (UNVERIFIED)",
        ),
    ),
    "footprint": Method(
        "cradle-to-gate product carbon footprint",
        GB_T_24067,
        False,
        (
            "electricity on a life-cycle basis (electricity carbon-footprint factor, not the grid emission factor)",
            "GB/T 47064-2026 (steel products) exists but its text was not read: steel follows GB/T 24067 here",
            "no footprint factor ships; the plant file gives each with its source",
        ),
    ),
}

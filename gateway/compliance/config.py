"""The plant file's `compliance:` section: which limit standard grades each product and the standing
corrections, the carbon-market processes, CBAM goods and precursors, footprint factors, carbon
contents, and where the monthly manual inputs are kept.

Only the shape is checked here; `model.resolve` checks the references (products, units, materials,
limit keys, CN codes) and reports each problem with its YAML path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

ID = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
PRODUCT_ID = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_/]{0,62}$")]
CN_CODE = Annotated[str, Field(pattern=r"^\d{4}(\d{2}){0,2}$", description="CN code, 4, 6 or 8 digits, no spaces")]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourcedValue(_Section):
    """A site-specific number: value, unit, source document and year are all required; `verified`
    false keeps an illustrative or unconfirmed number marked as such in every answer."""

    value: float
    unit: str = Field(min_length=1)
    source: str = Field(min_length=3)
    year: int = Field(ge=1990, le=2100)
    note: str = ""
    verified: bool = True


class ProductLimit(_Section):
    product: PRODUCT_ID
    limit: str | None = Field(
        None, description="limit entry, e.g. GB21341/SiMn; 'no_limit_standard'; default: by product id"
    )
    corrections: dict[str, float | str] = Field(
        default_factory=dict, description="standing correction inputs; a month's manual input overrides them"
    )


class LimitOverride(_Section):
    """The levels of one indicator of a limit entry (variant '' where the entry has one table)."""

    key: str
    variant: str = ""
    indicator: str
    grades: tuple[float, float | None, float] = Field(description="grade 1, grade 2 (null: none), grade 3 (limit)")
    source: str = Field(min_length=3)
    year: int = Field(ge=1990, le=2100)


class Material(_Section):
    """A material of the carbon mass balance beyond the accounting's (e.g. purchased ferroalloys)."""

    id: ID
    unit: str = Field(min_length=1)


class EtsProcess(_Section):
    """A process (工序) of the carbon market's steel guideline: the accounting units whose books feed
    it, and the carbon-bearing materials entering and leaving beyond what the books meter."""

    id: ID
    name: str = Field(min_length=1)
    captive_power_plant: bool = Field(False, description="a captive power plant is accounted as its own process")
    units: list[ID] = Field(default_factory=list, description="accounting units (assets) of this process")
    inputs: list[ID] = Field(default_factory=list, description="materials entering, besides the units' consumables")
    outputs: list[ID] = Field(default_factory=list, description="by-products, slag, dust leaving (monthly inputs)")
    product_carbon: bool = Field(True, description="carbon leaving in the units' products is subtracted")


class Ets(_Section):
    enterprise: str | None = Field(None, description="name of the reporting enterprise; default: the site's name")
    processes: list[EtsProcess] = Field(default_factory=list)


class Precursor(_Section):
    material: ID
    cn: CN_CODE


class CbamGood(_Section):
    product: PRODUCT_ID
    cn: CN_CODE | None = Field(None, description="default: by product id where unambiguous (FeCr, FeMn)")
    precursors: list[Precursor] = Field(default_factory=list, description="purchased pig iron, DRI, ferroalloys")
    inputs: list[ID] = Field(default_factory=list, description="carbon-bearing materials besides the books'")
    outputs: list[ID] = Field(default_factory=list, description="by-products, slag, dust leaving")


class CbamDefault(_Section):
    cn: CN_CODE
    value: float = Field(ge=0)
    unit: str = Field("tCO2e/t", pattern=r"^tCO2e/t$")
    source: str = Field(min_length=3)
    year: int = Field(ge=2020, le=2100)
    verified: bool = True


class Cbam(_Section):
    installation: str | None = Field(None, description="installation name; default: the site's name")
    goods: list[CbamGood] = Field(default_factory=list)
    defaults: list[CbamDefault] = Field(default_factory=list, description="country default values from the annex")


class Footprint(_Section):
    electricity: SourcedValue | None = Field(None, description="electricity carbon-footprint factor, kgCO2e/kWh")
    upstream: dict[str, SourcedValue] = Field(
        default_factory=dict, description="cradle-to-gate factor of each input material, kgCO2e per material unit"
    )


class ComplianceConfig(_Section):
    inputs_path: Path | None = Field(
        None, description="SQLite file of the monthly manual inputs and their audit trail (kept across restarts)"
    )
    check_interval_s: float = Field(300.0, ge=5, description="how often rolling grades are checked for alarms")
    products: list[ProductLimit] = Field(default_factory=list, description="default: every product, by its id")
    limits: list[LimitOverride] = Field(default_factory=list)
    materials: list[Material] = Field(default_factory=list)
    carbon_content: dict[str, SourcedValue] = Field(
        default_factory=dict, description="standing carbon content by material or product, tC per unit"
    )
    ets: Ets = Field(default_factory=Ets)
    cbam: Cbam = Field(default_factory=Cbam)
    footprint: Footprint = Field(default_factory=Footprint)

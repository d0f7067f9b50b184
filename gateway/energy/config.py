"""The plant file's `accounting:` section: products, accounting units, allocation rules, balance
groups, shift calendar, grid choice, green-power purchases and factor overrides.

Only the shape is checked here; references to assets and meters and the resolution of every
factor (reference data + overrides) happen in `model.resolve`, which reports each problem with
its YAML path so `ferrogate check-config` can print file, line and reason.
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ID = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
# products and benchmark keys follow the reference data's spelling (SiMn, FeSi75, HC_FeCr, ...)
PRODUCT_ID = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_/]{0,62}$")]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FactorValue(_Section):
    """A site-specific factor: value, unit, source document and year are all required."""

    value: float
    unit: str = Field(min_length=1)
    source: str = Field(min_length=3)
    year: int = Field(ge=1990, le=2100)
    note: str = ""


class GridFactorValue(FactorValue):
    level: Literal["province", "region", "national", "national_residual"]
    name: str = Field("China", description="province or region name; 'China' for national levels")


class BenchmarkValue(_Section):
    key: PRODUCT_ID
    edition: Literal["2021", "2023"]
    benchmark: float
    baseline: float
    source: str = Field(min_length=3)
    year: int = Field(ge=1990, le=2100)

    @model_validator(mode="after")
    def _order(self) -> BenchmarkValue:
        if self.benchmark > self.baseline:
            raise ValueError("benchmark (标杆) must be <= baseline (基准)")
        return self


class FactorOverrides(_Section):
    coefficients: dict[str, FactorValue] = Field(default_factory=dict, description="kgce per unit, by material id")
    emission: dict[str, FactorValue] = Field(default_factory=dict, description="tCO2 per unit, by material id")
    product_carbon: dict[str, FactorValue] = Field(default_factory=dict, description="tCO2/t fixed in the product")
    electricity: FactorValue | None = Field(None, description="kgce/kWh; required for electricity_method equal_value")
    grid: list[GridFactorValue] = Field(default_factory=list)
    benchmarks: list[BenchmarkValue] = Field(default_factory=list)


class MaterialDefinition(_Section):
    """A site material beyond the reference data (its factors go under `factors`)."""

    id: ID
    unit: str = Field(min_length=1)
    energy_carrier: bool
    emits: bool
    kind: Literal["combustion", "process", "heat"] = "process"


class Product(_Section):
    id: PRODUCT_ID
    benchmark: PRODUCT_ID | Literal["none"] | None = Field(
        None, description="benchmark key in the reference data; default: the product's own; 'none' = no benchmark"
    )
    carbon_fixed: Literal["reference", "none"] = Field(
        "reference", description="subtract carbon bound in the product with the reference factor, or not at all"
    )


class ProductionKind(StrEnum):
    taps = "taps"  # tap_counter + tap_weight (+ tap_time): EAF heats, submerged-arc furnace taps
    product_counter = "product_counter"  # cumulative tonnes of a continuous process


class Consumable(_Section):
    """A material the unit consumes: from a cumulative counter (`meter: asset.role`) or a specific
    consumption per tonne of product (`per_tonne`, in the material's unit per t)."""

    material: ID
    meter: str | None = None
    per_tonne: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _one_source(self) -> Consumable:
        if (self.meter is None) == (self.per_tonne is None):
            raise ValueError("give exactly one of 'meter' (asset.role) or 'per_tonne'")
        if self.meter is not None and not re.match(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$", self.meter):
            raise ValueError(f"meter {self.meter!r} is not 'asset_id.role'")
        return self


class Unit(_Section):
    """An accounting unit: an asset that makes a product, and the energy it is charged with."""

    asset: ID
    product: PRODUCT_ID | None = Field(None, description="default: the asset's product")
    production: ProductionKind = ProductionKind.taps
    electricity: list[ID] | None = Field(None, description="assets whose electricity counts; default: [asset]")
    waste_heat: list[ID] = Field(default_factory=list, description="generators whose output is netted off")
    consumables: list[Consumable] = Field(default_factory=list)


class AllocationRule(StrEnum):
    fixed_shares = "fixed_shares"  # the shared meter's whole energy by fixed fractions
    pro_rata_remainder = "pro_rata_remainder"  # shared minus targets' own meters, pro rata to their energy


class Allocation(_Section):
    id: ID
    meter: ID = Field(description="asset whose electricity meter is shared")
    rule: AllocationRule
    shares: dict[ID, float] = Field(default_factory=dict, description="fixed_shares: unit -> fraction")
    targets: list[ID] = Field(default_factory=list, description="pro_rata_remainder: units with own meters")

    @model_validator(mode="after")
    def _rule_fields(self) -> Allocation:
        if self.rule is AllocationRule.fixed_shares:
            if not self.shares or self.targets:
                raise ValueError("fixed_shares needs 'shares' (unit: fraction) and no 'targets'")
            if any(v < 0 for v in self.shares.values()):
                raise ValueError("shares must be >= 0")
            if abs(sum(self.shares.values()) - 1.0) > 1e-6:
                raise ValueError(f"shares must sum to 1 (they sum to {sum(self.shares.values()):g})")
        elif not self.targets or self.shares:
            raise ValueError("pro_rata_remainder needs 'targets' (units with their own meters) and no 'shares'")
        return self


class BalanceGroup(_Section):
    id: ID
    main: ID = Field(description="asset of the main incomer meter")
    members: list[ID] = Field(min_length=1, description="assets whose sub-meters should add up to the main")
    generators: list[ID] = Field(default_factory=list, description="generation inside the boundary, added to the main")
    max_loss_percent: float = Field(5.0, ge=0, le=100)


class GreenPower(_Section):
    """Green electricity bought (green certificates / green-power trading) for a period."""

    start: date
    end: date = Field(description="exclusive")
    kwh: float = Field(gt=0)
    certificate: str = Field(min_length=1, description="certificate or contract reference")

    @model_validator(mode="after")
    def _span(self) -> GreenPower:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class Shift(_Section):
    name: str = Field(min_length=1)
    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM, plant local time")


class Calendar(_Section):
    """Shifts in plant-local time; the production day starts with the first shift."""

    timezone: str | None = Field(None, description="default: the site's time zone")
    shifts: list[Shift] = Field(
        default_factory=lambda: [
            Shift(name="A", start="00:00"),
            Shift(name="B", start="08:00"),
            Shift(name="C", start="16:00"),
        ],
        min_length=1,
    )

    @field_validator("shifts")
    @classmethod
    def _increasing(cls, value: list[Shift]) -> list[Shift]:
        starts = [s.start for s in value]
        if starts != sorted(set(starts)):
            raise ValueError("shift starts must be distinct and in increasing order within the day")
        return value


class Grid(_Section):
    year: int | None = Field(None, description="factor year; default: the period's year")
    province: str | None = Field(None, description="default: site.province")
    region: str | None = None


class ElectricityMethod(StrEnum):
    equivalent = "equivalent"  # 当量值, GB/T 2589-2020 default
    equal_value = "equal_value"  # 等价值: needs factors.electricity


class AccountingConfig(_Section):
    electricity_method: ElectricityMethod = ElectricityMethod.equivalent
    benchmark_edition: Literal["auto", "2021", "2023"] = "auto"
    interval_s: int = Field(900, description="bucket of the derived interval-energy series")
    jump_tolerance: float = Field(0.10, ge=0, le=10, description="counter delta allowed above rated x elapsed")
    power_check_tolerance: float = Field(
        0.10,
        ge=0,
        le=10,
        description="counter vs integrated active power: disagreement allowed beyond a load step, x rated x elapsed",
    )
    power_gap_s: float = Field(120.0, gt=0, description="power integration: a longer gap is Uncertain")
    interpolation_gap_s: float = Field(
        300.0, gt=0, description="a heat or bucket edge interpolated inside a longer counter gap is Uncertain"
    )
    tap_lookback_h: float = Field(12.0, gt=0, description="how far before a period to look for the previous tap")
    max_wait_s: float = Field(300.0, gt=0, description="how long the books wait for a late meter")
    max_clock_ahead_s: float = Field(
        300.0, gt=0, description="readings whose device clock is further ahead of the gateway's are left out"
    )
    incomer: ID | None = Field(None, description="asset of the plant's grid connection (purchased electricity)")
    grid: Grid = Field(default_factory=Grid)
    calendar: Calendar = Field(default_factory=Calendar)
    products: list[Product] = Field(min_length=1)
    units: list[Unit] = Field(min_length=1)
    allocations: list[Allocation] = Field(default_factory=list)
    balances: list[BalanceGroup] = Field(default_factory=list)
    green_power: list[GreenPower] = Field(default_factory=list)
    materials: list[MaterialDefinition] = Field(default_factory=list)
    factors: FactorOverrides = Field(default_factory=FactorOverrides)

    @field_validator("interval_s")
    @classmethod
    def _divides_hour(cls, value: int) -> int:
        if value < 60 or 3600 % value:
            raise ValueError("must be at least 60 and divide 3600 (e.g. 300, 900, 3600)")
        return value

    @model_validator(mode="after")
    def _shifts_on_buckets(self) -> AccountingConfig:
        # period sums add whole buckets, so every shift must start on a bucket boundary
        for shift in self.calendar.shifts:
            hours, minutes = (int(x) for x in shift.start.split(":"))
            if (hours * 3600 + minutes * 60) % self.interval_s:
                raise ValueError(f"shift {shift.name!r} starts at {shift.start}, not on a {self.interval_s} s boundary")
        return self

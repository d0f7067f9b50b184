"""The plant file's `cost:` section: electricity tariffs (time-of-use periods by month and day type
with their prices, effective dates, demand or capacity charges), efficiency surcharges, and the live
demand alarm.

No tariff is built in: a plant without this section has no cost figures, and every tariff names its
source document and whether its figures were checked against it (`verified`). Only the shape is
checked here; whether each day's bands cover 00:00-24:00 without gap or overlap, whether every month
and day type has exactly one schedule, and the references to the accounting section are checked in
`cost.model.resolve_cost`, which names the YAML path of each problem.
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from ferrogate.gateway.energy.config import ID, PRODUCT_ID
from ferrogate.gateway.positions import SCALE_POSITIONS, PositionScale

HHMM = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


def _clock(value: str) -> str:
    if not HHMM.fullmatch(value):
        raise ValueError(f"{value!r} is not a time of day HH:MM (00:00-23:59)")
    return value


def _clock_end(value: str) -> str:
    return value if value == "24:00" else _clock(value)


Clock = Annotated[str, AfterValidator(_clock)]
ClockEnd = Annotated[str, AfterValidator(_clock_end)]
Month = Annotated[int, Field(ge=1, le=12)]
IsoWeekday = Annotated[int, Field(ge=1, le=7, description="1 = Monday ... 7 = Sunday")]
# the demand interval of Chinese revenue meters (最大需量 over 15 minutes): the default window
DEMAND_WINDOW_S = 900


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TouPeriod(StrEnum):
    """Time-of-use periods of Chinese provincial tariffs (分时电价)."""

    sharp = "sharp"  # 尖峰
    peak = "peak"  # 峰
    flat = "flat"  # 平
    valley = "valley"  # 谷
    deep_valley = "deep_valley"  # 深谷


VALLEY_PERIODS = frozenset({TouPeriod.valley, TouPeriod.deep_valley})


class DayType(StrEnum):
    workday = "workday"
    weekend = "weekend"  # cost.weekend_days
    holiday = "holiday"  # cost.holidays


class SourceDocument(_Section):
    """Where a tariff's or surcharge's figures come from."""

    document: str = Field(min_length=3, description="title and number of the notice or policy")
    issuer: str = ""
    year: int = Field(ge=1990, le=2100)
    verified: bool = Field(description="true only if every figure was checked against the document's text")
    note: str = ""


class Band(_Section):
    """One stretch of the day in plant-local time, [start, end)."""

    start: Clock = Field(description="HH:MM")
    end: ClockEnd = Field(description="HH:MM, 24:00 for midnight")
    period: TouPeriod


class Schedule(_Section):
    """The day's bands for some months and day types."""

    months: list[Month] = Field(min_length=1)
    day_types: list[DayType] = Field(default_factory=lambda: list(DayType), min_length=1)
    bands: list[Band] = Field(min_length=1, description="in order, covering 00:00-24:00 without gap or overlap")


class PeriodPrice(_Section):
    period: TouPeriod
    yuan_per_kwh: float = Field(ge=0)
    label: str = Field("", description="as the tariff names it, e.g. 谷段")


class OverContract(_Section):
    """Demand above `above_percent` % of the contracted maximum demand is charged at `multiplier`
    times the demand price (as the plant's contract or tariff notice states it)."""

    above_percent: float = Field(gt=0)
    multiplier: float = Field(ge=1)


class DemandCharge(_Section):
    """基本电费: by maximum demand (yuan per kW of the month's highest `window_s` average) or by
    capacity (yuan per kVA of installed/contracted transformer capacity), per month."""

    basis: Literal["max_demand", "capacity"]
    yuan_per_kw_month: float | None = Field(None, ge=0, description="max_demand basis")
    contracted_kw: float | None = Field(None, gt=0, description="合同最大需量 (max_demand basis)")
    minimum_kw: float | None = Field(None, ge=0, description="billed demand is never below this")
    over_contract: OverContract | None = None
    yuan_per_kva_month: float | None = Field(None, ge=0, description="capacity basis")
    capacity_kva: float | None = Field(None, gt=0, description="capacity basis")
    window_s: int = Field(DEMAND_WINDOW_S, ge=60, le=3600, description="demand window of the revenue meter")

    @model_validator(mode="after")
    def _basis_fields(self) -> DemandCharge:
        by_demand = ("yuan_per_kw_month", "contracted_kw", "minimum_kw", "over_contract")
        by_capacity = ("yuan_per_kva_month", "capacity_kva")
        if self.basis == "max_demand":
            if self.yuan_per_kw_month is None:
                raise ValueError("basis max_demand needs yuan_per_kw_month")
            wrong = [f for f in by_capacity if getattr(self, f) is not None]
        else:
            if self.yuan_per_kva_month is None or self.capacity_kva is None:
                raise ValueError("basis capacity needs yuan_per_kva_month and capacity_kva")
            wrong = [f for f in by_demand if getattr(self, f) is not None]
        if wrong:
            raise ValueError(f"{', '.join(wrong)} do not apply to basis {self.basis}")
        if self.over_contract is not None and self.contracted_kw is None:
            raise ValueError("over_contract needs contracted_kw")
        return self


class Tariff(_Section):
    """One edition of the plant's tariff, in force from `effective_from` (plant-local date) until the
    next edition's date."""

    id: ID
    name: str = Field(min_length=1)
    effective_from: date
    source: SourceDocument
    prices: list[PeriodPrice] = Field(min_length=1)
    schedules: list[Schedule] = Field(min_length=1)
    demand_charge: DemandCharge | None = None


class SurchargeRate(_Section):
    position: ID
    yuan_per_kwh: float = Field(ge=0)


class DeclaredPosition(_Section):
    position: ID
    as_of: date
    source: str = Field(min_length=3, description="the assessment, e.g. the energy-conservation supervision result")


class FallbackPosition(_Section):
    """The position a `limit_grade` rule takes when the compliance layer has no grade for the product's
    month (nothing produced, a correction input missing, no limit entry)."""

    position: ID
    source: str = Field(min_length=3, description="why this position, e.g. the last supervision result")


class Surcharge(_Section):
    """Tiered (阶梯) or differentiated (差别) electricity price: a surcharge per kWh by the products'
    efficiency position, rates listed from the best position to the worst."""

    id: ID
    name: str = Field(min_length=1)
    products: list[PRODUCT_ID] = Field(min_length=1)
    position_from: PositionScale
    rates: list[SurchargeRate] = Field(min_length=1, description="best position first")
    declared: DeclaredPosition | None = None
    fallback: FallbackPosition | None = Field(None, description="position_from limit_grade: when there is no grade")
    source: SourceDocument

    @model_validator(mode="after")
    def _positions(self) -> Surcharge:
        names = [r.position for r in self.rates]
        if len(set(names)) != len(names):
            raise ValueError("rates: each position once")
        scale = SCALE_POSITIONS.get(self.position_from)
        if scale is not None and names != list(scale):
            raise ValueError(f"rates: position_from {self.position_from.value} has positions {list(scale)}, in order")
        values = [r.yuan_per_kwh for r in self.rates]
        if values != sorted(values):
            raise ValueError("rates: list the best position first; a worse position cannot pay less")
        if (self.declared is None) == (self.position_from is PositionScale.declared):
            raise ValueError("'declared' goes with position_from declared (and only there)")
        if self.declared is not None and self.declared.position not in names:
            raise ValueError(f"declared position {self.declared.position!r} is not one of the rates' {names}")
        if self.fallback is not None and self.position_from is not PositionScale.limit_grade:
            raise ValueError("'fallback' goes with position_from limit_grade (and only there)")
        if self.fallback is not None and self.fallback.position not in names:
            raise ValueError(f"fallback position {self.fallback.position!r} is not one of the rates' {names}")
        return self


class DemandAlarm(_Section):
    """Live 15-minute demand forecast against a maximum (alarms `demand_forecast_high`)."""

    limit_kw: float | None = Field(None, gt=0, description="default: the tariff's contracted_kw")
    warn_percent: float = Field(95.0, gt=0, le=100, description="warning from this % of the limit")
    clear_percent: float = Field(90.0, gt=0, le=100, description="cleared below this % (no flapping at the edge)")
    lead_s: float = Field(300.0, ge=0, description="forecast the next window too once fewer seconds remain")
    min_elapsed_s: float = Field(60.0, ge=0, description="no forecast in the first seconds of a window")

    @model_validator(mode="after")
    def _hysteresis(self) -> DemandAlarm:
        if self.clear_percent >= self.warn_percent:
            raise ValueError("clear_percent must be below warn_percent")
        return self


class CostConfig(_Section):
    meter: ID | None = Field(None, description="asset of the billing meter; default accounting.incomer")
    weekend_days: list[IsoWeekday] = Field(default_factory=lambda: [6, 7], description="day type 'weekend'")
    holidays: list[date] = Field(default_factory=list, description="day type 'holiday' (plant-local dates)")
    tariffs: list[Tariff] = Field(min_length=1)
    surcharges: list[Surcharge] = Field(default_factory=list)
    demand_alarm: DemandAlarm | None = None

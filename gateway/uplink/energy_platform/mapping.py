"""A platform's mapping file: which indicators it takes under which item codes, in which units and
for which periods (docs/energy-platform.md "Mapping file"). Provinces publish their own codes, so
the codes live here, not in the code.

    format: ferrogate-energy-platform-mapping/1
    platform: "EXAMPLE provincial platform"
    example: true                 # an illustration, not read from a province's access document
    enterprise_code: "91520000EXAMPLE0001"
    items:
      - {code: "10000", indicator: comprehensive, unit: tce, periods: [quarter, day, month]}
      - {code: "11000", indicator: electricity, unit: "10^4 kWh", periods: [quarter, day, month]}
      - {code: "12000", indicator: material, material: coke, unit: t, periods: [day, month]}
      - {code: "20001", indicator: output, product: SiMn, unit: t, periods: [day, month]}
      - {code: "30001", indicator: unit_consumption, product: SiMn, unit: kgce/t, periods: [day, month]}
      - {code: "90000", indicator: completeness, unit: "%", periods: [quarter, day, month]}

Periods start at 00:00 local time (the site's zone): quarter-hours on :00/:15/:30/:45, days at
midnight, months on the 1st at midnight.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ferrogate.gateway.energy.model import UNITS, AccountingModel

FORMAT = "ferrogate-energy-platform-mapping/1"
Kind = Literal["quarter", "day", "month"]
KINDS: tuple[Kind, ...] = ("quarter", "day", "month")
Indicator = Literal["comprehensive", "electricity", "material", "output", "unit_consumption", "completeness"]
# indicators that add up over time: the sum of a period's parts must match it (quality rule)
ADDITIVE = frozenset({"comprehensive", "electricity", "material", "output"})
# the platform units each indicator may be sent in, beyond the energy model's own (kWh, t, m3, MJ ...):
# name -> (dimension, multiplier to the dimension's base unit)
EXTRA_UNITS: dict[str, tuple[str, float]] = {
    "10^4 kWh": ("energy", 1e4),
    "10^4 t": ("mass", 1e4),
    "10^4 m3": ("volume", 1e4),
    "kgce": ("coal", 1.0),
    "tce": ("coal", 1e3),
    "kgce/t": ("coal_per_t", 1.0),
    "tce/t": ("coal_per_t", 1e3),
    "kWh/t": ("energy_per_t", 1.0),
    "%": ("percent", 1.0),
}
ALL_UNITS: dict[str, tuple[str, float]] = {**UNITS, **EXTRA_UNITS}
Code = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]{1,40}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MappingItem(_Strict):
    code: Code = Field(description="the platform's item code")
    indicator: Indicator
    unit: str = Field(description="the unit the platform wants the value in")
    periods: list[Kind] = Field(min_length=1)
    material: str | None = Field(None, description="indicator material: the accounting material id")
    product: str | None = Field(None, description="indicator output / unit_consumption: the product id")
    basis: Literal["consumption", "purchased", "kgce_per_t", "kwh_per_t"] | None = Field(
        None,
        description="electricity: consumption (default), purchased; unit_consumption: kgce_per_t (default), kwh_per_t",
    )

    @model_validator(mode="after")
    def _shape(self) -> MappingItem:
        needs = {"material": "material", "output": "product", "unit_consumption": "product"}.get(self.indicator)
        for key in ("material", "product"):
            if (getattr(self, key) is not None) != (needs == key):
                raise ValueError(
                    f"indicator {self.indicator} " + (f"needs '{key}'" if needs == key else f"takes no '{key}'")
                )
        allowed = {"electricity": ("consumption", "purchased"), "unit_consumption": ("kgce_per_t", "kwh_per_t")}
        if self.basis is not None and self.basis not in allowed.get(self.indicator, ()):
            raise ValueError(f"basis {self.basis!r} does not go with indicator {self.indicator}")
        if self.unit not in ALL_UNITS:
            raise ValueError(f"unknown unit {self.unit!r}; one of {sorted(ALL_UNITS)}")
        if len(set(self.periods)) != len(self.periods):
            raise ValueError("a period is named twice")
        return self


class MappingFile(_Strict):
    format: Literal["ferrogate-energy-platform-mapping/1"]
    platform: str = Field(min_length=1, description="the platform's name, as its operator calls it")
    example: bool = Field(description="true: an illustration, not taken from the platform's access document")
    source: str = Field("", description="the document (or person) the codes were taken from")
    enterprise_code: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,40}$", description="the plant's id on the platform")
    decimals: int = Field(4, ge=0, le=9, description="values are rounded to this many decimals")
    items: list[MappingItem] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_codes(self) -> MappingFile:
        seen: set[str] = set()
        for item in self.items:
            if item.code in seen:
                raise ValueError(f"item code {item.code!r} is used twice")
            seen.add(item.code)
        return self


@dataclass(frozen=True, slots=True)
class Item:
    """A mapping item resolved against the books: how to scale the native figure to the platform's unit."""

    code: str
    indicator: str
    unit: str
    periods: tuple[Kind, ...]
    subject: str  # material or product id; "" for plant-wide indicators
    basis: str
    scale: float  # platform value = native value x scale

    @property
    def additive(self) -> bool:
        return self.indicator in ADDITIVE


@dataclass(frozen=True, slots=True)
class PlatformMapping:
    platform: str
    example: bool
    source: str
    enterprise_code: str
    decimals: int
    items: tuple[Item, ...]

    def items_for(self, kind: Kind) -> list[Item]:
        return [item for item in self.items if kind in item.periods]


def _native_unit(item: MappingItem, material_units: Mapping[str, str]) -> str:
    if item.indicator == "comprehensive":
        return "kgce"
    if item.indicator == "electricity":
        return "kWh"
    if item.indicator == "material":
        return material_units[item.material or ""]
    if item.indicator == "output":
        return "t"
    if item.indicator == "unit_consumption":
        return "kWh/t" if item.basis == "kwh_per_t" else "kgce/t"
    return "%"


def resolve_mapping(raw: MappingFile, model: AccountingModel) -> tuple[PlatformMapping | None, list[str]]:
    """The mapping checked against the plant's books: materials and products exist, units convert."""
    problems: list[str] = []
    units = {m: mat.unit for m, mat in model.materials.items()}
    items: list[Item] = []
    for i, item in enumerate(raw.items):
        where = f"items[{i}] ({item.code})"
        if item.material is not None and item.material not in units:
            problems.append(f"{where}.material: no material {item.material!r} in the accounting section")
            continue
        if item.product is not None and item.product not in model.products:
            problems.append(f"{where}.product: no product {item.product!r} in the accounting section")
            continue
        native = _native_unit(item, units)
        a, b = ALL_UNITS.get(native), ALL_UNITS[item.unit]
        if a is None or a[0] != b[0]:
            problems.append(f"{where}.unit: {item.indicator} is in {native}; it cannot be sent in {item.unit!r}")
            continue
        default_basis = {"electricity": "consumption", "unit_consumption": "kgce_per_t"}.get(item.indicator, "")
        items.append(
            Item(
                item.code,
                item.indicator,
                item.unit,
                tuple(k for k in KINDS if k in item.periods),
                item.material or item.product or "",
                item.basis or default_basis,
                a[1] / b[1],
            )
        )
    if problems:
        return None, problems
    mapping = PlatformMapping(raw.platform, raw.example, raw.source, raw.enterprise_code, raw.decimals, tuple(items))
    return mapping, []


def read_mapping_file(path: Path) -> tuple[MappingFile | None, list[str]]:
    """The file parsed and shape-checked; problems as 'field: why'."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        return None, [f"cannot read: {exc.strerror}"]
    except yaml.YAMLError as exc:
        return None, [f"not valid YAML: {exc}"]
    try:
        return MappingFile.model_validate(data), []
    except ValidationError as exc:
        return None, [
            f"{'.'.join(str(p) for p in err['loc']) or '(file)'}: {err['msg']}" for err in exc.errors(include_url=False)
        ]


def load_mapping(path: Path, model: AccountingModel) -> tuple[PlatformMapping | None, list[str]]:
    raw, problems = read_mapping_file(path)
    if raw is None:
        return None, problems
    return resolve_mapping(raw, model)

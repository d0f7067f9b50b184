"""Monthly manual inputs: what may be entered (laboratory values, unmetered consumptions, the
standards' corrections), how each is checked, and values that carry where they came from.

A value used by the compliance layer is a `Sourced`: the number (or class) with its unit and
provenance, whether it was entered for the month (who, when, which document), given in the plant
file, or taken from the reference data. Pure: the store that keeps inputs is elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ferrogate.gateway.compliance.reference import CHOICES
from ferrogate.gateway.energy.reference import Factor
from ferrogate.gateway.timeutil import iso_utc


class SubjectKind(StrEnum):
    product = "product"  # an accounting product id, e.g. SiMn
    material = "material"  # a material id (or a product id: carbon leaving in the product)
    unit_material = "unit_material"  # "<accounting unit>/<material>", e.g. eaf1/scrap


@dataclass(frozen=True, slots=True)
class InputSpec:
    name: str
    label: str
    subject: SubjectKind
    unit: str  # "{unit}" is the material's unit
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()

    def unit_for(self, material_unit: str | None) -> str:
        return self.unit.replace("{unit}", material_unit or "?")


INPUTS: dict[str, InputSpec] = {
    s.name: s
    for s in (
        # corrections of the limit standards (subject: product)
        InputSpec("ore_grade_percent", "入炉矿品位 charged-ore grade", SubjectKind.product, "%", 0, 100),
        InputSpec("cr_fe_ratio", "铬铁比 Cr/Fe ratio of the ore", SubjectKind.product, "1", 0, 50),
        InputSpec(
            "eaf_size_class", "电炉公称容量 EAF size class", SubjectKind.product, "", choices=CHOICES["eaf_size_class"]
        ),
        InputSpec("hot_metal_ratio_percent", "铁水比 hot-metal ratio", SubjectKind.product, "%", 0, 100),
        InputSpec(
            "steel_grade_class",
            "钢种 steel grade class",
            SubjectKind.product,
            "",
            choices=CHOICES["steel_grade_class"],
        ),
        InputSpec("reductant", "主要还原剂 main reductant", SubjectKind.product, "", choices=CHOICES["reductant"]),
        # laboratory values (subject: material, or a product for the carbon it carries out)
        InputSpec("carbon_content", "含碳量 carbon content", SubjectKind.material, "tC/{unit}", 0, 1),
        InputSpec("ncv", "低位发热量 net calorific value", SubjectKind.material, "GJ/{unit}", 0, 100),
        InputSpec("carbon_per_gj", "单位热值含碳量 carbon per unit of heat", SubjectKind.material, "tC/GJ", 0, 0.1),
        InputSpec(
            "supplier_see",
            "供应商隐含排放 supplier's specific embedded emissions",
            SubjectKind.material,
            "tCO2e/t",
            0,
            100,
        ),
        # monthly quantities the meters do not give (subject: unit/material)
        InputSpec(
            "consumption", "月消耗量 monthly consumption (not metered)", SubjectKind.unit_material, "{unit}", 0, 1e9
        ),
        InputSpec("output", "月产出量 by-product, slag or dust leaving", SubjectKind.unit_material, "{unit}", 0, 1e9),
    )
}
CORRECTIONS = tuple(n for n, s in INPUTS.items() if s.subject is SubjectKind.product)


class InputError(ValueError):
    """A manual input that cannot be taken: `code` is machine-readable (the API's 4xx)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def check_value(spec: InputSpec, value: float | str) -> float | str:
    """The value in its checked form: a class name from the choices, or a finite number in range."""
    if spec.choices:
        if value not in spec.choices:
            raise InputError("bad_value", f"{spec.name} must be one of {list(spec.choices)}, not {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError("bad_value", f"{spec.name} must be a number, not {value!r}")
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        raise InputError("bad_value", f"{spec.name} must be a finite number")
    if (spec.minimum is not None and number < spec.minimum) or (spec.maximum is not None and number > spec.maximum):
        raise InputError("out_of_range", f"{spec.name} must lie in [{spec.minimum:g}, {spec.maximum:g}] {spec.unit}")
    return number


@dataclass(frozen=True, slots=True)
class InputValue:
    """One manual input of one month, as stored."""

    month: str  # YYYY-MM
    subject: str
    name: str
    value: float | str
    unit: str
    source: str  # the document: lab report, weighbridge summary, supplier declaration
    note: str
    entered_by: str  # API key name
    entered_at_ns: int

    def provenance(self) -> dict[str, Any]:
        return {
            "origin": "manual",
            "month": self.month,
            "value": self.value,
            "unit": self.unit,
            "source": self.source,
            "note": self.note,
            "entered_by": self.entered_by,
            "entered_at": iso_utc(self.entered_at_ns),
            "verified": True,
        }

    def as_dict(self) -> dict[str, Any]:
        """The input as the API and the reports list it."""
        return {"subject": self.subject, "name": self.name, **self.provenance()}


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change of a manual input: who, when, old and new value (append-only)."""

    id: int
    month: str
    subject: str
    name: str
    action: str  # set, delete
    old_value: float | str | None
    new_value: float | str | None
    unit: str
    source: str
    entered_by: str
    at_ns: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "month": self.month,
            "subject": self.subject,
            "name": self.name,
            "action": self.action,
            "old_value": self.old_value,
            "new_value": self.new_value,
            "unit": self.unit,
            "source": self.source,
            "entered_by": self.entered_by,
            "at": iso_utc(self.at_ns),
        }


@dataclass(frozen=True, slots=True)
class Sourced:
    """A value the compliance layer uses, with where it came from."""

    value: float | str
    unit: str
    provenance: dict[str, Any]

    @property
    def number(self) -> float:
        assert not isinstance(self.value, str), self.value
        return self.value

    @property
    def verified(self) -> bool:
        return bool(self.provenance.get("verified", True))

    @classmethod
    def of_factor(cls, f: Factor, origin: str = "reference") -> Sourced:
        return cls(
            f.value, f.unit, {"origin": "plant_file" if f.confidence == "configured" else origin, **f.provenance()}
        )

    @classmethod
    def of_input(cls, v: InputValue) -> Sourced:
        return cls(v.value, v.unit, v.provenance())


@dataclass(slots=True)
class MonthInputs:
    """The manual inputs of one month by (subject, name)."""

    month: str
    values: dict[tuple[str, str], InputValue] = field(default_factory=dict)

    def get(self, subject: str, name: str) -> InputValue | None:
        return self.values.get((subject, name))

    def sourced(self, subject: str, name: str) -> Sourced | None:
        v = self.values.get((subject, name))
        return None if v is None else Sourced.of_input(v)

    @classmethod
    def of(cls, month: str, values: list[InputValue]) -> MonthInputs:
        return cls(month, {(v.subject, v.name): v for v in values if v.month == month})

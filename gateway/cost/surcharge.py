"""Tiered and differentiated electricity prices (阶梯电价, 差别电价): a surcharge per kWh that depends
on the product's energy-efficiency position, and what moving one position better would save.

The position is an input (`Position`): from the books' benchmark status of the product's month
(标杆/基准), from a limit-grade assessment (GB 21341 / GB 21256 / GB 21347 grades, computed by the
compliance layer when it is there), or as an authority declared it in the plant file. The rule only
needs its name; where it came from travels with it into the figures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from ferrogate.gateway.cost.config import PositionScale, Surcharge
from ferrogate.gateway.energy.aggregate import Period

NO_POSITION = "no_position"  # the position is not known (no assessment, no production, no benchmark)


class Origin(StrEnum):
    """Who decided a position: the reader of a surcharge asks this first."""

    energy_books = "energy_books"  # the books' benchmark status of the month
    compliance = "compliance"  # the compliance layer's limit grade of the month
    plant_file = "plant_file"  # a declared position, or a rule's fallback when there is no grade


@dataclass(frozen=True, slots=True)
class Position:
    name: str  # at_or_better_than_benchmark, between, ..., grade_2, or a declared position
    scale: PositionScale
    source: str  # what decided it, for the reader of the figure
    origin: Origin
    # the next better position where the assessment knows it (a standard without a grade-1 level has
    # no better grade than 2); next_known False: the rule's previous rate
    next_position: str | None = None
    next_known: bool = False


# (surcharge rule, product id, month) -> the product's position on the rule's scale, or None
PositionInput = Callable[[Surcharge, str, Period], Position | None]


@dataclass(slots=True)
class SurchargeResult:
    surcharge: str
    product: str
    kwh: float
    position: Position | None
    yuan_per_kwh: float | None
    surcharge_yuan: float | None
    better_position: str | None  # one position better, if there is one
    better_yuan_per_kwh: float | None
    saving_one_grade_yuan: float | None  # surcharge_yuan at the better position's rate, less
    flags: set[str] = field(default_factory=set)


def assess(rule: Surcharge, product: str, kwh: float, position: Position | None) -> SurchargeResult:
    """The surcharge on `kwh` at the position's rate; unknown or off-scale position: no figure, flagged."""
    names = [r.position for r in rule.rates]
    if position is None or position.name not in names:
        flags = {NO_POSITION} if position is None else {NO_POSITION, f"position:{position.name}"}
        return SurchargeResult(rule.id, product, kwh, position, None, None, None, None, None, flags)
    i = names.index(position.name)
    rate = rule.rates[i].yuan_per_kwh
    result = SurchargeResult(rule.id, product, kwh, position, rate, kwh * rate, None, None, None)
    if position.next_known:
        j = names.index(position.next_position) if position.next_position in names else None
    else:
        j = i - 1 if i > 0 else None
    if j is not None and j < i:
        better = rule.rates[j]
        result.better_position, result.better_yuan_per_kwh = better.position, better.yuan_per_kwh
        result.saving_one_grade_yuan = kwh * (rate - better.yuan_per_kwh)
    return result

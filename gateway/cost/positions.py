"""Where a product's efficiency position comes from (the input of the surcharge rules).

- `benchmark`: the energy books' benchmark status of the product's month (`energy_kpi` fields
  `benchmark_status`, `kgce_per_t` and the levels), live as the month goes on;
- `declared`: the position an authority assessed, as the plant file states it, from its `as_of` date;
- `limit_grade`: a limit-grade assessment (grades `grade_1` ... `grade_3`, `above_limit`) supplied by
  the caller as a `PositionInput` (the compliance layer); without one the position is unknown and the
  surcharge is flagged `no_position`, never assumed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ferrogate.gateway.cost.config import PositionScale, Surcharge
from ferrogate.gateway.cost.surcharge import Position, PositionInput
from ferrogate.gateway.energy.aggregate import Period


def benchmark_position(product: str, month: Period, kpi: Mapping[str, Any] | None) -> Position | None:
    """The product's month benchmark status as the books computed it (fields of its month KPI)."""
    if kpi is None or not kpi.get("benchmark_status"):
        return None
    value = kpi.get("kgce_per_t")
    shown = f"{value:.1f}" if isinstance(value, (int, float)) else "-"
    source = (
        f"energy books: {product} {month.label} {shown} kgce/t against 标杆 {kpi.get('benchmark_kgce_per_t')} / "
        f"基准 {kpi.get('baseline_kgce_per_t')} kgce/t ({kpi.get('benchmark_edition')} edition)"
    )
    return Position(str(kpi["benchmark_status"]), PositionScale.benchmark, source)


def declared_position(rule: Surcharge, month: Period) -> Position | None:
    declared = rule.declared
    if declared is None or month.local_date < declared.as_of.replace(day=1):
        return None
    return Position(declared.position, PositionScale.declared, f"declared as of {declared.as_of}: {declared.source}")


def positions(month_kpis: Mapping[str, Mapping[str, Any]], limit_grades: PositionInput | None = None) -> PositionInput:
    """A position input over the books' product month KPIs (product id -> KPI fields), the plant
    file's declared positions and, where given, a limit-grade assessment."""

    def position(rule: Surcharge, product: str, month: Period) -> Position | None:
        if rule.position_from is PositionScale.benchmark:
            return benchmark_position(product, month, month_kpis.get(product))
        if rule.position_from is PositionScale.declared:
            return declared_position(rule, month)
        return limit_grades(rule, product, month) if limit_grades is not None else None

    return position

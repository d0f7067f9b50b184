"""Where a product's efficiency position comes from (the input of the surcharge rules); the position
names are the shared vocabulary of gateway/positions.py.

- `benchmark`: the energy books' benchmark status of the product's month (`energy_kpi` fields
  `benchmark_status`, `kgce_per_t` and the levels), live as the month goes on;
- `declared`: the position an authority assessed, as the plant file states it, from its `as_of` date;
- `limit_grade`: the compliance layer's limit grade of the product's month (`compliance_grades` over
  the assessments of gateway/compliance/limits.assess, as `GET /api/v1/compliance/limits` shows
  them); where it has no grade, the rule's `fallback`; without a grade input at all (the energy role,
  which does not grade) the position is unknown and the surcharge is flagged `no_position`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ferrogate.gateway.cost.config import PositionScale, Surcharge
from ferrogate.gateway.cost.surcharge import Origin, Position, PositionInput
from ferrogate.gateway.energy.aggregate import Period
from ferrogate.gateway.positions import LIMIT_GRADES, grade_position


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
    return Position(str(kpi["benchmark_status"]), PositionScale.benchmark, source, Origin.energy_books)


def declared_position(rule: Surcharge, month: Period) -> Position | None:
    declared = rule.declared
    if declared is None or month.local_date < declared.as_of.replace(day=1):
        return None
    source = f"declared as of {declared.as_of}: {declared.source}"
    return Position(declared.position, PositionScale.declared, source, Origin.plant_file)


def graded_position(rule: Surcharge, product: str, month: Period, grades: PositionInput) -> Position | None:
    """The compliance grade of the product's month; where there is none, the rule's fallback (the
    reason kept in its source); neither: what the compliance layer said, which prices nothing."""
    graded = grades(rule, product, month)
    if graded is not None and graded.name in LIMIT_GRADES:
        return graded
    fallback = rule.fallback
    if fallback is None:
        return graded
    why = f"compliance: {graded.name}" if graded is not None else "no compliance assessment"
    source = f"plant file fallback ({why} for {product} {month.label}): {fallback.source}"
    return Position(fallback.position, PositionScale.limit_grade, source, Origin.plant_file)


def positions(month_kpis: Mapping[str, Mapping[str, Any]], limit_grades: PositionInput | None = None) -> PositionInput:
    """A position input over the books' product month KPIs (product id -> KPI fields), the plant
    file's declared positions and, where given, the compliance layer's limit grades."""

    def position(rule: Surcharge, product: str, month: Period) -> Position | None:
        if rule.position_from is PositionScale.benchmark:
            return benchmark_position(product, month, month_kpis.get(product))
        if rule.position_from is PositionScale.declared:
            return declared_position(rule, month)
        return graded_position(rule, product, month, limit_grades) if limit_grades is not None else None

    return position


def _indicator_text(i: Mapping[str, Any]) -> str:
    value, unit = i.get("value"), i.get("unit", "")
    shown = f"{value:,.1f} {unit}" if isinstance(value, (int, float)) else "-"
    text = f"{i.get('indicator')} {shown} {i.get('status')}"
    margin, nxt = i.get("margin_to_next_grade"), i.get("next_grade")
    if isinstance(margin, (int, float)) and nxt is not None:
        text += f" ({margin:,.1f} {unit} above grade {nxt})"
    return text


def _next_grade(status: str, indicators: Sequence[Mapping[str, Any]]) -> str | None:
    """The product's next better grade: every indicator at the product's grade must reach it, so the
    least step of theirs; none where one of them has no better level."""
    steps = [i.get("next_grade") for i in indicators if i.get("status") == status]
    if not steps or any(s is None for s in steps):
        return None
    return grade_position(max(steps))


def compliance_grades(assessments: Sequence[Mapping[str, Any]]) -> PositionInput:
    """A limit-grade position input over the compliance layer's assessments of one month (each
    product's dict from gateway/compliance/limits.assess). The product's month status decides: its
    grade (the worse of its indicators, `grade_1` ... `not_compliant`) with the next better grade the
    standard's levels allow; otherwise the status (`missing_input`, `no_production`,
    `no_limit_standard`) as a position no rate carries."""
    by_product = {str(a["product"]): a for a in assessments}

    def grade(rule: Surcharge, product: str, month: Period) -> Position | None:
        a = by_product.get(product)
        if a is None:
            return None
        this = a.get("month")
        if this is None:  # no limit standard, or no entry mapped
            return Position(str(a["status"]), PositionScale.limit_grade, str(a.get("message", "")), Origin.compliance)
        if this.get("label") != month.label:
            return None
        status, indicators = str(this["status"]), this.get("indicators", [])
        source = (
            f"compliance {month.label}: {product} {status} under {a.get('standard')} ({a.get('edition')} edition): "
            + "; ".join(_indicator_text(i) for i in indicators)
        )
        if status not in LIMIT_GRADES:
            return Position(status, PositionScale.limit_grade, source, Origin.compliance)
        better = _next_grade(status, indicators)
        return Position(status, PositionScale.limit_grade, source, Origin.compliance, better, True)

    return grade

"""Grades of the mandatory energy-consumption limit standards (GB 21341-2022 ferroalloys, GB 21347-2023
industrial silicon, GB 21256-2025 crude-steel processes) for one product over one month or a
rolling window of months.

- Indicators: smelting electricity kWh/t = electricity / tonnes; comprehensive kgce/t = (energy
  carriers' kgce + (electricity - waste-heat power sent back) x the standard's electricity
  coefficient) / tonnes. Over several months: sums over sums, never a mean of monthly ratios.
- Levels: grade 1 (best) <= grade 2 <= grade 3 (the limit); lower is better. A standard's
  corrections move the levels per month with that month's inputs (monthly manual value, else the
  plant file's standing value); over a window the levels are the tonnage-weighted mean of the
  months' corrected levels (the corrections are linear, so this equals correcting with the
  tonnage-weighted inputs).
- Grade: 1 if value <= grade 1, 2 if <= grade 2, 3 if <= grade 3, else not compliant. The margin
  to the next grade is how much the value must fall to reach the next better level.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ferrogate.gateway.compliance import reference as cref
from ferrogate.gateway.compliance.figures import Figures
from ferrogate.gateway.compliance.inputs import CORRECTIONS, Sourced
from ferrogate.gateway.compliance.model import ProductLimits
from ferrogate.gateway.energy.reference import Factor
from ferrogate.gateway.positions import GRADE_1, GRADE_2, GRADE_3, NOT_COMPLIANT, grade_position

Levels = tuple[float | None, float | None, float]
NO_PRODUCTION = "no_production"
MISSING_INPUT = "missing_input"


@dataclass(frozen=True, slots=True)
class Correction:
    input: str
    value: float | str
    unit: str
    delta: str  # e.g. "+200 kWh/t" or "x1.10"
    provenance: dict[str, Any]


@dataclass(frozen=True, slots=True)
class MonthLevels:
    """The corrected levels of one indicator in one month and how they were made."""

    base: Levels
    levels: Levels
    corrections: tuple[Correction, ...]
    assumed: tuple[str, ...]  # base conditions assumed where an optional input was not given
    factors: tuple[Factor | None, Factor | None, Factor]


def _fmt(x: float) -> str:
    return f"{x:+g}"


def month_levels(entry: cref.LimitEntry, variant: str, indicator: str, inputs: dict[str, Sourced]) -> MonthLevels:
    """The levels of `indicator` in a month with these inputs (the variant already chosen)."""
    factors = entry.variants[variant][indicator]
    base: Levels = (
        None if factors[0] is None else factors[0].value,
        None if factors[1] is None else factors[1].value,
        factors[2].value,
    )
    levels = list(base)
    corrections: list[Correction] = []
    assumed: list[str] = []
    for c in entry.linear:
        if c.indicator != indicator:
            continue
        given = inputs.get(c.input)
        if given is None:
            assumed.append(f"{c.input} = {c.reference.value:g} {c.reference.unit} (the table's base)")
            continue
        if c.condition is not None:
            cond = inputs.get(c.condition[0])
            if cond is None or cond.number < c.condition[1]:
                why = "not given" if cond is None else f"{cond.number:g} < {c.condition[1]:g}"
                assumed.append(f"{c.input} correction not applied: {c.condition[0]} {why}")
                continue
        delta = c.coefficient.value * (c.reference.value - given.number)
        levels = [None if v is None else v + delta for v in levels]
        unit = cref.INDICATOR_UNITS[indicator]
        corrections.append(Correction(c.input, given.value, given.unit, f"{_fmt(delta)} {unit}", given.provenance))
    for cc in entry.classes:
        if indicator not in cc.indicators:
            continue
        given = inputs.get(cc.input)
        if given is None:
            assumed.append(f"{cc.input} = {cc.base} (the table's base)")
            continue
        adjustment = cc.adjustments.get(str(given.value))
        if adjustment is None:
            corrections.append(Correction(cc.input, given.value, "", "base class", given.provenance))
            continue
        how, f = adjustment
        if how == "add":
            levels = [None if v is None else v + f.value for v in levels]
            text = f"{_fmt(f.value)} {f.unit}"
        else:
            levels = [None if v is None else v * f.value for v in levels]
            text = f"x{f.value:g}"
        corrections.append(Correction(cc.input, given.value, "", text, given.provenance))
    assert levels[2] is not None
    return MonthLevels(base, (levels[0], levels[1], levels[2]), tuple(corrections), tuple(assumed), factors)


@dataclass(frozen=True, slots=True)
class Graded:
    grade: int | None
    status: str
    next_grade: int | None
    margin_to_next_grade: float | None  # value - the next better level: the cut needed to reach it
    headroom: float | None  # this grade's level - value: how far the value may rise and keep this grade


def grade_of(value: float | None, levels: Levels) -> Graded:
    if value is None:
        return Graded(None, NO_PRODUCTION, None, None, None)
    grade = next((g for g, level in enumerate(levels, 1) if level is not None and value <= level), None)
    if grade is None:
        return Graded(None, NOT_COMPLIANT, 3, value - levels[2], None)
    better = [(g, level) for g, level in enumerate(levels[: grade - 1], 1) if level is not None]
    next_grade, next_level = better[-1] if better else (None, None)
    level = levels[grade - 1]
    assert level is not None
    margin = None if next_level is None else value - next_level
    return Graded(grade, grade_position(grade), next_grade, margin, level - value)


@dataclass(frozen=True, slots=True)
class MonthIn:
    """One month of a product for grading: what the books say and the inputs in force."""

    label: str
    figures: Figures
    inputs: dict[str, Sourced]


@dataclass
class IndicatorResult:
    indicator: str
    value: float | None
    numerator: float
    tonnes: float
    levels: Levels | None
    graded: Graded
    months: list[dict[str, Any]] = field(default_factory=list)  # per month: label, tonnes, levels, corrections
    verified: bool = True


def _numerator(entry: cref.LimitEntry, indicator: str, f: Figures) -> float:
    if indicator == cref.ELECTRICITY:
        return f.electricity_kwh
    return sum(f.carriers_kgce.values()) + f.net_electricity_kwh * entry.electricity_kgce.value


def variant_of(entry: cref.LimitEntry, inputs: dict[str, Sourced]) -> str | None:
    if entry.selector is None:
        return ""
    given = inputs.get(entry.selector)
    return None if given is None else str(given.value)


def grade_window(entry: cref.LimitEntry, months: Sequence[MonthIn]) -> dict[str, Any]:
    """Grades of every indicator of `entry` over the months (one month, or a rolling window)."""
    missing = [m.label for m in months if m.figures.tonnes > 0 and variant_of(entry, m.inputs) is None]
    producing = [m for m in months if m.figures.tonnes > 0]
    first_variant = next(iter(entry.variants))
    indicators = list(entry.variants[first_variant])
    out: dict[str, Any] = {
        "tonnes_t": sum(m.figures.tonnes for m in months),
        "indicators": [],
    }
    if missing:
        out["status"] = MISSING_INPUT
        out["missing"] = [{"input": entry.selector, "months": missing}]
        out["message"] = (
            f"{entry.standard.code} grades {entry.name} by {entry.selector} "
            f"({', '.join(cref.CHOICES.get(entry.selector or '', ()))}): give it in the plant file or for each month"
        )
    for indicator in indicators:
        result = _indicator(entry, indicator, producing, bool(missing), months[-1] if months else None)
        out["indicators"].append(_indicator_out(entry, result))
    if not missing:
        out["status"], out["grade"] = window_grade(out["indicators"])
    return out


def window_grade(indicators: Sequence[Mapping[str, Any]]) -> tuple[str, int | None]:
    """A window's status (its worst indicator's) and grade (the worst graded indicator's; none when
    not compliant), from its indicators' statuses and grades (a group center re-forms them so)."""
    status = _worst([i["status"] for i in indicators])
    graded = [i["grade"] for i in indicators if i["grade"] is not None]
    return status, (max(graded) if graded and status != NOT_COMPLIANT else None)


def _indicator(
    entry: cref.LimitEntry, indicator: str, months: list[MonthIn], unknown: bool, idle: MonthIn | None
) -> IndicatorResult:
    """`months`: the producing months; `idle`: the window's last month, whose levels are shown when
    nothing was produced (graded `no_production`)."""
    tonnes = sum(m.figures.tonnes for m in months)
    numerator = sum(_numerator(entry, indicator, m.figures) for m in months)
    value = numerator / tonnes if tonnes > 0 else None
    if not months and idle is not None and variant_of(entry, idle.inputs) is not None:
        level_months, weights = [idle], [1.0]
    else:
        level_months, weights = months, [m.figures.tonnes for m in months]
    if unknown or not level_months:
        graded = Graded(None, MISSING_INPUT if unknown else NO_PRODUCTION, None, None, None)
        return IndicatorResult(indicator, value, numerator, tonnes, None, graded)
    # tonnage-weighted levels as first month's level + weighted differences: exact when every month
    # has the same level (a value on a level keeps its grade)
    first: list[float | None] = [None, None, None]
    weighted = [0.0, 0.0, 0.0]
    has = [True, True, True]
    detail = []
    verified = entry.electricity_kgce.verified or indicator == cref.ELECTRICITY
    for m, weight in zip(level_months, weights, strict=True):
        variant = variant_of(entry, m.inputs)
        assert variant is not None
        ml = month_levels(entry, variant, indicator, m.inputs)
        verified = verified and all(f is None or f.verified for f in ml.factors)
        verified = verified and all(c.provenance.get("verified", True) for c in ml.corrections)
        for g in range(3):
            level = ml.levels[g]
            if level is None:
                has[g] = False
                continue
            if first[g] is None:
                first[g] = level
            weighted[g] += (level - first[g]) * weight  # type: ignore[operator]
        detail.append(
            {
                "label": m.label,
                "tonnes_t": m.figures.tonnes,
                "variant": variant or None,
                "base_levels": _levels_out(ml.base),
                "levels": _levels_out(ml.levels),
                "corrections": [
                    {"input": c.input, "value": c.value, "unit": c.unit, "delta": c.delta, "provenance": c.provenance}
                    for c in ml.corrections
                ],
                "assumed": list(ml.assumed),
                "provenance": {f"grade_{g}": f.provenance() for g, f in enumerate(ml.factors, 1) if f is not None},
            }
        )
    total = sum(weights)
    mean = [None if not has[g] or first[g] is None else first[g] + weighted[g] / total for g in range(3)]  # type: ignore[operator]
    assert mean[2] is not None
    levels: Levels = (mean[0], mean[1], mean[2])
    return IndicatorResult(indicator, value, numerator, tonnes, levels, grade_of(value, levels), detail, verified)


def _levels_out(levels: Levels | None) -> dict[str, float | None] | None:
    if levels is None:
        return None
    return {"grade_1": levels[0], "grade_2": levels[1], "grade_3": levels[2]}


def _indicator_out(entry: cref.LimitEntry, r: IndicatorResult) -> dict[str, Any]:
    return {
        "indicator": r.indicator,
        "name": cref.INDICATOR_NAMES[r.indicator],
        "value": r.value,
        "unit": cref.INDICATOR_UNITS[r.indicator],
        "numerator": r.numerator,
        "numerator_unit": "kWh" if r.indicator == cref.ELECTRICITY else "kgce",
        "tonnes_t": r.tonnes,
        "grade": r.graded.grade,
        "status": r.graded.status,
        "levels": _levels_out(r.levels),
        "next_grade": r.graded.next_grade,
        "margin_to_next_grade": r.graded.margin_to_next_grade,
        "headroom": r.graded.headroom,
        "electricity_kgce_per_kwh": (
            entry.electricity_kgce.provenance() if r.indicator == cref.COMPREHENSIVE else None
        ),
        "months": r.months,
        "verified": r.verified,
    }


_STATUS_RANK = {NO_PRODUCTION: 0, GRADE_1: 1, GRADE_2: 2, GRADE_3: 3, NOT_COMPLIANT: 4, MISSING_INPUT: 5}


def _worst(statuses: list[str]) -> str:
    return max(statuses, key=lambda s: _STATUS_RANK.get(s, 0)) if statuses else NO_PRODUCTION


def effective_inputs(standing: dict[str, Sourced], manual: dict[str, Sourced]) -> dict[str, Sourced]:
    """A month's corrections: the month's manual inputs over the plant file's standing values."""
    return {**standing, **{k: v for k, v in manual.items() if k in CORRECTIONS}}


def assess(product: ProductLimits, months: Sequence[MonthIn]) -> dict[str, Any]:
    """A product's grades for the last of `months` (oldest first; up to 13 months: the month, the
    rolling 12 months ending with it, and the rolling 12 months ending the month before, which is
    what an alarm compares with)."""
    if product.entry is None:
        message = (
            "no mandatory national energy-consumption limit standard applies to this product"
            if product.status == cref.NO_LIMIT_STANDARD
            else "no limit entry for this product: set compliance.products[].limit (e.g. GB21341/SiMn)"
        )
        return {"product": product.product, "status": product.status, "message": message}
    entry = product.entry
    this = months[-1]
    rolling = list(months[-12:])
    before = list(months[-13:-1])
    in_force = date.fromisoformat(this.label + "-01") >= entry.standard.in_force.replace(day=1)
    month = grade_window(entry, [this])
    out: dict[str, Any] = {
        "product": product.product,
        "limit": entry.key,
        "name": entry.name,
        "standard": entry.standard.code,
        "title": entry.standard.title,
        "edition": entry.standard.edition,
        "in_force": entry.standard.in_force.isoformat(),
        "in_force_for_month": in_force,
        "status": month["status"],
        "inputs": {name: {"value": s.value, **s.provenance} for name, s in this.inputs.items() if name in entry.inputs},
        "month": {"label": this.label, **month},
        "rolling_12_months": {"from": rolling[0].label, "to": this.label, **grade_window(entry, rolling)},
        "notes": list(entry.notes),
    }
    if entry.standard.replaces:
        out["replaces"] = entry.standard.replaces
    if before:
        earlier = grade_window(entry, before)
        out["rolling_12_months_before"] = {
            "from": before[0].label,
            "to": before[-1].label,
            "status": earlier["status"],
            "indicators": [
                {"indicator": i["indicator"], "value": i["value"], "grade": i["grade"], "status": i["status"]}
                for i in earlier["indicators"]
            ],
        }
    return out


@dataclass(frozen=True, slots=True)
class LimitAlarm:
    kind: str  # energy_limit_exceeded | energy_limit_grade_worse
    source: str  # product/indicator
    severity: str
    message: str
    value: float | None
    unit: str


def alarms(assessments: Sequence[dict[str, Any]]) -> tuple[list[LimitAlarm], list[tuple[str, str]]]:
    """Alarms the rolling 12 months call for: above the limit (critical), or a worse grade than the
    rolling 12 months ending the month before (warning). Returns (raise, clear) where clear lists
    (kind, source) of conditions that do not hold."""
    raised: list[LimitAlarm] = []
    cleared: list[tuple[str, str]] = []
    for a in assessments:
        if "rolling_12_months" not in a:
            continue
        before = {i["indicator"]: i for i in a.get("rolling_12_months_before", {}).get("indicators", [])}
        for i in a["rolling_12_months"]["indicators"]:
            source = f"{a['product']}/{i['indicator']}"
            what = f"{a['product']} {i['name']} rolling 12 months ({a['standard']})"
            if i["status"] == NOT_COMPLIANT:
                limit = i["levels"]["grade_3"]
                raised.append(
                    LimitAlarm(
                        "energy_limit_exceeded",
                        source,
                        "critical",
                        f"{what}: {i['value']:,.1f} {i['unit']} above the limit {limit:,.1f}",
                        i["value"],
                        i["unit"],
                    )
                )
            else:
                cleared.append(("energy_limit_exceeded", source))
            old = before.get(i["indicator"])
            fell = old is not None and old["status"] != NO_PRODUCTION and _rank(i["status"]) > _rank(old["status"])
            if fell and i["status"] != NOT_COMPLIANT:  # above the limit is the alarm above
                raised.append(
                    LimitAlarm(
                        "energy_limit_grade_worse",
                        source,
                        "warning",
                        f"{what}: now {i['status']} ({i['value']:,.1f} {i['unit']}), was {old['status']} "
                        f"to the month before",
                        i["value"],
                        i["unit"],
                    )
                )
            else:
                cleared.append(("energy_limit_grade_worse", source))
    return raised, cleared


def _rank(status: str) -> int:
    return _STATUS_RANK.get(status, 0) if status != MISSING_INPUT else 0

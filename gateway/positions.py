"""The one vocabulary of a product's energy-efficiency position, shared by the books that compute a
position (the energy books' benchmark status, the compliance layer's limit grade) and the cost books
that price it (tiered and differentiated electricity surcharges, docs/cost.md section 5).

A leaf: it imports nothing of ferrogate, so every layer can name the same positions.
"""

from __future__ import annotations

from enum import StrEnum

# the energy books' benchmark status of a product's kgce/t against 标杆 (benchmark) and 基准 (baseline)
AT_OR_BETTER_THAN_BENCHMARK = "at_or_better_than_benchmark"
BETWEEN = "between"
WORSE_THAN_BASELINE = "worse_than_baseline"
BENCHMARK_POSITIONS = (AT_OR_BETTER_THAN_BENCHMARK, BETWEEN, WORSE_THAN_BASELINE)  # best first

# the grades of the mandatory energy-consumption limit standards (GB 21341, GB 21347, GB 21256):
# grade 1 is the best; above the grade-3 level (the limit) a product is not compliant
GRADE_1 = "grade_1"
GRADE_2 = "grade_2"
GRADE_3 = "grade_3"
NOT_COMPLIANT = "not_compliant"
LIMIT_GRADES = (GRADE_1, GRADE_2, GRADE_3, NOT_COMPLIANT)  # best first


def grade_position(grade: int) -> str:
    """The position of limit grade 1, 2 or 3."""
    return LIMIT_GRADES[grade - 1]


class PositionScale(StrEnum):
    """Where a product's efficiency position comes from."""

    benchmark = "benchmark"  # the energy books' benchmark status of the product's month (标杆/基准)
    limit_grade = "limit_grade"  # the compliance layer's limit grade of the product's month
    declared = "declared"  # the position an authority assessed, given in the plant file


# the positions of a scale, best first (a declared position's names are the plant's own)
SCALE_POSITIONS: dict[PositionScale, tuple[str, ...]] = {
    PositionScale.benchmark: BENCHMARK_POSITIONS,
    PositionScale.limit_grade: LIMIT_GRADES,
}

"""Benchmark status of a product's kgce/t against the national 标杆 (benchmark) and 基准 (baseline).

`at_or_better_than_benchmark` if value <= 标杆, `worse_than_baseline` if value > 基准, else
`between` (works for negative levels such as the BOF's too). Margins are in kgce/t; a negative
margin to the benchmark means better than the benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ferrogate.gateway import positions
from ferrogate.gateway.energy.reference import BenchmarkLevels


class Status(StrEnum):
    at_or_better_than_benchmark = positions.AT_OR_BETTER_THAN_BENCHMARK
    between = positions.BETWEEN
    worse_than_baseline = positions.WORSE_THAN_BASELINE
    no_benchmark = "no_benchmark"  # the product has no national level (e.g. EMM)
    no_production = "no_production"


@dataclass(frozen=True, slots=True)
class BenchmarkResult:
    status: Status
    edition: str
    key: str | None
    value_kgce_per_t: float | None
    benchmark_kgce_per_t: float | None
    baseline_kgce_per_t: float | None
    margin_to_benchmark: float | None  # value - benchmark
    margin_to_baseline: float | None  # value - baseline
    levels: BenchmarkLevels | None


def assess(value: float | None, levels: BenchmarkLevels | None, edition: str, key: str | None) -> BenchmarkResult:
    if levels is None:
        return BenchmarkResult(Status.no_benchmark, edition, key, value, None, None, None, None, None)
    b, base = levels.benchmark.value, levels.baseline.value
    if value is None:
        return BenchmarkResult(Status.no_production, edition, key, None, b, base, None, None, levels)
    if value <= b:
        status = Status.at_or_better_than_benchmark
    elif value > base:
        status = Status.worse_than_baseline
    else:
        status = Status.between
    return BenchmarkResult(status, edition, key, value, b, base, value - b, value - base, levels)

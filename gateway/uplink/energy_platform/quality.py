"""The data-quality rules the platforms enforce, checked before a message leaves (pure): a failure
is written into the message and counted, never a reason to hold a period back or drop it.

- completeness: at least 90 % of the period's expected meter buckets are present and good;
- parts: the parts of a period as they were sent (a day's quarter-hours, a month's days) add up
  to within 5 % of the period's own figure, for every additive item, and none is missing;
- alignment: the period lies on the 00:00-local grid and every bucket summed lies inside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

MIN_COMPLETENESS_PERCENT = 90.0
PARTS_TOLERANCE = 0.05


@dataclass(frozen=True, slots=True)
class Failure:
    rule: str  # completeness, parts_missing, parts_sum, alignment
    detail: str
    code: str = ""  # the item it concerns; "" for the whole message

    def doc(self) -> dict[str, str]:
        out = {"rule": self.rule, "detail": self.detail}
        if self.code:
            out["code"] = self.code
        return out


def completeness(percent: float, minimum: float = MIN_COMPLETENESS_PERCENT) -> list[Failure]:
    if percent >= minimum:
        return []
    return [Failure("completeness", f"{percent:.1f} % of the expected meter buckets are good (minimum {minimum:g} %)")]


def parts(
    values: Mapping[str, float | None],
    sent: Mapping[str, tuple[float, int]],
    expected_parts: int,
    part_name: str,
    tolerance: float = PARTS_TOLERANCE,
) -> list[Failure]:
    """`values`: additive item code -> this period's value; `sent`: code -> (sum, count) of the
    values its parts were sent with."""
    out: list[Failure] = []
    for code, value in values.items():
        if value is None:
            continue  # no figure to compare: the item already carries why
        total, count = sent.get(code, (0.0, 0))
        if count < expected_parts:
            out.append(Failure("parts_missing", f"{count} of {expected_parts} {part_name} were sent", code))
            continue
        off = abs(total - value)
        if off > tolerance * abs(value) and off > 1e-9:
            share = off / abs(value) * 100.0 if value else float("inf")
            out.append(
                Failure(
                    "parts_sum",
                    f"the {part_name} add up to {total:g}, {share:.1f} % off {value:g} (limit {tolerance * 100:g} %)",
                    code,
                )
            )
    return out


def alignment(period_problem: str | None, stray_buckets: Iterable[str]) -> list[Failure]:
    out = [Failure("alignment", period_problem)] if period_problem else []
    stray = sorted(stray_buckets)
    if stray:
        out.append(Failure("alignment", f"{len(stray)} bucket(s) cross the period's boundary: {', '.join(stray[:3])}"))
    return out

"""Allocation of shared meters to accounting units, and the balance check of sub-meters against a
main meter (docs/accounting.md §4).

Allocations produce curves, so any window (a heat, a shift, a month) integrates its share
exactly: `fixed_shares` scales the shared meter; `pro_rata_remainder` splits, interval by
interval, what the shared meter measured beyond the targets' own meters (e.g. transformer losses)
in proportion to their own energy in that interval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from ferrogate.gateway.energy.counters import Columns, Flag, Mark, worst
from ferrogate.gateway.energy.events import Amount, Curve, scaled
from ferrogate.gateway.reading import Quality


class Windowed(Protocol):
    def between(self, t0_ns: int, t1_ns: int) -> Amount: ...


@dataclass(frozen=True, slots=True)
class Share:
    """A fixed fraction of a shared curve."""

    curve: Windowed
    fraction: float

    def between(self, t0_ns: int, t1_ns: int) -> Amount:
        return scaled(self.curve.between(t0_ns, t1_ns), self.fraction)


def fixed_shares(shared: Windowed, shares: Mapping[str, float]) -> dict[str, Share]:
    return {target: Share(shared, fraction) for target, fraction in shares.items()}


def windows(curve: Windowed, t0s: Sequence[int], t1s: Sequence[int]) -> tuple[list[float], list[Quality]]:
    """`curve.between(t0, t1)`'s value and quality for each window (in time order), in one pass
    where the curve can (`Curve.windows`, `Summed.windows`)."""
    many = getattr(curve, "windows", None)
    if many is not None:
        return many(t0s, t1s)  # type: ignore[no-any-return]
    amounts = [curve.between(t0, t1) for t0, t1 in zip(t0s, t1s, strict=True)]
    return [a.value for a in amounts], [a.quality for a in amounts]


def pro_rata_remainder(shared: Curve, own: Mapping[str, Windowed], tolerance: float = 0.01) -> dict[str, Curve]:
    """Split `shared - sum(own)` over each of the shared meter's intervals pro rata to `own`.

    When every target was idle in an interval the remainder (no-load losses) is split equally
    and flagged. A remainder more negative than `tolerance` of the shared amount means the
    sub-meters read more than the main: allocated as measured, Uncertain and flagged.
    """
    names = list(own)
    if not names:
        return {}
    starts, ends, amounts = shared.starts, shared.ends, shared.amounts
    good = Quality.GOOD
    measured = [windows(own[n], starts, ends) for n in names]
    totals = [sum(values) for values in zip(*(values for values, _ in measured), strict=True)]
    own_quality = [good] * len(amounts)  # the worst of the targets' windows, interval by interval
    for _, qualities in measured:
        if any(q is not good for q in qualities):
            own_quality = [worst(a, b) for a, b in zip(own_quality, qualities, strict=True)]
    remainders = [None if a is None else a - t for a, t in zip(amounts, totals, strict=True)]
    equal = 1.0 / len(names)
    shares = [
        [
            None if r is None else r * (v / t if t > 0 else equal)
            for r, v, t in zip(remainders, values, totals, strict=True)
        ]
        for values, _ in measured
    ]
    # quality and flags only where a part may not be a plain Good interval (rare)
    special_shared = shared.special
    odd = [
        i
        for i, (a, r, t, q) in enumerate(zip(amounts, remainders, totals, own_quality, strict=True))
        if a is None or r is None or q is not good or not t > 0 or r < -tolerance * max(a, 0.0) or i in special_shared
    ]
    special: dict[int, Mark] = {}  # the same for every part: one map, shared
    marks: dict[tuple[Quality, tuple[str, ...]], Mark] = {}  # one mark per kind, shared by every part
    for i in odd:
        shared_mark = special_shared.get(i)
        quality = worst(good if shared_mark is None else shared_mark.quality, own_quality[i])
        flags = set() if shared_mark is None else set(shared_mark.flags)
        amount, remainder = amounts[i], remainders[i]
        if amount is None or remainder is None:
            special[i] = Mark(Quality.BAD, tuple(flags))
            continue
        if remainder < -tolerance * max(amount, 0.0):
            quality = worst(quality, Quality.UNCERTAIN)
            flags.add(Flag.negative_remainder)
        if not totals[i] > 0:
            flags.add(Flag.idle_equal_split)
        if quality is good and not flags:
            continue
        tags = tuple(sorted(flags))
        special[i] = marks.setdefault((quality, tags), Mark(quality, tags))
    return {n: Curve(Columns(starts, ends, amounts_of, special)) for n, amounts_of in zip(names, shares, strict=True)}


class BalanceStatus(StrEnum):
    ok = "ok"
    loss_above_limit = "loss_above_limit"
    submeters_exceed_main = "submeters_exceed_main"
    no_main_energy = "no_main_energy"


@dataclass(frozen=True, slots=True)
class Balance:
    group: str
    main_kwh: float
    members_kwh: float
    loss_kwh: float
    loss_percent: float | None  # of the main meter's energy
    status: BalanceStatus
    quality: Quality
    flags: tuple[str, ...]


def balance(group: str, main: Amount, members: Mapping[str, Amount], max_loss_percent: float) -> Balance:
    """Sum of sub-meters against the main incomer: loss = main - sum, in kWh and % of main."""
    quality = main.quality
    flags = set(main.flags)
    total = 0.0
    for a in members.values():
        total += a.value
        quality = worst(quality, a.quality)
        flags |= a.flags
    if not (main.covered and all(a.covered for a in members.values())):
        quality = worst(quality, Quality.UNCERTAIN)
        flags.add("partial_coverage")
    loss = main.value - total
    if main.value <= 0:
        return Balance(
            group, main.value, total, loss, None, BalanceStatus.no_main_energy, quality, tuple(sorted(flags))
        )
    percent = loss / main.value * 100.0
    if loss < 0:
        status = BalanceStatus.submeters_exceed_main
    elif percent > max_loss_percent:
        status = BalanceStatus.loss_above_limit
    else:
        status = BalanceStatus.ok
    return Balance(group, main.value, total, loss, percent, status, quality, tuple(sorted(flags)))

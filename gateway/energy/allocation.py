"""Allocation of shared meters to accounting units, and the balance check of sub-meters against a
main meter (docs/accounting.md §4).

Allocations produce curves, so any window (a heat, a shift, a month) integrates its share
exactly: `fixed_shares` scales the shared meter; `pro_rata_remainder` splits, interval by
interval, what the shared meter measured beyond the targets' own meters (e.g. transformer losses)
in proportion to their own energy in that interval.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from ferrogate.gateway.energy.counters import Flag, Interval, worst
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


def pro_rata_remainder(shared: Curve, own: Mapping[str, Windowed], tolerance: float = 0.01) -> dict[str, Curve]:
    """Split `shared - sum(own)` over each of the shared meter's intervals pro rata to `own`.

    When every target was idle in an interval the remainder (no-load losses) is split equally
    and flagged. A remainder more negative than `tolerance` of the shared amount means the
    sub-meters read more than the main: allocated as measured, Uncertain and flagged.
    """
    names = list(own)
    parts: dict[str, list[Interval]] = {n: [] for n in names}
    for iv in shared.intervals:
        amounts = {n: own[n].between(iv.start_ns, iv.end_ns) for n in names}
        total_own = sum(a.value for a in amounts.values())
        quality = iv.quality
        for a in amounts.values():
            quality = worst(quality, a.quality)
        flags = set(iv.flags)
        if iv.amount is None:
            for n in names:
                parts[n].append(Interval(iv.start_ns, iv.end_ns, None, Quality.BAD, tuple(flags)))
            continue
        remainder = iv.amount - total_own
        if remainder < -tolerance * max(iv.amount, 0.0):
            quality = worst(quality, Quality.UNCERTAIN)
            flags.add(Flag.negative_remainder)
        if total_own > 0:
            weights = {n: amounts[n].value / total_own for n in names}
        else:
            weights = dict.fromkeys(names, 1.0 / len(names))
            flags.add(Flag.idle_equal_split)
        for n in names:
            parts[n].append(Interval(iv.start_ns, iv.end_ns, remainder * weights[n], quality, tuple(sorted(flags))))
    return {n: Curve(ivs) for n, ivs in parts.items()}


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

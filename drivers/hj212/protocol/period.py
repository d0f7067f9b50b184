"""One factor over one period, as an HJ 212 sender reports it in minute, hourly and daily data:
Min/Avg/Max of the values flagged N, Cou (the sum of what each of them adds: mass, volume), and
the period's flag: N when at least 75 % of its values are N (HJ 212-2017 Appendix D), else the
commonest other flag. Used by the simulated data logger and by the uplink."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

NORMAL = "N"
NORMAL_SHARE = 0.75  # HJ 212-2017 Appendix D


def fmt(value: float) -> str:
    """Numbers as sent: four decimals."""
    return f"{value:.4f}"


@dataclass(slots=True)
class PeriodValues:
    seen: int = 0
    valid: int = 0
    total: float = 0.0
    low: float = float("inf")
    high: float = float("-inf")
    amount: float = 0.0  # Cou: what the valid values add up to (kg, m3, or the values themselves)
    flags: Counter[str] = field(default_factory=Counter)

    def add(self, value: float | None, flag: str, amount: float = 0.0) -> None:
        self.seen += 1
        if flag != NORMAL or value is None:
            self.flags[flag] += 1
            return
        self.valid += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)
        self.amount += amount

    def flag(self) -> str:
        if self.seen and self.valid >= NORMAL_SHARE * self.seen:
            return NORMAL
        if not self.flags:
            return NORMAL
        return max((n, f) for f, n in self.flags.items())[1]

    def items(self, suffixes: tuple[str, ...] = ("Min", "Avg", "Max")) -> dict[str, str]:
        """The period's items with these suffixes (Min, Avg, Max, Cou, or a corrected ZsMin...: the
        values are what they are; none without a valid value), then its Flag."""
        out: dict[str, str] = {}
        if self.valid:
            figures = {"Min": self.low, "Avg": self.total / self.valid, "Max": self.high, "Cou": self.amount}
            out = {suffix: fmt(figures[suffix.removeprefix("Zs")]) for suffix in suffixes}
        out["Flag"] = self.flag()
        return out

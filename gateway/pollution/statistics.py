"""HJ 212-2017 Appendix D statistics from real-time data: minute, hourly and daily averages with
the standard's validity rules (reference/hj212.md "Statistics"). Pure: samples in, averages out.

- A minute average is valid with at least `minute_min_readings` (12) good readings at most
  `max_spacing_s` (5 s) apart (also from the minute's start to the first and from the last to its
  end); an hour with at least `hour_min_minutes` (45) valid minutes; a day with at least
  `day_min_hours` (20) valid hours. An average is the mean of the valid parts only.
- A period is flagged `N` only when valid and at least `normal_share` (75 %) of its parts are
  normal; otherwise its flag says why: the commonest reason of its parts that are not (e.g.
  `calibration`, `maintenance`), or `too_few_values`. A flagged period keeps the average of what
  was valid, and is never filled in.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

NORMAL = "N"
TOO_FEW = "too_few_values"
NO_DATA = "no_data"
MINUTE_NS, HOUR_NS, DAY_NS = 60_000_000_000, 3_600_000_000_000, 86_400_000_000_000


@dataclass(frozen=True, slots=True)
class Rules:
    minute_min_readings: int = 12
    max_spacing_s: float = 5.0
    hour_min_minutes: int = 45
    day_min_hours: int = 20
    normal_share: float = 0.75


@dataclass(frozen=True, slots=True)
class Sample:
    """One real-time reading: good ones count; a reason says why one is not (its flag's reason)."""

    t_ns: int
    value: float | None
    good: bool
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Average:
    start_ns: int
    end_ns: int
    value: float | None  # mean of the valid parts; None when none was valid
    parts: int  # parts expected (hour: 60 minutes, day: 24 hours) or readings seen (minute)
    valid_parts: int
    flag: str  # N, or why not

    @property
    def valid(self) -> bool:
        return self.flag == NORMAL


def _reason(reason: str | None) -> str:
    return (reason or "not_good").split(":", 1)[0]


def minute_average(samples: Sequence[Sample], start_ns: int, rules: Rules) -> Average:
    """The minute [start, start + 60 s) from its samples (sorted by time, all inside the minute)."""
    end_ns = start_ns + MINUTE_NS
    good = [s for s in samples if s.good and s.value is not None]
    spacing_ns = int(rules.max_spacing_s * 1e9)
    times = [start_ns, *(s.t_ns for s in good), end_ns]
    spaced = all(b - a <= spacing_ns for a, b in itertools.pairwise(times))
    value = sum(s.value for s in good) / len(good) if good else None  # type: ignore[misc]
    enough = len(good) >= rules.minute_min_readings and spaced
    normal = len(good) >= rules.normal_share * len(samples) if samples else False
    if enough and normal:
        flag = NORMAL
    elif not normal and len(samples) > len(good):
        flag = Counter(_reason(s.reason) for s in samples if not (s.good and s.value is not None)).most_common(1)[0][0]
    else:
        flag = TOO_FEW
    return Average(start_ns, end_ns, value, len(samples), len(good), flag)


def roll_up(
    parts: Iterable[Average], start_ns: int, end_ns: int, expected: int, min_valid: int, rules: Rules
) -> Average:
    """An hour from its minutes or a day from its hours: `expected` parts, `min_valid` of them valid."""
    parts = list(parts)
    valid = [p for p in parts if p.valid and p.value is not None]
    value = sum(p.value for p in valid) / len(valid) if valid else None  # type: ignore[misc]
    if len(valid) >= min_valid and len(valid) >= rules.normal_share * expected:
        flag = NORMAL
    else:
        reasons = Counter(p.flag for p in parts if not p.valid)
        reasons[NO_DATA] += expected - len(parts)
        top = reasons.most_common(1)[0][0] if reasons else TOO_FEW
        flag = TOO_FEW if top in (NO_DATA, TOO_FEW) else top
    return Average(start_ns, end_ns, value, expected, len(valid), flag)


def minutes(samples: Iterable[Sample], rules: Rules) -> list[Average]:
    """Minute averages of every minute that has samples, in time order."""
    by_minute: dict[int, list[Sample]] = {}
    for s in samples:
        by_minute.setdefault(s.t_ns - s.t_ns % MINUTE_NS, []).append(s)
    return [
        minute_average(sorted(group, key=lambda s: s.t_ns), start, rules) for start, group in sorted(by_minute.items())
    ]


def hours(minute_averages: Iterable[Average], rules: Rules) -> list[Average]:
    return _group(minute_averages, HOUR_NS, 60, rules.hour_min_minutes, rules)


def days(hour_averages: Iterable[Average], rules: Rules, day_starts: Sequence[int] | None = None) -> list[Average]:
    """Daily averages; days are UTC days unless `day_starts` (e.g. local production days) are given."""
    if day_starts is None:
        return _group(hour_averages, DAY_NS, 24, rules.day_min_hours, rules)
    out = []
    hourly = list(hour_averages)
    for start, end in itertools.pairwise(day_starts):
        inside = [h for h in hourly if start <= h.start_ns < end]
        out.append(roll_up(inside, start, end, round((end - start) / HOUR_NS), rules.day_min_hours, rules))
    return out


def _group(parts: Iterable[Average], size_ns: int, expected: int, min_valid: int, rules: Rules) -> list[Average]:
    groups: dict[int, list[Average]] = {}
    for p in parts:
        groups.setdefault(p.start_ns - p.start_ns % size_ns, []).append(p)
    return [roll_up(g, start, start + size_ns, expected, min_valid, rules) for start, g in sorted(groups.items())]

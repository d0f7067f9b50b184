"""Validation of time-range and period parameters: a bad request gets a 4xx with a reason."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import Query

from ferrogate.api.auth import error
from ferrogate.gateway.timeutil import datetime_to_ns

# query parameters several routes take alike
From = Annotated[str, Query(alias="from", description="ISO 8601 with zone")]
To = Annotated[str, Query(description="ISO 8601 with zone")]
# heat lists answer the last day when the range is left out: what a newcomer tries first
RECENT_SPAN_S = 24 * 3600
RecentFrom = Annotated[str | None, Query(alias="from", description="ISO 8601 with zone; default: 24 hours before `to`")]
RecentTo = Annotated[str | None, Query(description="ISO 8601 with zone; default: now")]
Month = Annotated[str, Query(description="YYYY-MM (plant calendar)")]
# a scoped request names at most one scope; none means the whole plant (EnergyReader.scope)
AssetId = Annotated[
    str | None, Query(description="one accounting unit (furnace) id; without asset= and product=: the whole plant")
]
ProductId = Annotated[str | None, Query(description="one product id, e.g. SiMn")]
WholePlant = Annotated[bool, Query(description="the whole plant (also what no asset= or product= means)")]
Group = Annotated[Literal["shift", "day", "month"], Query()]


@dataclass(frozen=True)
class TimeRange:
    start_ns: int
    end_ns: int


def parse_instant(text: str, name: str) -> int:
    """ISO 8601 with a zone (`Z` or an offset) -> Unix ns; a time without a zone is refused."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise error(
            400, "bad_time", f"{name}={text!r} is not an ISO 8601 time, e.g. 2026-11-01T00:00:00+08:00"
        ) from None
    if value.tzinfo is None:
        raise error(400, "time_without_zone", f"{name}={text!r} has no zone; add Z or an offset such as +08:00")
    return datetime_to_ns(value)


def parse_range(start: str, end: str, max_days: int) -> TimeRange:
    return checked_range(parse_instant(start, "from"), parse_instant(end, "to"), max_days)


def parse_recent_range(
    start: str | None, end: str | None, max_days: int, now_ns: int | None = None, span_s: int = RECENT_SPAN_S
) -> TimeRange:
    """A range whose ends may be left out: `to` defaults to now, `from` to `span_s` before `to`."""
    end_ns = (time.time_ns() if now_ns is None else now_ns) if end is None else parse_instant(end, "to")
    start_ns = end_ns - span_s * 1_000_000_000 if start is None else parse_instant(start, "from")
    return checked_range(start_ns, end_ns, max_days)


def checked_range(start_ns: int, end_ns: int, max_days: int) -> TimeRange:
    if end_ns <= start_ns:
        raise error(400, "bad_range", "'from' must be before 'to'")
    if (end_ns - start_ns) / 86_400e9 > max_days:
        raise error(400, "range_too_large", f"at most {max_days} days per request; split the range")
    return TimeRange(start_ns, end_ns)


def parse_month(text: str) -> date:
    if not re.fullmatch(r"\d{4}-\d{2}", text):
        raise error(400, "bad_month", f"month={text!r}: use YYYY-MM, e.g. 2026-10")
    year, month = int(text[:4]), int(text[5:])
    if not (1 <= month <= 12 and 1970 <= year <= 2200):
        raise error(400, "bad_month", f"month={text!r} does not exist")
    return date(year, month, 1)

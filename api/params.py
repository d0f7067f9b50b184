"""Validation of time-range and period parameters: a bad request gets a 4xx with a reason."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import Query

from ferrogate.api.auth import error
from ferrogate.gateway.timeutil import datetime_to_ns

# query parameters several routes take alike
From = Annotated[str, Query(alias="from", description="ISO 8601 with zone")]
To = Annotated[str, Query(description="ISO 8601 with zone")]
Month = Annotated[str, Query(description="YYYY-MM (plant calendar)")]
AssetId = Annotated[str | None, Query(description="one accounting unit (furnace) id")]
ProductId = Annotated[str | None, Query(description="one product id, e.g. SiMn")]
WholePlant = Annotated[bool, Query(description="the whole plant")]
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
    start_ns, end_ns = parse_instant(start, "from"), parse_instant(end, "to")
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

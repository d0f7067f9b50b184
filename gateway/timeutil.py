"""Exact conversions between Unix nanoseconds and datetimes (no float rounding)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ns_to_datetime(ns: int) -> datetime:
    """UTC datetime of Unix nanoseconds, truncated to microseconds (datetime's resolution)."""
    return datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC).replace(microsecond=(ns // 1000) % 1_000_000)


def datetime_to_ns(value: datetime) -> int:
    """Unix nanoseconds of a datetime; a naive one is taken as UTC (as OPC UA libraries return)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def iso_utc(ns: int) -> str:
    """ISO 8601 UTC with milliseconds and a 'Z', e.g. 2026-11-23T04:05:06.789Z."""
    return ns_to_datetime(ns).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*")
_DURATION_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_seconds(text: str) -> float:
    """'90', '90s', '15m', '6h', '2d' -> seconds (plant files and the command line alike)."""
    m = _DURATION.fullmatch(text)
    if not m:
        raise ValueError(f"not a duration: {text!r} (use seconds or e.g. 90s, 15m, 6h)")
    return float(m.group(1)) * _DURATION_UNIT_S[m.group(2)]

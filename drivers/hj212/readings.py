"""From a decoded upload to `Reading`s: each configured point names a command (2011 real-time, 2051
minute, 2061 hourly, 2031 daily), a factor code and a suffix; its source time is the message's
`DataTime` and its quality comes from the factor's data flag (codes.DATA_FLAGS).

A value the logger marked bad (D, T, B) keeps the number it sent, with quality bad and the reason;
a value that is not a number is bad with no value. Items no point is bound to are not read
(`ferrogate probe` shows everything a logger sends).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from ferrogate.drivers.hj212.protocol.codes import DATA_FLAGS, UNKNOWN_FLAG_REASON
from ferrogate.drivers.hj212.protocol.message import Message
from ferrogate.gateway.reading import NOT_FINITE, Quality, Reading

BAD_VALUE = "bad_value"


@dataclass(frozen=True, slots=True)
class PointBinding:
    point: str
    cn: str
    code: str
    suffix: str
    unit: str
    scale: float = 1.0  # engineering value = value sent x scale + offset
    offset: float = 0.0


# flag letter -> (quality, reason), the reason carrying the letter for the record
_FLAG_QUALITY = {
    f.flag: (f.quality, None if f.reason is None else f"{f.reason}: {f.flag}") for f in DATA_FLAGS.values()
}


def flag_quality(flag: str | None) -> tuple[Quality, str | None]:
    """The quality of a value with this data flag; none given counts as N (the flag is optional)."""
    if flag is None:
        return Quality.GOOD, None
    known = _FLAG_QUALITY.get(flag)
    if known is not None:
        return known
    return Quality.UNCERTAIN, f"{UNKNOWN_FLAG_REASON}: {flag[:8]}"


class PointMap:
    """The points of one logger, grouped by command so a message looks only at its own."""

    def __init__(self, bindings: Iterable[PointBinding]) -> None:
        self.by_cn: dict[str, list[PointBinding]] = {}
        for b in bindings:
            self.by_cn.setdefault(b.cn, []).append(b)

    def readings(self, message: Message) -> list[Reading]:
        bindings = self.by_cn.get(message.cn)
        time_ns = message.data_time_ns
        if not bindings or time_ns is None:
            return []
        factors = message.cp.factors
        out: list[Reading] = []
        for b in bindings:
            values = factors.get(b.code)
            if values is None:
                continue
            raw = values.get(b.suffix)
            if raw is None:
                continue
            quality, reason = flag_quality(values.get("Flag"))
            try:
                value: float | None = float(raw)
            except ValueError:
                out.append(Reading(b.point, None, b.unit, time_ns, Quality.BAD, f"{BAD_VALUE}: {raw[:20]!r}"))
                continue
            if not math.isfinite(value):  # type: ignore[arg-type]
                out.append(Reading(b.point, None, b.unit, time_ns, Quality.BAD, f"{NOT_FINITE}: {raw[:20]}"))
                continue
            if quality is Quality.BAD:  # a bad reading carries no value; the number sent stays readable
                out.append(Reading(b.point, None, b.unit, time_ns, quality, f"{reason}, sent {raw[:20]}"))
                continue
            out.append(Reading(b.point, value * b.scale + b.offset, b.unit, time_ns, quality, reason))
        return out

"""Readings in, HJ 212 records out: each chosen point becomes a factor of the minute (2051), hourly
(2061) or daily (2031) record of its period, as `Min/Avg/Max` (avg), `Cou` (sum) or its own value
under a suffix (forward: a point that already holds the period's figure, e.g. a logger's hourly
mass as `Cou`). Several points may feed one factor with different suffixes.

A period closes when the stream has moved `close_after_s` past its end (source time: late readings
of an accelerated or back-filled stream land where they belong), and each record is made once: a
record is never made again for a period at or before the last one made (`made_through`, kept by
the caller across restarts). Only good readings count; a factor's flag is N when at least 75 % of
its readings were good (HJ 212-2017 Appendix D), else the flag letter of the commonest reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Literal

from ferrogate.drivers.hj212.protocol.period import NORMAL, PeriodValues
from ferrogate.gateway.reading import Quality, Reading
from ferrogate.gateway.timeutil import datetime_to_ns, ns_to_datetime

Kind = Literal["minute", "hour", "day"]
Method = Literal["avg", "sum", "forward"]
CN = {"minute": "2051", "hour": "2061", "day": "2031"}
# reading reasons back to HJ 212 data flags (the driver's flag-to-quality map, read backwards)
REASON_FLAGS = {
    "stopped": "F",
    "maintenance": "M",
    "manual": "S",
    "calibration": "C",
    "sensor_fault": "D",
    "out_of_range": "T",
    "instrument_comm_error": "B",
}
FAULT_FLAG = "D"  # a reading bad for any other reason (the meter did not answer...)


@dataclass(frozen=True, slots=True)
class UplinkItem:
    code: str  # HJ 212 factor code on the platform's side
    device: str
    point: str
    kinds: tuple[Kind, ...]
    method: Method = "avg"
    suffix: str = "Avg"  # forward: the suffix its value is sent under


def reading_flag(r: Reading) -> str:
    """The HJ 212 data flag of a reading (the driver's flag-to-quality map, read backwards)."""
    if r.quality is Quality.GOOD and r.value is not None:
        return NORMAL
    return REASON_FLAGS.get((r.reason or "").split(":", 1)[0], FAULT_FLAG)


SUFFIXES: dict[Method, tuple[str, ...]] = {"avg": ("Min", "Avg", "Max"), "sum": ("Cou",)}


@dataclass(frozen=True, slots=True)
class Record:
    kind: Kind
    start_ns: int
    factors: dict[str, dict[str, str]]  # code -> suffix -> value

    @property
    def cn(self) -> str:
        return CN[self.kind]


class PeriodAggregator:
    def __init__(
        self,
        items: Iterable[UplinkItem],
        zone: tzinfo,
        close_after_s: float = 120.0,
        made_through: Mapping[str, int] | None = None,
    ) -> None:
        self.zone = zone
        self.close_after_ns = int(close_after_s * 1e9)
        self.by_source: dict[tuple[str, str], list[UplinkItem]] = {}
        for item in items:
            self.by_source.setdefault((item.device, item.point), []).append(item)
        self.made_through: dict[str, int] = dict(made_through or {})  # kind -> start of the last record made
        self._open: dict[tuple[Kind, int], dict[UplinkItem, PeriodValues]] = {}
        self.stream_ns = 0  # how far the stream has come (source time)
        self.late = 0  # readings for periods already made

    def period_start(self, kind: Kind, t_ns: int) -> int:
        if kind == "minute":
            return t_ns - t_ns % 60_000_000_000
        if kind == "hour":  # whole-hour zones: local hours are UTC hours
            return t_ns - t_ns % 3_600_000_000_000
        local = ns_to_datetime(t_ns).astimezone(self.zone)
        return datetime_to_ns(datetime(local.year, local.month, local.day, tzinfo=self.zone))

    def period_end(self, kind: Kind, start_ns: int) -> int:
        if kind != "day":
            return start_ns + (60_000_000_000 if kind == "minute" else 3_600_000_000_000)
        local = ns_to_datetime(start_ns).astimezone(self.zone) + timedelta(days=1, hours=2)
        return datetime_to_ns(datetime(local.year, local.month, local.day, tzinfo=self.zone))

    def add(self, device: str, readings: Iterable[Reading]) -> None:
        for r in readings:
            items = self.by_source.get((device, r.point))
            if r.source_time_ns > self.stream_ns:
                self.stream_ns = r.source_time_ns
            if items is None:
                continue
            for item in items:
                for kind in item.kinds:
                    start = self.period_start(kind, r.source_time_ns)
                    if start <= self.made_through.get(kind, -1):
                        self.late += 1
                        continue
                    accs = self._open.setdefault((kind, start), {})
                    acc = accs.get(item)
                    if acc is None:
                        acc = accs[item] = PeriodValues()
                    value = r.value if r.quality is Quality.GOOD else None
                    acc.add(value, reading_flag(r), value or 0.0)

    def close(self, now_ns: int | None = None) -> list[Record]:
        """Records of every period the stream (or `now_ns`) has left `close_after_s` behind, oldest first."""
        horizon = (self.stream_ns if now_ns is None else now_ns) - self.close_after_ns
        done = sorted(
            (key for key in self._open if self.period_end(key[0], key[1]) <= horizon), key=lambda k: (k[1], k[0])
        )
        out = []
        for kind, start in done:
            factors: dict[str, dict[str, str]] = {}
            for item, acc in self._open.pop((kind, start)).items():
                merged = factors.setdefault(item.code, {})
                flag = merged.pop("Flag", "N")
                merged.update(acc.items(SUFFIXES.get(item.method, (item.suffix,))))
                if flag != "N":  # one factor, several sources: a flag that is not N wins
                    merged["Flag"] = flag
                merged["Flag"] = merged.pop("Flag")  # last, as loggers send it
            out.append(Record(kind, start, factors))
            self.made_through[kind] = max(self.made_through.get(kind, -1), start)
        return out

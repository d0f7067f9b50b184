"""Joining a message split into packets (Flag bit D, PNUM packets numbered PNO 1..PNUM, one QN).

Packets are held per (MN, QN, CN) until all have arrived, then joined into one data segment whose
CP holds the packets' items in packet order. Bounded: at most `max_pending` messages wait, each at
most `timeout_s`; a message that cannot complete is released with the packets it has, marked
incomplete (counted by the caller), so nothing that arrived is lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ferrogate.drivers.hj212.protocol.cp import join_cp
from ferrogate.drivers.hj212.protocol.segment import FLAG_SPLIT, DataSegment

Key = tuple[str, str | None, str]


@dataclass(slots=True)
class _Pending:
    total: int
    started: float
    packets: dict[int, DataSegment] = field(default_factory=dict)


@dataclass(slots=True)
class Joined:
    segment: DataSegment  # PNUM/PNO removed, CP joined
    packets: int
    complete: bool


class PacketJoiner:
    def __init__(
        self, max_pending: int = 64, timeout_s: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_pending = max_pending
        self.timeout_s = timeout_s
        self._clock = clock
        self._pending: dict[Key, _Pending] = {}

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(self, packet: DataSegment) -> list[Joined]:
        """Messages finished by this packet: its own once complete, and any it pushed out."""
        assert packet.pnum is not None and packet.pno is not None
        out: list[Joined] = []
        key = (packet.mn, packet.qn, packet.cn)
        pending = self._pending.get(key)
        if pending is None or pending.total != packet.pnum:
            if pending is not None:  # same QN, another packet count: the earlier message is over
                out.append(self._release(key, complete=False))
            if len(self._pending) >= self.max_pending:
                oldest = min(self._pending, key=lambda k: self._pending[k].started)
                out.append(self._release(oldest, complete=False))
            pending = self._pending[key] = _Pending(packet.pnum, self._clock())
        pending.packets[packet.pno] = packet  # a resent packet replaces its first copy
        if len(pending.packets) == pending.total:
            out.append(self._release(key, complete=True))
        return out

    def expire(self) -> list[Joined]:
        """Messages that waited longer than `timeout_s`, released incomplete."""
        deadline = self._clock() - self.timeout_s
        stale = [key for key, p in self._pending.items() if p.started <= deadline]
        return [self._release(key, complete=False) for key in stale]

    def _release(self, key: Key, complete: bool) -> Joined:
        pending = self._pending.pop(key)
        ordered = [pending.packets[n] for n in sorted(pending.packets)]
        first = ordered[0]
        flag = first.flag & ~FLAG_SPLIT  # the joined message is no longer split
        joined = replace(first, pnum=None, pno=None, flag=flag, cp=join_cp(p.cp for p in ordered))
        return Joined(joined, len(ordered), complete)

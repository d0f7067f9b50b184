"""Time-ordered readings of one point: what the accounting engine computes from.

Readings may arrive late or twice (store-and-forward replay, QoS 1 redelivery): `add` keeps the
series sorted and lets a redelivered timestamp overwrite, so recomputing gives the same books.

`last_usable_ns` is the time of the newest reading with a value: how far the meter has told the books
anything. A bad reading does not count: the gateway stamps the ones it makes up for a silent device
with its own clock, which may be far from the device's (a device clock hours behind would otherwise
make every other meter look silent, and its readings pruned as too old).
"""

from __future__ import annotations

from bisect import bisect_left
from operator import lt

from ferrogate.gateway.reading import Quality


class Series:
    __slots__ = ("last_usable_ns", "qualities", "times", "values")

    def __init__(self) -> None:
        self.times: list[int] = []
        self.values: list[float | None] = []
        self.qualities: list[Quality] = []
        self.last_usable_ns: int | None = None

    def __len__(self) -> int:
        return len(self.times)

    def add(self, t_ns: int, value: float | None, quality: Quality) -> int:
        """Insert or overwrite a reading; returns where the series changed from (the reading
        before it, whose interval the new one closes or splits), for re-deriving what it touches."""
        times = self.times
        usable = value is not None and quality is not Quality.BAD
        if usable and (self.last_usable_ns is None or t_ns > self.last_usable_ns):
            self.last_usable_ns = t_ns
        elif not usable and t_ns == self.last_usable_ns:  # a redelivery turned the newest usable one bad
            self.last_usable_ns = self._newest_usable_before(t_ns)
        if not times or t_ns > times[-1]:  # the usual case: in order
            i = len(times)
            times.append(t_ns)
            self.values.append(value)
            self.qualities.append(quality)
        else:
            i = bisect_left(times, t_ns)
            if i < len(times) and times[i] == t_ns:
                self.values[i] = value
                self.qualities[i] = quality
            else:
                times.insert(i, t_ns)
                self.values.insert(i, value)
                self.qualities.insert(i, quality)
        if i == 0:
            return t_ns
        if not usable:  # no value: it changes no interval, only marks the time
            return times[i - 1]
        # the interval a usable reading closes starts at the last usable one before it: bad readings
        # the gateway stamped inside a gap (an outage) are skipped, or the heat ending inside the gap
        # would lie before the re-derived span and never be made (walked once per gap, not per reading)
        j = i - 1
        values, qualities = self.values, self.qualities
        while j > 0 and (values[j] is None or qualities[j] is Quality.BAD):
            j -= 1
        return times[j]

    def _newest_usable_before(self, t_ns: int) -> int | None:
        found = self.latest_at(t_ns - 1)
        return found[0] if found is not None else None

    def prune_before(self, t_ns: int) -> None:
        """Forget readings older than `t_ns` (keeps one before it as the counter baseline)."""
        i = max(0, bisect_left(self.times, t_ns) - 1)
        if i:
            del self.times[:i], self.values[:i], self.qualities[:i]

    def extend(self, times: list[int], values: list[float | None], qualities: list[Quality]) -> None:
        """Readings newer than every one held, in strictly ascending time (a read-back from InfluxDB),
        appended at once; anything else goes through `add`, one by one."""
        if not times:
            return
        if (self.times and times[0] <= self.times[-1]) or not all(map(lt, times, times[1:])):
            for t, value, quality in zip(times, values, qualities, strict=True):
                self.add(t, value, quality)
            return
        self.times.extend(times)
        self.values.extend(values)
        self.qualities.extend(qualities)
        for i in range(len(times) - 1, -1, -1):
            if values[i] is not None and qualities[i] is not Quality.BAD:
                self.last_usable_ns = times[i]  # newer than any held: it is the newest usable one
                break

    def drop_before(self, t_ns: int) -> None:
        """Forget every reading older than `t_ns` (no baseline kept, unlike `prune_before`): the series
        then holds what reading it back from `t_ns` on would give."""
        i = bisect_left(self.times, t_ns)
        if i:
            del self.times[:i], self.values[:i], self.qualities[:i]
        if self.last_usable_ns is not None and self.last_usable_ns < t_ns:
            self.last_usable_ns = None  # it was the newest usable one: none is left

    def since(self, t_ns: int) -> Series:
        """A copy holding the readings from `t_ns` on, plus those from the last usable one before it
        on: a device that reports by exception (OPC UA) may not have repeated a tap counter for hours,
        and a step (a tap, a counter's interval) is only seen against the value before it. A bad
        reading has no value to see it against: during an outage the gateway stamps the bad readings
        it makes up inside the gap, and taking one of those as the baseline lost the tap inside the
        gap (the next heat then started at the first reading after the gap, its energy before that
        in no record, and the heat before it kept all of its interpolation error)."""
        i = bisect_left(self.times, t_ns) - 1
        values, qualities = self.values, self.qualities
        while i > 0 and (values[i] is None or qualities[i] is Quality.BAD):
            i -= 1
        i = max(0, i)
        out = Series()
        out.times, out.values, out.qualities = self.times[i:], self.values[i:], self.qualities[i:]
        out.last_usable_ns = self.last_usable_ns
        return out

    def latest_at(self, t_ns: int) -> tuple[int, float, Quality] | None:
        """The last usable (not bad) reading at or before `t_ns`."""
        i = bisect_left(self.times, t_ns + 1) - 1
        while i >= 0:
            v = self.values[i]
            if v is not None and self.qualities[i] is not Quality.BAD:
                return self.times[i], v, self.qualities[i]
            i -= 1
        return None


def usable(series: Series) -> tuple[list[int], list[float], list[Quality]]:
    """The readings with a value (good or uncertain); bad ones carry none and are skipped."""
    times: list[int] = []
    values: list[float] = []
    qualities: list[Quality] = []
    for t, v, q in zip(series.times, series.values, series.qualities, strict=True):
        if v is not None and q is not Quality.BAD:
            times.append(t)
            values.append(v)
            qualities.append(q)
    return times, values, qualities

"""What the books missed while the broker held no session for them, and where to read it back from.

The books follow telemetry over MQTT with a persistent session (QoS 1): while they are away the
broker queues for them. When it did not (their first session ever, a broker restarted without its
persistence file, a session that expired), what was published before the new subscription never
reaches them; ingest stored it, so the books read it back from InfluxDB (gateway/accounting_service.py).

Per device the missed span is known from the stream itself, not from clocks: it begins after the
newest usable reading the books held when the new session's first usable reading of that device
arrived (its "marker"), and ends before that marker. A device's batches are published in order and
ingest stores them in the order it receives them, so once InfluxDB holds a reading of the device at
or after its marker it holds the whole span, and the span is read once. Pure bookkeeping: the
service does the reading.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ferrogate.gateway.energy.series import Series
from ferrogate.gateway.reading import Quality, ScanBatch


@dataclass(slots=True)
class Gap:
    """A device's missed span [start_ns, marker_ns); start None: no usable reading held before it."""

    start_ns: int | None
    marker_ns: int


class SessionGaps:
    def __init__(self, devices: Iterable[str]) -> None:
        self.devices = frozenset(devices)
        # devices of a new session whose first usable reading has not come yet (-> their old start,
        # when a gap of an earlier session was still open)
        self.awaiting: dict[str, int | None] = {}
        self.ready: dict[str, Gap] = {}  # marked: to read back once InfluxDB holds the marker
        self.sessions = 0  # new (not resumed) sessions seen
        self.filled = 0  # gaps read back

    def new_session(self) -> None:
        """The broker has no queue for the books: every device's stream starts again at its next
        usable reading. A span still waiting to be read back stays open from where it began."""
        self.sessions += 1
        for device in self.devices:
            gap = self.ready.pop(device, None)
            if device not in self.awaiting:
                self.awaiting[device] = gap.start_ns if gap is not None else None

    def first_live(self, batch: ScanBatch, store: Mapping[tuple[str, str], Series], ahead_limit_ns: int) -> None:
        """Before `batch` is taken into `store`: mark the device's gap at its first usable reading
        the books keep (called only while `awaiting` is not empty, so the hot path pays a truth test)."""
        device = batch.device
        if device not in self.awaiting:
            return
        marker = min(
            (
                r.source_time_ns
                for r in batch.readings
                if (device, r.point) in store
                and r.value is not None
                and r.quality is not Quality.BAD
                and r.source_time_ns <= ahead_limit_ns
            ),
            default=None,
        )
        if marker is None:
            return  # only bad readings (stamped by the gateway's clock): wait for a usable one
        start = self.awaiting.pop(device)
        if start is None:
            held = [s.last_usable_ns for (d, _), s in store.items() if d == device]
            start = None if not held or None in held else min(h for h in held if h is not None)
        if start is None or start < marker:
            self.ready[device] = Gap(start, marker)

    def filled_through(self, newest_by_device: Mapping[str, int]) -> dict[str, Gap]:
        """The gaps InfluxDB now holds whole (it has a reading at or after their marker), removed."""
        done = {d: g for d, g in self.ready.items() if newest_by_device.get(d, -1) >= g.marker_ns}
        for device in done:
            del self.ready[device]
        self.filled += len(done)
        return done

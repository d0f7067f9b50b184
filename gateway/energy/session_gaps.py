"""What the books missed while the broker held no session for them, and where to read it back from.

The books follow telemetry over MQTT with a persistent session (QoS 1): while they are away the
broker queues for them. When it did not (their first session ever, a broker restarted without its
persistence file, a session that expired), what was published before the new subscription never
reaches them; ingest stored it, so the books read it back from InfluxDB (gateway/accounting_service.py).

Per device the missed span is known from the stream itself, not from clocks: it begins after the
newest usable reading the books held when the new session's first batch of that device arrived, and
its end is that batch (the "marker": its first reading's point and time, an exact key in InfluxDB).
A device's batches are published in order and ingest stores them in the order it receives them, so
once InfluxDB holds the marker it holds every batch published before it; the books then read the
device's readings from the span's start on (those after the marker they also got live: the same
reading twice is an overwrite, `Series.add`). Pure bookkeeping: the service does the reading.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ferrogate.gateway.energy.series import Series
from ferrogate.gateway.reading import ScanBatch


@dataclass(frozen=True, slots=True)
class Gap:
    """A device's missed span: from `start_ns` (None: the books held no usable reading of it) up to
    its marker, the first reading of the first batch the new session brought (`point` at `marker_ns`)."""

    start_ns: int | None
    point: str
    marker_ns: int


class SessionGaps:
    def __init__(self, devices: Iterable[str]) -> None:
        self.devices = frozenset(devices)
        # devices of a new session whose first batch has not come yet (-> the start of a span of an
        # earlier session that was still open, else None)
        self.awaiting: dict[str, int | None] = {}
        self.ready: dict[str, Gap] = {}  # marked: read back once InfluxDB holds the marker
        self.sessions = 0  # new (not resumed) sessions seen
        self.filled = 0  # spans read back

    def new_session(self) -> None:
        """The broker kept no queue for the books: every device's stream starts again at its next
        batch. A span still waiting to be read back stays open from where it began."""
        self.sessions += 1
        for device in self.devices:
            gap = self.ready.pop(device, None)
            if device not in self.awaiting:
                self.awaiting[device] = gap.start_ns if gap is not None else None

    def first_live(self, batch: ScanBatch, store: Mapping[tuple[str, str], Series]) -> None:
        """Before `batch` is taken into `store`: mark the device's span at this, its first batch of
        the new session (called only while `awaiting` is not empty: the hot path pays a truth test)."""
        device = batch.device
        if device not in self.awaiting or not batch.readings:
            return
        start = self.awaiting.pop(device)
        if start is None:
            held = [s.last_usable_ns for (d, _), s in store.items() if d == device]
            start = None if not held or None in held else min(h for h in held if h is not None)
        first = batch.readings[0]
        self.ready[device] = Gap(start, first.point, first.source_time_ns)

    def take(self, device: str) -> Gap:
        """The device's span, read back (InfluxDB held its marker)."""
        self.filled += 1
        return self.ready.pop(device)

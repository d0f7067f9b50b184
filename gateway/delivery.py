"""Durable delivery acknowledgement: a collector keeps a batch in its spool until ingest has it durable.

The broker's PUBACK only says the broker has the message, perhaps only in memory until its next
autosave; a broker killed then would lose it. So every message a collector publishes from its
spool carries a delivery tag (an MQTT v5 user property): its spool stream (the collector), the
spool file's epoch, the entry id, and `prev`, the entry the collector sent before it on this
connection (0 for the first of a connection, which is always the spool's head). `prev` is the
collector's word that no entry between `prev` and `id` is waiting in its spool (they were confirmed
before, or dropped by a full spool's policy).

Ingest keeps, per stream and epoch, the high-water `mark`: every entry id <= mark is durable (in
InfluxDB, or in ingest's disk spool or dead-letter file) or was never waiting. An entry made
durable with prev <= mark moves the mark to its id; one that arrives early waits in a heap until
the mark reaches its prev. Ingest publishes the mark retained (QoS 1) on
`{root}/{site}/ingest/ack/{stream}`; the collector prunes its spool up to it, and after any
reconnect sends everything past it again. A hole (a message the broker dropped without closing any
connection, e.g. its queue limit for an absent worker) holds the mark while later entries wait:
ingest says so in the mark message (`waiting`, repeated every HOLE_REPORT_S), and a collector whose
mark has not moved for a while sends everything past it again. Several ingest workers (a shared subscription splits one
stream between them) also read each other's marks there and carry on from them, and a worker
that restarts learns the last mark from the retained message.

A re-sent batch makes exactly the same line protocol (same series and timestamp), which InfluxDB
stores as an overwrite, so replaying never duplicates a reading.
"""

from __future__ import annotations

import heapq
import struct
from dataclasses import dataclass, field

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ferrogate.gateway.mqtt_properties import LeanProperties

TAG_PROPERTY = "ferrogate-spool"
# heap entries a stream may hold waiting for a hole to be filled; beyond, the oldest are forgotten
# (the mark then waits for the collector to send them again, which it does after a reconnect or a stall)
MAX_WAITING = 100_000
# epochs remembered per stream (a reinstalled collector starts a new spool file, a new epoch)
MAX_EPOCHS = 2
# while entries wait beyond a hole, ingest repeats its mark (with the count) this often (s)
HOLE_REPORT_S = 5.0


class _TagProperties(LeanProperties):
    """PUBLISH properties holding only the delivery tag, packed once when made: paho packs a
    message's properties as it sends it (`pack`, about 15 us through its generic property table).
    LeanProperties: paho's tables as class attributes, not rebuilt per message (gateway/mqtt_properties.py)."""

    _packed = b""

    def pack(self) -> bytes:
        return self._packed


_USER_PROPERTY = 38  # MQTT v5 property identifier of a User Property (a UTF-8 string pair)
_KEY = TAG_PROPERTY.encode()


@dataclass(frozen=True, slots=True)
class DeliveryTag:
    stream: str
    epoch: str
    id: int
    prev: int


def tag_properties(stream: str, epoch: str, entry_id: int, prev: int) -> Properties:
    """The PUBLISH properties carrying a delivery tag. paho's Properties() and its attribute setter
    validate by scanning every property name (about 19 us); these are set directly, and their packed
    bytes made here, once per batch."""
    value = f"{stream} {epoch} {entry_id} {prev}"
    properties = _TagProperties(PacketTypes.PUBLISH)
    object.__setattr__(properties, "UserProperty", [(TAG_PROPERTY, value)])
    encoded = value.encode()
    body = struct.pack(f">BH{len(_KEY)}sH", _USER_PROPERTY, len(_KEY), _KEY, len(encoded)) + encoded
    object.__setattr__(properties, "_packed", _varint(len(body)) + body)
    return properties


def _varint(n: int) -> bytes:
    """MQTT's variable byte integer (the properties' length)."""
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def read_tag(properties: Properties | None) -> DeliveryTag | None:
    """The delivery tag of a received message, or None (a publisher that does not tag, or a bad tag)."""
    pairs = getattr(properties, "UserProperty", None) if properties is not None else None
    if not pairs:
        return None
    for key, value in pairs:
        if key == TAG_PROPERTY:
            parts = value.split(" ")
            if len(parts) != 4 or not (parts[2].isdigit() and parts[3].isdigit()):
                return None
            return DeliveryTag(parts[0], parts[1], int(parts[2]), int(parts[3]))
    return None


@dataclass
class _StreamMark:
    mark: int = 0
    published: int = 0  # the highest mark known to be on the ack topic
    reported_at: float = 0.0  # monotonic time this worker last published the mark
    waiting: list[tuple[int, int]] = field(default_factory=list)  # heap of (prev, id), durable, not yet joined

    def advance(self) -> None:
        waiting = self.waiting
        while waiting and waiting[0][0] <= self.mark:
            _, entry_id = heapq.heappop(waiting)
            if entry_id > self.mark:
                self.mark = entry_id


class DurableMarks:
    """Ingest's high-water marks per (stream, epoch); pure bookkeeping, the worker publishes them."""

    def __init__(self) -> None:
        self._marks: dict[str, dict[str, _StreamMark]] = {}

    def _stream(self, stream: str, epoch: str) -> _StreamMark:
        epochs = self._marks.setdefault(stream, {})
        state = epochs.get(epoch)
        if state is None:
            if len(epochs) >= MAX_EPOCHS:
                del epochs[next(iter(epochs))]  # the oldest epoch seen
            state = epochs[epoch] = _StreamMark()
        return state

    def durable(self, tag: DeliveryTag) -> bool:
        """The entry is durable; True when this moved the mark."""
        state = self._stream(tag.stream, tag.epoch)
        if tag.id <= state.mark:
            return False
        if tag.prev <= state.mark:
            state.mark = tag.id
            state.advance()
            return True
        heapq.heappush(state.waiting, (tag.prev, tag.id))
        if len(state.waiting) > MAX_WAITING:
            state.waiting = heapq.nsmallest(MAX_WAITING // 2, state.waiting)
        return False

    def merge(self, stream: str, epoch: str, mark: int) -> bool:
        """A mark read on the ack topic (retained, or another worker's); True when ours is now higher
        than that one (worth publishing)."""
        state = self._stream(stream, epoch)
        state.published = max(state.published, mark)
        if mark > state.mark:
            state.mark = mark
            state.advance()
        return state.mark > mark

    def mark(self, stream: str, epoch: str) -> int:
        state = self._marks.get(stream, {}).get(epoch)
        return state.mark if state is not None else 0

    def unpublished(self, now: float) -> list[tuple[str, str, int, int]]:
        """(stream, epoch, mark, waiting) of every mark that moved past what the ack topic says, and
        of every mark held by a hole not reported for HOLE_REPORT_S (at `now`, monotonic seconds)."""
        out = []
        for stream, epochs in self._marks.items():
            newest = next(reversed(epochs))  # holes of an older spool file are nobody's to fill
            for epoch, state in epochs.items():
                hole = epoch == newest and state.waiting and now - state.reported_at >= HOLE_REPORT_S
                if state.mark > state.published or hole:
                    out.append((stream, epoch, state.mark, len(state.waiting)))
        return out

    def holes(self) -> bool:
        """Whether any mark is held by a hole (entries wait beyond it)."""
        return any(state.waiting for epochs in self._marks.values() for state in epochs.values())

    def published(self, stream: str, epoch: str, mark: int, now: float = 0.0) -> None:
        state = self._stream(stream, epoch)
        state.published = max(state.published, mark)
        state.reported_at = now

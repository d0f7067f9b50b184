"""Data change notifications read straight from their encoding (OPC UA Part 6, 5.2.2.17 DataValue).

asyncua decodes every monitored item of a publish response into a MonitoredItemNotification, a
DataValue, a Variant, a StatusCode and two datetimes (pure Python dataclasses): at thousands of
changes a second that costs more CPU than everything the collector does with the values. Here a
DataChangeNotification is kept as its encoded body (`EncodedChanges`, still a DataChangeNotification
to anyone else: its MonitoredItems are asyncua's own decoding, made when first asked for), and
`changes()` reads (client handle, value, status code, source time) of each item with `struct`.

Only scalar numeric and Boolean variants are read here; a body with anything else (strings, arrays,
extension objects) is asyncua's to decode, item by item, to the same result.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import asyncua
from asyncua import ua
from asyncua.common.utils import Buffer
from asyncua.ua import ua_binary
from asyncua.ua.uatypes import MAX_OPC_FILETIME

from ferrogate.gateway.timeutil import datetime_to_ns

Compact = tuple[object, int, int | None]  # value, status code, source time (Unix ns)
Change = tuple[int, Compact]  # client handle, what it says

_UINT32 = struct.Struct("<I")
_INT32 = struct.Struct("<i")
_INT64 = struct.Struct("<q")
# variant built-in type id -> its scalar's struct (Part 6, 5.1.2)
_SCALARS = {
    1: struct.Struct("<?"),  # Boolean
    2: struct.Struct("<b"),  # SByte
    3: struct.Struct("<B"),  # Byte
    4: struct.Struct("<h"),  # Int16
    5: struct.Struct("<H"),  # UInt16
    6: struct.Struct("<i"),  # Int32
    7: struct.Struct("<I"),  # UInt32
    8: struct.Struct("<q"),  # Int64
    9: struct.Struct("<Q"),  # UInt64
    10: struct.Struct("<f"),  # Float
    11: struct.Struct("<d"),  # Double
}
_UNIX_EPOCH_TICKS = 116_444_736_000_000_000  # 1970-01-01 in 100 ns ticks since 1601-01-01


def ticks_to_ns(ticks: int) -> int:
    """An OPC UA DateTime as Unix ns, at asyncua's microsecond resolution (and its clamping)."""
    if 0 <= ticks < MAX_OPC_FILETIME:
        return (ticks - _UNIX_EPOCH_TICKS) // 10 * 1000
    return datetime_to_ns(ua.win_epoch_to_datetime(ticks))


def compact(dv: ua.DataValue) -> Compact:
    """(value, status code, source time) of a DataValue decoded by asyncua (Read results, fallbacks)."""
    value = dv.Value.Value if dv.Value is not None else None
    status = dv.StatusCode.value if dv.StatusCode is not None else 0
    stamp = dv.SourceTimestamp or dv.ServerTimestamp
    return value, status, datetime_to_ns(stamp) if stamp is not None else None


class EncodedChanges(ua.DataChangeNotification):
    """A DataChangeNotification kept encoded; `MonitoredItems` and `DiagnosticInfos` are decoded by
    asyncua when first read (so any other user of the notification sees what asyncua gives)."""

    body: bytes

    def __getattr__(self, name: str) -> Any:  # only for attributes not set yet
        if name not in ("MonitoredItems", "DiagnosticInfos"):
            raise AttributeError(name)
        decoded = _asyncua_decoder(ua.DataChangeNotification)(Buffer(self.body))
        self.MonitoredItems = decoded.MonitoredItems
        self.DiagnosticInfos = decoded.DiagnosticInfos
        return getattr(decoded, name)


def changes(notification: ua.DataChangeNotification) -> list[Change]:
    """Every monitored item of the notification, in order."""
    if isinstance(notification, EncodedChanges) and "MonitoredItems" not in notification.__dict__:
        parsed = _parse(notification.body)
        if parsed is not None:
            return parsed
    return [(item.ClientHandle, compact(item.Value)) for item in notification.MonitoredItems]


def _parse(body: bytes) -> list[Change] | None:
    """The items of an encoded DataChangeNotification; None when one is not a plain scalar."""
    (count,) = _INT32.unpack_from(body, 0)
    pos = 4
    out: list[Change] = []
    append = out.append
    scalars, uint32, int64 = _SCALARS, _UINT32.unpack_from, _INT64.unpack_from
    for _ in range(max(count, 0)):
        (handle,) = uint32(body, pos)
        mask = body[pos + 4]
        pos += 5
        value: object = None
        if mask & 0x01:
            kind = body[pos]
            pos += 1
            if kind:  # 0: a null variant
                scalar = scalars.get(kind)  # array and dimension bits set: not a plain scalar
                if scalar is None:
                    return None
                (value,) = scalar.unpack_from(body, pos)
                pos += scalar.size
        status = 0
        if mask & 0x02:
            (status,) = uint32(body, pos)
            pos += 4
        source: int | None = None
        if mask & 0x04:
            source = ticks_to_ns(int64(body, pos)[0])
            pos += 8
        if mask & 0x08:
            if source is None:  # the server time when the source sent none (as the driver reads it)
                source = ticks_to_ns(int64(body, pos)[0])
            pos += 8
        pos += 2 * ((mask & 0x10) > 0) + 2 * ((mask & 0x20) > 0)  # picoseconds: below our resolution
        append((handle, (value, status, source)))
    return out


_asyncua_decoder: Callable[[type], Callable[[Buffer], Any]] = ua_binary._create_dataclass_deserializer


def _keep_encoded(data: Buffer) -> EncodedChanges:
    notification = EncodedChanges.__new__(EncodedChanges)
    notification.body = data.read(len(data))
    return notification


def _deserializer(objtype: type | str) -> Callable[[Buffer], Any]:
    if objtype is ua.DataChangeNotification:
        return _keep_encoded
    return _asyncua_decoder(objtype)


# the asyncua release whose private decoder hooks this was written and tested against (pinned in
# pyproject.toml); with any other, asyncua decodes as it ships and `changes()` reads its objects
CHECKED_ASYNCUA = "2.1.0"


def install() -> bool:
    """Make this process's asyncua keep DataChangeNotifications encoded (idempotent); False (asyncua
    left as it is) on a release this was not checked against. asyncua looks its deserializers up by
    type through `_create_dataclass_deserializer`."""
    if asyncua.__version__ != CHECKED_ASYNCUA:
        return False
    if ua_binary._create_dataclass_deserializer is not _deserializer:
        ua_binary._create_dataclass_deserializer = _deserializer
        ua_binary._create_type_deserializer.cache_clear()  # deserializers built before still decode
    return True

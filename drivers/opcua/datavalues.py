"""DataValues read straight from their encoding (OPC UA Part 6, 5.2.2.17 DataValue).

asyncua decodes every DataValue into a DataValue, a Variant, a StatusCode and two datetimes (pure
Python dataclasses): at thousands of values a second that costs more CPU than everything the
collector does with them. `read_values` reads an encoded array of DataValues (a Read response's
Results, a DataChangeNotification's MonitoredItems) in one pass with `struct`, as the (value, status
code, source time) the driver keeps.

Only scalar numeric and Boolean variants are read here; any other DataValue (strings, arrays,
extension objects) is decoded by asyncua, on its own, to the same result.
"""

from __future__ import annotations

import struct

from asyncua import ua
from asyncua.common.utils import Buffer
from asyncua.ua.ua_binary import from_binary
from asyncua.ua.uatypes import MAX_OPC_FILETIME

from ferrogate.gateway.timeutil import datetime_to_ns

Compact = tuple[object, int, int | None]  # value, status code, source time (Unix ns)

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
# DataValue encoding mask bits (Part 6, 5.2.2.17)
_VALUE, _STATUS, _SOURCE_TIME, _SERVER_TIME, _SOURCE_PICO, _SERVER_PICO = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20


def ticks_to_ns(ticks: int) -> int:
    """An OPC UA DateTime as Unix ns, at asyncua's microsecond resolution (and its clamping)."""
    if 0 <= ticks < MAX_OPC_FILETIME:
        return (ticks - _UNIX_EPOCH_TICKS) // 10 * 1000
    return datetime_to_ns(ua.win_epoch_to_datetime(ticks))


def compact(dv: ua.DataValue) -> Compact:
    """(value, status code, source time) of a DataValue decoded by asyncua; the server time stands
    in for a missing source time."""
    value = dv.Value.Value if dv.Value is not None else None
    status = dv.StatusCode.value if dv.StatusCode is not None else 0
    stamp = dv.SourceTimestamp or dv.ServerTimestamp
    return value, status, datetime_to_ns(stamp) if stamp is not None else None


def read_values(body: bytes, pos: int, handles: list[int] | None = None) -> tuple[list[Compact], int]:
    """The array of DataValues encoded at `pos` (an Int32 count, then the values) and the position
    after it. With `handles`, each DataValue is preceded by a UInt32 client handle (a
    MonitoredItemNotification), which is appended there."""
    (count,) = _INT32.unpack_from(body, pos)
    pos += 4
    out: list[Compact] = []
    append = out.append
    scalars, uint32, int64 = _SCALARS, _UINT32.unpack_from, _INT64.unpack_from
    max_ticks = MAX_OPC_FILETIME
    for _ in range(max(count, 0)):
        if handles is not None:
            handles.append(uint32(body, pos)[0])
            pos += 4
        start = pos
        mask = body[pos]
        pos += 1
        value: object = None
        if mask & _VALUE:
            kind = body[pos]
            pos += 1
            if kind:  # 0: a null variant
                scalar = scalars.get(kind)  # array and dimension bits set: not a plain scalar
                if scalar is None:
                    value, pos = _asyncua_decoded(body, start)
                    append(value)
                    continue
                (value,) = scalar.unpack_from(body, pos)
                pos += scalar.size
        status = 0
        if mask & _STATUS:
            (status,) = uint32(body, pos)
            pos += 4
        source: int | None = None
        if mask & (_SOURCE_TIME | _SERVER_TIME):  # the server time when the source sent none
            (ticks,) = int64(body, pos)
            source = (ticks - _UNIX_EPOCH_TICKS) // 10 * 1000 if 0 <= ticks < max_ticks else ticks_to_ns(ticks)
            pos += 8 * ((mask & _SOURCE_TIME) > 0) + 8 * ((mask & _SERVER_TIME) > 0)
        pos += 2 * ((mask & _SOURCE_PICO) > 0) + 2 * ((mask & _SERVER_PICO) > 0)  # below our resolution
        append((value, status, source))
    return out, pos


def _asyncua_decoded(body: bytes, pos: int) -> tuple[Compact, int]:
    """The DataValue at `pos` as asyncua decodes it, and the position after it."""
    data = Buffer(body, pos)
    dv = from_binary(ua.DataValue, data)
    return compact(dv), len(body) - len(data)

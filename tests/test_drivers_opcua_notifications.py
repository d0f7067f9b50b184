"""Data change notifications read from their encoding give what asyncua's own decoding gives: values
of every scalar type, status codes (Bad, Uncertain), source or server times, null and non-numeric
variants; other users of the notification still get asyncua's objects."""

from __future__ import annotations

from datetime import UTC, datetime

from asyncua import ua
from asyncua.common.utils import Buffer
from asyncua.ua.ua_binary import extensionobject_from_binary, extensionobject_to_binary

from ferrogate.drivers.opcua import notifications
from ferrogate.drivers.opcua.notifications import EncodedChanges, changes, compact, ticks_to_ns

SOURCE = datetime(2026, 12, 2, 13, 0, 0, 123456, tzinfo=UTC)
SERVER = datetime(2026, 12, 2, 13, 0, 1, 654321, tzinfo=UTC)
BAD_SENSOR = ua.StatusCodes.BadSensorFailure
UNCERTAIN = ua.StatusCodes.UncertainLastUsableValue


def _item(
    handle: int, variant: ua.Variant, status: int = 0, source=SOURCE, server=SERVER
) -> ua.MonitoredItemNotification:
    dv = ua.DataValue(variant, StatusCode=ua.StatusCode(status), SourceTimestamp=source, ServerTimestamp=server)
    return ua.MonitoredItemNotification(ClientHandle=handle, Value=dv)


def _round_trip(items: list[ua.MonitoredItemNotification]) -> ua.DataChangeNotification:
    """Encoded as a server sends it, decoded as the client's publish loop decodes it."""
    notifications.install()
    encoded = extensionobject_to_binary(ua.DataChangeNotification(MonitoredItems=items))
    return extensionobject_from_binary(Buffer(encoded))


ITEMS = [
    _item(1000, ua.Variant(1.5, ua.VariantType.Double)),
    _item(1001, ua.Variant(0.25, ua.VariantType.Float), source=None),  # the server time stands in
    _item(1002, ua.Variant(7, ua.VariantType.UInt32), source=None, server=None),
    _item(1003, ua.Variant(-3, ua.VariantType.Int64)),
    _item(1004, ua.Variant(True, ua.VariantType.Boolean)),
    _item(1005, ua.Variant(-2, ua.VariantType.Int16)),
    _item(1006, ua.Variant(2**40, ua.VariantType.UInt64)),
    _item(1007, ua.Variant(0.0, ua.VariantType.Double), BAD_SENSOR),  # a failed sensor's 0.0
    _item(1008, ua.Variant(), BAD_SENSOR),  # Bad without a value
    _item(1009, ua.Variant(3.0, ua.VariantType.Double), UNCERTAIN),
    _item(1010, ua.Variant(200, ua.VariantType.Byte)),
    _item(1011, ua.Variant(-100, ua.VariantType.Int32)),
]


def test_scalars_statuses_and_times_match_asyncua() -> None:
    got = _round_trip(ITEMS)
    assert isinstance(got, EncodedChanges)
    fast = changes(got)
    expected = [(item.ClientHandle, compact(item.Value)) for item in ITEMS]
    assert fast == expected
    handles = dict(fast)
    assert handles[1000] == (1.5, 0, 1_796_216_400_123_456_000)
    assert handles[1001][2] == 1_796_216_401_654_321_000  # server time when no source time
    assert handles[1002] == (7, 0, None)
    assert handles[1007] == (0.0, BAD_SENSOR, handles[1000][2])  # the value is kept: the driver drops it
    assert handles[1008] == (None, BAD_SENSOR, handles[1000][2])
    assert handles[1009][1] == UNCERTAIN
    # anyone else reading the notification gets asyncua's objects, equal to what was sent
    assert [(i.ClientHandle, i.Value.Value.Value, i.Value.StatusCode) for i in got.MonitoredItems] == [
        (i.ClientHandle, i.Value.Value.Value, i.Value.StatusCode) for i in ITEMS
    ]


def test_a_non_scalar_value_makes_asyncua_decode_the_notification() -> None:
    items = [*ITEMS[:2], _item(1020, ua.Variant("text", ua.VariantType.String)), _item(1021, ua.Variant([1.0, 2.0]))]
    fast = changes(_round_trip(items))
    assert fast == [(item.ClientHandle, compact(item.Value)) for item in items]
    assert fast[2][1][0] == "text" and fast[3][1][0] == [1.0, 2.0]


def test_times_at_microsecond_resolution_and_clamped_as_asyncua_does() -> None:
    for ticks in (0, 1, 9, 10, 116_444_736_000_000_000, 134_000_000_000_000_123, -5, 2**62):
        dv = ua.DataValue(ua.Variant(1.0), SourceTimestamp=ua.win_epoch_to_datetime(ticks))
        assert ticks_to_ns(ticks) == compact(dv)[2], ticks

"""DataValues read from their encoding (data change notifications, Read responses) give what
asyncua's own decoding gives: values of every scalar type, status codes (Bad with and without a
value, Uncertain), source or server times, null variants, and anything else decoded by asyncua item
by item; other users of a notification still get asyncua's objects; a Read request is the bytes
asyncua would send; on an asyncua release the hooks were not checked against nothing is hooked."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from asyncua import ua
from asyncua.common.utils import Buffer
from asyncua.ua import ua_binary
from asyncua.ua.ua_binary import extensionobject_from_binary, extensionobject_to_binary, struct_to_binary

from ferrogate.drivers.opcua import asyncua_hooks
from ferrogate.drivers.opcua.datavalues import compact, ticks_to_ns
from ferrogate.drivers.opcua.notifications import EncodedChanges, changes
from ferrogate.drivers.opcua.reads import encoded_read, results

SOURCE = datetime(2026, 12, 2, 13, 0, 0, 123456, tzinfo=UTC)
SERVER = datetime(2026, 12, 2, 13, 0, 1, 654321, tzinfo=UTC)
BAD_SENSOR = ua.StatusCodes.BadSensorFailure
UNCERTAIN = ua.StatusCodes.UncertainLastUsableValue


def _dv(variant: ua.Variant, status: int = 0, source=SOURCE, server=SERVER, **picoseconds) -> ua.DataValue:
    return ua.DataValue(
        variant, StatusCode=ua.StatusCode(status), SourceTimestamp=source, ServerTimestamp=server, **picoseconds
    )


VALUES = [
    _dv(ua.Variant(1.5, ua.VariantType.Double)),
    _dv(ua.Variant(0.25, ua.VariantType.Float), source=None),  # the server time stands in
    _dv(ua.Variant(7, ua.VariantType.UInt32), source=None, server=None),
    _dv(ua.Variant(-3, ua.VariantType.Int64)),
    _dv(ua.Variant(True, ua.VariantType.Boolean)),
    _dv(ua.Variant(-2, ua.VariantType.Int16)),
    _dv(ua.Variant(2**40, ua.VariantType.UInt64)),
    _dv(ua.Variant(0.0, ua.VariantType.Double), BAD_SENSOR),  # a failed sensor's 0.0
    _dv(ua.Variant(), BAD_SENSOR),  # Bad without a value
    _dv(ua.Variant(3.0, ua.VariantType.Double), UNCERTAIN),
    _dv(ua.Variant(200, ua.VariantType.Byte)),
    _dv(ua.Variant(-100, ua.VariantType.Int32)),
    _dv(ua.Variant(4.5, ua.VariantType.Double), SourcePicoseconds=7, ServerPicoseconds=9),
]
# what the one-pass reading leaves to asyncua, among values it reads itself
OTHERS = [
    _dv(ua.Variant("text", ua.VariantType.String)),
    _dv(ua.Variant([1.0, 2.0], ua.VariantType.Double)),
    _dv(ua.Variant("stale text", ua.VariantType.String), UNCERTAIN, source=None),
]
MIXED = [VALUES[0], OTHERS[0], *VALUES[1:3], OTHERS[1], VALUES[9], OTHERS[2], VALUES[-1]]


@pytest.fixture(autouse=True)
def hooks() -> None:
    assert asyncua_hooks.install(), "written for the pinned asyncua release"


def _notification(dvs: list[ua.DataValue]) -> ua.DataChangeNotification:
    """Encoded as a server sends it, decoded as the client's publish loop decodes it."""
    items = [ua.MonitoredItemNotification(ClientHandle=1000 + k, Value=dv) for k, dv in enumerate(dvs)]
    return extensionobject_from_binary(
        Buffer(extensionobject_to_binary(ua.DataChangeNotification(MonitoredItems=items)))
    )


def _read_response(dvs: list[ua.DataValue], service_result: int = 0) -> Buffer:
    """A ReadResponse as a server sends it (after the message header)."""
    response = ua.ReadResponse(Results=dvs)
    response.ResponseHeader.ServiceResult = ua.StatusCode(service_result)
    return Buffer(struct_to_binary(response))


def test_notifications_match_asyncua() -> None:
    got = _notification(VALUES)
    assert isinstance(got, EncodedChanges)
    fast = changes(got)
    assert fast == [(1000 + k, compact(dv)) for k, dv in enumerate(VALUES)]
    handles = dict(fast)
    assert handles[1000] == (1.5, 0, 1_796_216_400_123_456_000)
    assert handles[1001][2] == 1_796_216_401_654_321_000  # server time when no source time
    assert handles[1002] == (7, 0, None)
    assert handles[1007] == (0.0, BAD_SENSOR, handles[1000][2])  # the value is kept: the driver drops it
    assert handles[1008] == (None, BAD_SENSOR, handles[1000][2])
    assert handles[1009][1] == UNCERTAIN
    # anyone else reading the notification gets asyncua's objects, equal to what was sent
    assert [(i.ClientHandle, i.Value.Value.Value, i.Value.StatusCode) for i in got.MonitoredItems] == [
        (1000 + k, dv.Value.Value, dv.StatusCode) for k, dv in enumerate(VALUES)
    ]


def test_read_results_match_asyncua() -> None:
    fast = results(_read_response(VALUES))
    assert fast == [compact(dv) for dv in VALUES]
    assert fast[7] == (0.0, BAD_SENSOR, fast[0][2]) and fast[9] == (3.0, UNCERTAIN, fast[0][2])


def test_values_the_one_pass_does_not_read_are_asyncuas_and_the_rest_still_read() -> None:
    expected = [compact(dv) for dv in MIXED]
    assert [v for v, _, _ in expected[1:2] + expected[4:5] + expected[6:7]] == ["text", [1.0, 2.0], "stale text"]
    assert results(_read_response(MIXED)) == expected
    assert changes(_notification(MIXED)) == [(1000 + k, v) for k, v in enumerate(expected)]


def test_a_bad_service_result_raises_as_asyncua_does() -> None:
    with pytest.raises(ua.UaStatusCodeError) as raised:
        results(_read_response([], ua.StatusCodes.BadTooManyOperations))
    assert raised.value.code == ua.StatusCodes.BadTooManyOperations


def test_an_encoded_read_is_the_request_asyncua_would_send() -> None:
    nodes = [ua.NodeId("F0000.v000", 2), ua.NodeId(85), ua.NodeId("nsu", 3)]
    request = encoded_read(nodes)
    request.RequestHeader.RequestHandle = 42  # as asyncua sets it per call: encoded per call
    plain = ua.ReadRequest(RequestHeader=request.RequestHeader)
    for n in nodes:  # what asyncua's read_attributes builds
        rv = ua.ReadValueId()
        rv.NodeId, rv.AttributeId = n, ua.AttributeIds.Value
        plain.Parameters.NodesToRead.append(rv)
    assert struct_to_binary(request) == struct_to_binary(plain)


def test_times_at_microsecond_resolution_and_clamped_as_asyncua_does() -> None:
    for ticks in (0, 1, 9, 10, 116_444_736_000_000_000, 134_000_000_000_000_123, -5, 2**62):
        dv = ua.DataValue(ua.Variant(1.0), SourceTimestamp=ua.win_epoch_to_datetime(ticks))
        assert ticks_to_ns(ticks) == compact(dv)[2], ticks
        assert results(_read_response([dv])) == [compact(dv)], ticks


def test_nothing_is_hooked_on_an_asyncua_release_it_was_not_checked_against(monkeypatch) -> None:
    # as asyncua ships (this process has the hooks installed by the fixture)
    monkeypatch.setattr(ua_binary, "_create_dataclass_deserializer", asyncua_hooks._asyncua_deserializer)
    monkeypatch.setattr(ua_binary, "create_dataclass_serializer", asyncua_hooks._asyncua_serializer)
    monkeypatch.setattr(asyncua_hooks.asyncua, "__version__", "9.9.9")
    assert asyncua_hooks.install() is False
    assert ua_binary._create_dataclass_deserializer is asyncua_hooks._asyncua_deserializer
    assert ua_binary.create_dataclass_serializer is asyncua_hooks._asyncua_serializer

"""Telemetry payloads (schemas ferrogate/1 and the compact ferrogate/2) and line protocol: pure logic."""

from __future__ import annotations

import json

import pytest

from ferrogate.gateway.lineprotocol import batch_lines, columns_lines
from ferrogate.gateway.payload import SCHEMA_V2, PayloadError, decode_batch, decode_telemetry, encode_batch
from ferrogate.gateway.reading import Columns, Quality, Reading, ScanBatch

T = 1_795_000_000_123_456_789  # exact nanoseconds must survive every hop


def sample_batch() -> ScanBatch:
    return ScanBatch(
        site="plant",
        device="meter 1",
        seq=7,
        gateway_time_ns=T + 5,
        readings=[
            Reading("energy", 123456.0, "kWh", T),
            Reading("power", None, "kW", T, Quality.BAD, 'comm_error: "timeout"'),
            Reading("pf", 0.93, "1", T, Quality.UNCERTAIN, "stale"),
        ],
        assets={"energy": "eaf,1", "power": "eaf,1"},
    )


@pytest.mark.parametrize("schema", ["ferrogate/1", "ferrogate/2"])
def test_round_trip_keeps_everything(schema: str) -> None:
    batch = sample_batch()
    decoded = decode_batch(encode_batch(batch, schema))
    assert decoded == batch


def test_v2_is_arrays_with_one_time_and_only_the_readings_that_are_not_plainly_good() -> None:
    doc = json.loads(encode_batch(sample_batch(), SCHEMA_V2))
    assert doc == {
        "schema": "ferrogate/2",
        "site": "plant",
        "device": "meter 1",
        "seq": 7,
        "gateway_time_ns": T + 5,
        "p": ["energy", "power", "pf"],
        "u": ["kWh", "kW", "1"],
        "v": [123456.0, None, 0.93],  # the bad reading: null, never 0
        "t": T,
        "x": [[1, "bad", 'comm_error: "timeout"'], [2, "uncertain", "stale"]],
        "assets": {"energy": "eaf,1", "power": "eaf,1"},
    }


def test_v2_keeps_a_time_per_reading_when_they_differ() -> None:
    batch = ScanBatch("plant", "plc", 1, T, [Reading("a", 1.0, "kW", T), Reading("b", 2.0, "kW", T + 1)])
    doc = json.loads(encode_batch(batch, SCHEMA_V2))
    assert doc["ts"] == [T, T + 1] and "t" not in doc and "x" not in doc and "assets" not in doc
    assert decode_batch(encode_batch(batch, SCHEMA_V2)) == batch


@pytest.mark.parametrize("schema", ["ferrogate/1", "ferrogate/2"])
def test_a_value_json_cannot_carry_is_refused_on_encoding(schema: str) -> None:
    batch = ScanBatch("plant", "plc", 1, T, [Reading("a", 1.0, "kW", T), Reading("b", float("nan"), "kW", T)])
    with pytest.raises(ValueError, match="not finite"):
        encode_batch(batch, schema)


def test_bad_reading_is_null_not_zero() -> None:
    doc = json.loads(encode_batch(sample_batch()))
    assert doc["schema"] == "ferrogate/1"
    bad = doc["readings"][1]
    assert bad["v"] is None and bad["q"] == "bad" and bad["r"] == 'comm_error: "timeout"'


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe", "not JSON"),
        (b"[1,2]", "not a JSON object"),
        (b'{"schema":"other/9"}', "unknown schema"),
        (b'{"schema":"ferrogate/1","site":"s","device":"d","seq":1}', "missing field 'gateway_time_ns'"),
        (
            b'{"schema":"ferrogate/1","site":"s","device":"d","seq":1,"gateway_time_ns":1,"readings":{}}',
            "'readings' is not a list",
        ),
        (
            b'{"schema":"ferrogate/1","site":"s","device":"d","seq":1,"gateway_time_ns":1,'
            b'"readings":[{"point":"p","v":null,"u":"kW","q":"good","t":1}]}',
            "null but quality is good",
        ),
        (
            b'{"schema":"ferrogate/1","site":"s","device":"d","seq":1,"gateway_time_ns":1,'
            b'"readings":[{"point":"p","v":"1","u":"kW","q":"good","t":1}]}',
            "finite number",
        ),
        (
            b'{"schema":"ferrogate/1","site":"s","device":"d","seq":1,"gateway_time_ns":1,'
            b'"readings":[{"point":"p","v":1,"u":"kW","q":"fine","t":1}]}',
            "must be one of",
        ),
        (
            b'{"schema":"ferrogate/1","site":"s","device":"d","seq":1,"gateway_time_ns":1,'
            b'"readings":[{"point":"p","v":1,"u":"kW","q":"good","t":1.5}]}',
            "integer nanoseconds",
        ),
        (
            b'{"schema":"ferrogate/2","site":"s","device":"d","seq":1,"gateway_time_ns":1,'
            b'"p":["a"],"u":["kW"],"v":[null],"t":1}',
            "null but quality is good",
        ),
        (
            b'{"schema":"ferrogate/2","site":"s","device":"d","seq":1,"gateway_time_ns":1,'
            b'"p":["a"],"u":["kW"],"v":["1"],"t":1}',
            "finite number",
        ),
        (
            b'{"schema":"ferrogate/2","site":"s","device":"d","seq":1,"gateway_time_ns":1,'
            b'"p":["a"],"u":["kW"],"v":[true],"t":1}',
            "finite number",
        ),
        (
            b'{"schema":"ferrogate/2","site":"s","device":"d","seq":1,"gateway_time_ns":1,'
            b'"p":["a","b"],"u":["kW"],"v":[1,2],"t":1}',
            "same length",
        ),
        (
            b'{"schema":"ferrogate/2","site":"s","device":"d","seq":1,"gateway_time_ns":1,'
            b'"p":["a"],"u":["kW"],"v":[1]}',
            "missing field 'ts'",
        ),
        (
            b'{"schema":"ferrogate/2","site":"s","device":"d","seq":1,"gateway_time_ns":1,'
            b'"p":["a"],"u":["kW"],"v":[1],"ts":[1,2]}',
            "one time per reading",
        ),
        (
            b'{"schema":"ferrogate/2","site":"s","device":"d","seq":1,"gateway_time_ns":1,'
            b'"p":["a"],"u":["kW"],"v":[1],"t":1.5}',
            "integer nanoseconds",
        ),
        (
            b'{"schema":"ferrogate/2","site":"s","device":"d","seq":1,"gateway_time_ns":1,'
            b'"p":["a"],"u":["kW"],"v":[1],"ts":[1180591620717411303424]}',
            "integer nanoseconds",
        ),
        (
            b'{"schema":"ferrogate/2","site":"s","device":"d","seq":1,"gateway_time_ns":1,'
            b'"p":[""],"u":["kW"],"v":[1],"t":1}',
            "point id",
        ),
        (
            b'{"schema":"ferrogate/2","site":"s","device":"d","seq":1,"gateway_time_ns":1,'
            b'"p":["a"],"u":[null],"v":[1],"t":1}',
            "must be a string",
        ),
        (
            b'{"schema":"ferrogate/2","site":"s","device":"d","seq":1,"gateway_time_ns":1,"u":["kW"],"v":[1],"t":1}',
            "missing field 'p'",
        ),
        (
            b'{"schema":"ferrogate/2","site":"s","device":"d","seq":1,"gateway_time_ns":1,'
            b'"p":{"a":1},"u":["kW"],"v":[1],"t":1}',
            "'p' is not a list",
        ),
        (
            b'{"schema":"ferrogate/2","site":"s","device":"d","seq":1,"gateway_time_ns":1,'
            b'"p":["a"],"u":["kW"],"v":[1],"t":1,"x":[[0,"fine",null]]}',
            "must be one of",
        ),
        (
            b'{"schema":"ferrogate/2","site":"s","device":"d","seq":1,"gateway_time_ns":1,'
            b'"p":["a"],"u":["kW"],"v":[1],"t":1,"x":[[1,"bad",null]]}',
            "index must be",
        ),
        (
            b'{"schema":"ferrogate/2","site":"s","device":"d","seq":1,"gateway_time_ns":1,'
            b'"p":["a"],"u":["kW"],"v":[null],"t":1,"x":[[0,"bad",null],[0,"bad",null]]}',
            "index must be",
        ),
        (
            b'{"schema":"ferrogate/2","site":"s","device":"d","seq":1,"gateway_time_ns":1,'
            b'"p":["a"],"u":["kW"],"v":[1],"t":1,"x":[[0,"uncertain",5]]}',
            "reason must be",
        ),
        (
            b'{"schema":"ferrogate/2","site":"s","device":"d","seq":1,"gateway_time_ns":1,'
            b'"p":["a"],"u":["kW"],"v":[1],"t":1,"x":{"0":"bad"}}',
            "'x' is not a list",
        ),
        (
            b'{"schema":"ferrogate/2","site":"s","device":"d","seq":1,"gateway_time_ns":1,'
            b'"p":["a"],"u":["kW"],"v":[1],"t":1,"assets":["eaf"]}',
            "'assets' is not an object",
        ),
        (b'{"schema":"ferrogate/3"}', "unknown schema"),
        (b"[" * 5000 + b"]" * 5000, "not JSON"),
        (b'{"seq":' + b"9" * 10_000 + b"}", "not JSON"),
    ],
)
def test_malformed_payloads_are_rejected_with_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        decode_batch(payload)


def test_line_protocol_escapes_and_keeps_quality() -> None:
    lines = batch_lines(sample_batch())
    assert lines == [
        rf'reading,site=plant,device=meter\ 1,point=energy,asset=eaf\,1,unit=kWh value=123456.0,quality="good" {T}',
        rf'reading,site=plant,device=meter\ 1,point=power,asset=eaf\,1,unit=kW quality="bad",'
        rf'reason="comm_error: \"timeout\"" {T}',
        rf'reading,site=plant,device=meter\ 1,point=pf,unit=1 value=0.93,quality="uncertain",reason="stale" {T}',
    ]


def test_a_bad_reading_that_holds_a_number_loses_it_on_every_hop() -> None:
    """A Reading made BAD with its number still in it (a driver that kept a failed sensor's 0.0)
    goes out without it; a payload from another publisher with a number beside "bad" is kept as a
    bad reading without the number."""
    batch = ScanBatch("plant", "plc", 1, T, [Reading("power", 0.0, "kW", T, Quality.BAD, "BadSensorFailure")])
    assert json.loads(encode_batch(batch))["readings"][0]["v"] is None
    assert batch_lines(batch) == [
        f'reading,site=plant,device=plc,point=power,unit=kW quality="bad",reason="BadSensorFailure" {T}'
    ]
    foreign = (
        b'{"schema":"ferrogate/1","site":"s","device":"d","seq":1,"gateway_time_ns":1,'
        b'"readings":[{"point":"p","v":0.0,"u":"kW","q":"bad","r":"BadSensorFailure","t":1}]}'
    )
    (reading,) = decode_batch(foreign).readings
    assert (reading.value, reading.quality, reading.reason) == (None, Quality.BAD, "BadSensorFailure")
    assert json.loads(encode_batch(batch, SCHEMA_V2))["v"] == [None]
    foreign_v2 = (
        b'{"schema":"ferrogate/2","site":"s","device":"d","seq":1,"gateway_time_ns":1,'
        b'"p":["p"],"u":["kW"],"v":[0.0],"t":1,"x":[[0,"bad","BadSensorFailure"]]}'
    )
    (reading,) = decode_batch(foreign_v2).readings
    assert (reading.value, reading.quality, reading.reason) == (None, Quality.BAD, "BadSensorFailure")


@pytest.mark.parametrize(
    "batch",
    [
        sample_batch(),
        ScanBatch(
            "plant", "plc", 1, T, [Reading("a", 1.0, "kW", T), Reading("b", None, "kW", T + 1, Quality.BAD, "x")]
        ),
        ScanBatch("plant", "plc", 1, T, [Reading("a", 2.5, "kW", T, Quality.GOOD, "a note")]),
        ScanBatch("plant", "plc", 1, T, []),
    ],
)
def test_lines_from_the_arrays_are_the_lines_from_readings(batch: ScanBatch) -> None:
    """Ingest's fast path (ferrogate/2 straight to lines) writes exactly what the readings would."""
    payload = encode_batch(batch, SCHEMA_V2)
    columns = decode_telemetry(payload)
    assert isinstance(columns, Columns)
    assert columns_lines(columns) == batch_lines(decode_batch(payload)) == batch_lines(batch)


def test_integer_values_from_another_publisher_stay_float_fields() -> None:
    """InfluxDB types a field by its first write: 5 must go out as 5.0, as the readings' path does."""
    payload = (
        b'{"schema":"ferrogate/2","site":"s","device":"d","seq":1,"gateway_time_ns":1,'
        b'"p":["a","b"],"u":["kW","kW"],"v":[5,null],"t":1,"x":[[1,"bad","comm_error"]]}'
    )
    columns = decode_telemetry(payload)
    assert isinstance(columns, Columns)
    assert columns_lines(columns) == [
        'reading,site=s,device=d,point=a,unit=kW value=5.0,quality="good" 1',
        'reading,site=s,device=d,point=b,unit=kW quality="bad",reason="comm_error" 1',
    ]


def test_a_device_whose_points_change_gets_the_new_series() -> None:
    first = ScanBatch("plant", "dev", 1, T, [Reading("a", 1.0, "kW", T)])
    renamed = ScanBatch("plant", "dev", 2, T, [Reading("b", 1.0, "MW", T)], {"b": "eaf"})
    for batch in (first, renamed, first):
        columns = decode_telemetry(encode_batch(batch, SCHEMA_V2))
        assert isinstance(columns, Columns)
        assert columns_lines(columns) == batch_lines(batch)

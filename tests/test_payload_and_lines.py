"""Telemetry payload (schema ferrogate/1) and line protocol: pure logic."""

from __future__ import annotations

import json

import pytest

from ferrogate.gateway.lineprotocol import batch_lines
from ferrogate.gateway.payload import PayloadError, decode_batch, encode_batch
from ferrogate.gateway.reading import Quality, Reading, ScanBatch

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


def test_round_trip_keeps_everything() -> None:
    batch = sample_batch()
    decoded = decode_batch(encode_batch(batch))
    assert decoded == batch


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

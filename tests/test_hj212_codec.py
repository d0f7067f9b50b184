"""HJ 212 codec: the CRC against the reference's vectors, frames, data segments and CP, the split
joiner, and Hypothesis fuzzing of the whole receive path (it never crashes; what is not HJ 212
comes out as Hj212Error, and nothing else is ever raised)."""

from __future__ import annotations

import os
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ferrogate.drivers.hj212.protocol.cp import build_cp, parse_cp
from ferrogate.drivers.hj212.protocol.crc import crc16, crc16_bitwise
from ferrogate.drivers.hj212.protocol.errors import ErrorCode, Hj212Error
from ferrogate.drivers.hj212.protocol.frame import FrameSplitter, decode_frame, encode_frame
from ferrogate.drivers.hj212.protocol.message import decode_message, format_hj212_time, parse_hj212_time
from ferrogate.drivers.hj212.protocol.segment import DataSegment, build_segment, make_flag, parse_segment
from ferrogate.drivers.hj212.protocol.split import PacketJoiner
from ferrogate.drivers.hj212.receiver import LoggerAccount, Receiver

ZONE = ZoneInfo("Asia/Shanghai")
EXAMPLE_2017 = "QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&"
EXAMPLE_2025 = "QN=20240601085857223;ST=32;CN=1011;PW=123456;MN=010000A8900016F000169DC0;Flag=9;CP=&&&&"
MN = "88888880000001"
ACCOUNTS = {MN: LoggerAccount(MN, "123456", "stack1_cems", ZONE)}
FUZZ = settings(
    max_examples=int(os.environ.get("FERROGATE_FUZZ_EXAMPLES", "600")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.parametrize(
    ("data", "crc"),
    [(b"123456789", 0x2F80), (b"", 0xFFFF), (EXAMPLE_2017.encode(), 0x1C80), (EXAMPLE_2025.encode(), 0x2200)],
)
def test_crc_reference_vectors(data: bytes, crc: int) -> None:
    assert crc16(data) == crc16_bitwise(data) == crc


def test_crc_is_not_modbus() -> None:
    assert crc16(b"123456789") != 0x4B37  # CRC-16/MODBUS of the same bytes


@given(st.binary(max_size=300))
def test_crc_table_equals_appendix_a(data: bytes) -> None:
    assert crc16(data) == crc16_bitwise(data)


def test_frame_round_trip_of_the_example() -> None:
    frame = encode_frame(EXAMPLE_2017)
    assert frame == b"##0101" + EXAMPLE_2017.encode() + b"1C80\r\n"
    assert decode_frame(frame) == EXAMPLE_2017.encode()


def test_length_counts_utf8_bytes() -> None:
    segment = "ST=31;CN=2011;PW=123456;MN=烟囱1;Flag=4;CP=&&&&"
    frame = encode_frame(segment)
    assert frame[2:6] == b"%04d" % len(segment.encode("utf-8"))
    assert decode_frame(frame).decode("utf-8") == segment


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"#0101" + EXAMPLE_2017.encode() + b"1C80\r\n", ErrorCode.BAD_HEADER),
        (b"##0102" + EXAMPLE_2017.encode() + b"1C80\r\n", ErrorCode.BAD_LENGTH),
        (b"##0101" + EXAMPLE_2017.encode() + b"1C81\r\n", ErrorCode.BAD_CRC),
        (b"##1500" + b"x" * 1500 + b"1C81\r\n", ErrorCode.OVERSIZE),
    ],
)
def test_decode_frame_errors(frame: bytes, code: ErrorCode) -> None:
    with pytest.raises(Hj212Error) as caught:
        decode_frame(frame, max_segment=1024)
    assert caught.value.code is code


def test_segment_round_trip_and_flags() -> None:
    segment = parse_segment(EXAMPLE_2017)
    assert (segment.qn, segment.st, segment.cn, segment.pw, segment.mn) == (
        "20160801085857223",
        "32",
        "1062",
        "100000",
        "010000A8900016F000169DC0",
    )
    assert (segment.flag, segment.version, segment.wants_ack, segment.is_split) == (5, 1, True, False)
    assert build_segment(segment) == EXAMPLE_2017
    assert parse_segment(EXAMPLE_2025).version == 2
    assert make_flag(1, ack=True, split=True) == 7
    assert make_flag(2, ack=False) == 8


def test_cp_items_and_fields() -> None:
    cp = parse_cp("DataTime=20260105083000;a21026-Rtd=18.5,a21026-Flag=N;;a00000-Rtd=95.3")
    assert cp.fields == {"DataTime": "20260105083000"}
    assert cp.factors == {"a21026": {"Rtd": "18.5", "Flag": "N"}, "a00000": {"Rtd": "95.3"}}
    text = build_cp({"DataTime": "20260105083000"}, [("a21026", {"Rtd": "18.5", "Flag": "N"})])
    assert text == "DataTime=20260105083000;a21026-Rtd=18.5,a21026-Flag=N"


def test_data_time_in_the_loggers_zone() -> None:
    ns = parse_hj212_time("20260105083000", ZONE)
    assert ns == 1_767_573_000_000_000_000  # 2026-01-05T00:30:00Z
    assert parse_hj212_time("20260105083000250", ZONE) == ns + 250_000_000
    assert format_hj212_time(ns, ZONE) == "20260105083000"
    assert format_hj212_time(ns + 250_000_000, ZONE, millis=True) == "20260105083000250"


def _packet(pno: int, pnum: int = 3, cp: str = "") -> DataSegment:
    return DataSegment(
        st="31", cn="2061", pw="123456", mn=MN, qn="20260105090001000", flag=7, pnum=pnum, pno=pno, cp=cp
    )


def test_joiner_waits_for_every_packet_and_keeps_their_order() -> None:
    joiner = PacketJoiner()
    assert joiner.add(_packet(3, cp="c-Avg=3")) == []
    assert joiner.add(_packet(1, cp="DataTime=20260105080000;a-Avg=1")) == []
    assert joiner.add(_packet(1, cp="DataTime=20260105080000;a-Avg=1")) == []  # a resent packet
    [joined] = joiner.add(_packet(2, cp="DataTime=20260105080000;b-Avg=2"))  # DataTime repeated: kept once
    assert joined.complete and joined.packets == 3 and joiner.pending == 0
    assert joined.segment.cp == "DataTime=20260105080000;a-Avg=1;b-Avg=2;c-Avg=3"
    assert joined.segment.pnum is None and not joined.segment.flag & 2


def test_joiner_releases_what_came_after_the_timeout_and_bounds_the_waiting() -> None:
    now = [0.0]
    joiner = PacketJoiner(max_pending=2, timeout_s=60, clock=lambda: now[0])
    joiner.add(_packet(1, cp="a-Avg=1"))
    now[0] = 61
    [expired] = joiner.expire()
    assert not expired.complete and expired.packets == 1 and expired.segment.cp == "a-Avg=1"
    for qn in ("20260105090001001", "20260105090001002", "20260105090001003"):
        out = joiner.add(DataSegment(st="31", cn="2061", pw="1", mn=MN, qn=qn, flag=7, pnum=2, pno=1, cp="x-Avg=1"))
    assert [j.segment.qn for j in out] == ["20260105090001001"]  # the oldest pushed out, incomplete
    assert joiner.pending == 2


# -- fuzzing -------------------------------------------------------------------------------------

GOOD_UPLOAD = (
    f"QN=20260105083000123;ST=31;CN=2011;PW=123456;MN={MN};Flag=5;"
    "CP=&&DataTime=20260105083000;a21026-Rtd=18.5,a21026-Flag=N;a00000-Rtd=95.3,a00000-Flag=N&&"
)
GOOD_FRAME = encode_frame(GOOD_UPLOAD)
ALPHABET = st.sampled_from(list("QNSTCPWMFlag=;,&-#0123456789aAzZ.\r\n²٣ 烟"))


def _feed_all(chunks: list[bytes]) -> None:
    receiver = Receiver(ACCOUNTS)
    for chunk in chunks:
        out = receiver.feed(chunk)  # must not raise
        assert all(isinstance(exc, Hj212Error) for exc, _ in out.errors)
    assert receiver.splitter.pending <= 6 + 1024 + 6


@FUZZ
@given(st.lists(st.binary(max_size=400), max_size=8))
def test_fuzz_random_bytes(chunks: list[bytes]) -> None:
    _feed_all(chunks)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(GOOD_FRAME) - 1), st.binary(max_size=4)), max_size=6), st.data())
def test_fuzz_mutated_frames(edits: list[tuple[int, bytes]], data: st.DataObject) -> None:
    frame = bytearray(GOOD_FRAME * 2)
    for at, insert in edits:
        frame[at : at + data.draw(st.integers(0, 3))] = insert
    cuts = sorted(data.draw(st.lists(st.integers(0, len(frame)), max_size=5)))
    chunks = [bytes(frame[a:b]) for a, b in zip([0, *cuts], [*cuts, len(frame)], strict=True)]
    _feed_all(chunks)


@FUZZ
@given(st.text(ALPHABET, max_size=200))
def test_fuzz_segments_with_a_good_crc(text: str) -> None:
    """Any data segment, properly framed: only Hj212Error from every stage."""
    _feed_all([encode_frame(text)])
    for step in (parse_segment, parse_cp):
        try:
            step(text)
        except Hj212Error:
            pass


# digit-like values too: '²' passes str.isdigit() but int() refuses it
SEGMENT_FIELD = st.one_of(
    st.text(ALPHABET, max_size=20), st.text(st.sampled_from(list("0125²²٣٣")), min_size=1, max_size=3)
)


VALID_HEADER = {"QN": "20260105083000123", "ST": "31", "CN": "2011", "PW": "123456", "Flag": "5"}


def _field(name: str) -> st.SearchStrategy[str]:
    """Mostly the valid value, else an odd one, so every check down the line gets its turn."""
    return st.one_of(st.just(VALID_HEADER.get(name, "1")), SEGMENT_FIELD)


@FUZZ
@given(
    st.fixed_dictionaries(
        {name: _field(name) for name in VALID_HEADER},
        optional={"PNUM": _field("PNUM"), "PNO": _field("PNO")},
    ),
    st.text(ALPHABET, max_size=80),
)
def test_fuzz_header_fields(fields: dict[str, str], cp: str) -> None:
    """Near-valid headers with odd values (unicode digits, separators, empties)."""
    text = ";".join(f"{k}={v}" for k, v in fields.items()) + f";MN={MN};CP=&&{cp}&&"
    try:
        segment = parse_segment(text)
    except Hj212Error:
        return
    try:
        decode_message(segment, ZONE)
    except Hj212Error:
        pass
    _feed_all([encode_frame(text)])


@FUZZ
@given(st.lists(st.integers(1, len(GOOD_FRAME) * 3 - 1), max_size=10, unique=True))
def test_any_chunking_gives_the_same_frames(cuts: list[int]) -> None:
    stream = GOOD_FRAME * 3
    cuts = sorted(cuts)
    splitter = FrameSplitter()
    out: list[bytes | Hj212Error] = []
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        out += splitter.feed(stream[a:b])
    assert out == [GOOD_UPLOAD.encode()] * 3
    assert splitter.pending == 0

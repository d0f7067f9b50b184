"""Modbus request planning and register decoding: pure logic, checked against the simulator's encoder."""

from __future__ import annotations

import random

import pytest

from ferrogate.drivers.modbus.config import ModbusPoint
from ferrogate.drivers.modbus.decode import decoder_for
from ferrogate.drivers.modbus.plan import plan_requests
from ferrogate.simulators.registers import Register, encode


def point(pid: str, address: int, type_: str = "uint16", **kw: object) -> ModbusPoint:
    return ModbusPoint(id=pid, address=address, type=type_, unit="1", **kw)


def test_coalesces_close_points_and_splits_on_gaps_and_size() -> None:
    points = [point("a", 0), point("b", 1, "uint32"), point("c", 10), point("d", 40), point("e", 3, table="input")]
    plan = plan_requests(points, max_gap=8)
    assert [(r.table.value, r.start, r.count, [d.point_id for d in r.decoders]) for r in plan] == [
        ("holding", 0, 11, ["a", "b", "c"]),
        ("holding", 40, 1, ["d"]),
        ("input", 3, 1, ["e"]),
    ]


def test_never_exceeds_125_registers() -> None:
    points = [point(f"p{i}", i * 2, "float32") for i in range(100)]  # 200 contiguous registers
    plan = plan_requests(points, max_gap=0)
    assert [r.count for r in plan] == [124, 76]
    assert sum(len(r.decoders) for r in plan) == 100


@pytest.mark.parametrize(
    ("type_", "order", "value"),
    [
        ("int16", "big", -1234),
        ("uint16", "big", 65000),
        ("int32", "big", -70000),
        ("uint32", "little", 4_000_000_000),
        ("int64", "big", -(2**40)),
        ("uint64", "little", 2**60 + 3),
        ("float32", "big", 1234.5),
        ("float32", "little", -0.25),
        ("float64", "big", 123456.789012),
        ("float64", "little", -1e-9),
    ],
)
def test_decode_matches_simulator_encoding(type_: str, order: str, value: float) -> None:
    regs = [0xDEAD, *encode(Register(1, type_, "x", "1", order), value)]
    decoder = decoder_for(point("x", 1, type_, word_order=order), request_start=0)
    assert decoder.decode(regs) == pytest.approx(value, rel=1e-7)


def test_scale_and_offset() -> None:
    decoder = decoder_for(point("t", 0, "int16", scale=0.1, offset=-40.0), request_start=0)
    assert decoder.decode([625]) == pytest.approx(22.5)


def test_word_order_is_really_applied() -> None:
    # 0x0001_0002 big-endian words is 65538; the same words read as little-endian are 0x0002_0001
    assert decoder_for(point("x", 0, "uint32"), 0).decode([1, 2]) == 65538
    assert decoder_for(point("x", 0, "uint32", word_order="little"), 0).decode([1, 2]) == 131073


def test_one_read_decoded_at_once_gives_what_each_point_decodes_alone() -> None:
    """The block decoder (a struct call per lane of byte and word order, bit fields and overlapping
    points one by one) returns every point's value, in order, as its own decoder does: every byte
    and word order, scale and offset, bit fields and two points on one register among them."""
    points = [
        point("a", 0, "uint16"),
        point("b", 1, "float32"),
        point("c", 3, "uint32", word_order="little"),
        point("d", 6, "int16", scale=0.1, offset=-40.0),  # after a gap of one register
        point("e", 7, "uint16", bit=3),
        point("f", 7, "uint16", bit=4),  # the same register again
        point("g", 8, "float64", byte_order="little", word_order="little"),
        point("h", 12, "int32", byte_order="little"),
        point("i", 14, "uint64"),
        point("j", 18, "float32", word_order="little"),  # CDAB
        point("k", 20, "int32", byte_order="little", word_order="big"),  # BADC
        point("l", 22, "uint16", byte_order="little"),
        point("m", 23, "float64", word_order="little", scale=2.0),  # CDAB, 4 words
        point("n", 27, "uint16"),
        point("o", 27, "int16"),  # overlaps n
    ]
    (request,) = plan_requests(points, max_gap=8)
    assert request.block is not None
    regs = [(0x1234 * (i + 7)) & 0xFFFF for i in range(request.count)]
    buf = b"".join(r.to_bytes(2, "big") for r in regs)
    assert request.block.values(buf) == [d.decode_buffer(buf) for d in request.decoders]
    # only the bit fields and the point overlapping another one are decoded alone
    assert [request.decoders[i].point_id for i in request.block.others] == ["e", "f", "o"]
    assert len(request.block.lanes) == 4


def test_block_decoding_matches_each_point_alone_for_random_layouts() -> None:
    """Seeded random blocks: every type, byte and word order, gaps and overlaps, decoded at once
    equal each point decoded alone (NaN compared as NaN)."""
    rng = random.Random(15)
    types = ["int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"]
    orders = ["big", "little"]
    for _ in range(200):
        points, address = [], 0
        for n in range(rng.randint(1, 12)):
            type_ = rng.choice(types)
            kw = {"byte_order": rng.choice(orders), "word_order": rng.choice(orders)}
            points.append(point(f"p{n}", address, type_, **kw))
            address += rng.choice([0, 1, 1, 2, 3, 5])  # 0 and short steps overlap, longer ones leave gaps
        for request in plan_requests(points, max_gap=8):
            assert request.block is not None
            buf = bytes(rng.getrandbits(8) for _ in range(2 * request.count))
            together = request.block.values(buf)
            alone = [d.decode_buffer(buf) for d in request.decoders]
            assert [repr(v) for v in together] == [repr(v) for v in alone]

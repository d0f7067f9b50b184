"""Register words and bits to engineering values: data type, byte and word order, scale, offset,
bit fields (pure).

Decoding works on the response's bytes as they came (big-endian, 2 per register): a whole read is
decoded at once by a few struct calls (BlockDecoder); a point alone (PointDecoder) is one
`unpack_from` at its offset when its byte and word order agree, and mixed orders (CDAB, BADC)
have their words reversed first.
"""

from __future__ import annotations

import array
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter

from ferrogate.drivers.modbus.config import ByteOrder, ModbusPoint, ModbusType, WordOrder

_FORMATS = {
    ModbusType.int16: "h",
    ModbusType.uint16: "H",
    ModbusType.int32: "i",
    ModbusType.uint32: "I",
    ModbusType.int64: "q",
    ModbusType.uint64: "Q",
    ModbusType.float32: "f",
    ModbusType.float64: "d",
}


@dataclass(frozen=True, slots=True)
class PointDecoder:
    """Decodes one point from the response of the request it belongs to."""

    point_id: str
    unit: str
    offset: int  # index of the point's first register (or bit) inside the request
    count: int  # registers it spans (1 for a bit)
    unpack: struct.Struct | None  # None for coils/discrete inputs
    reverse_words: bool
    scale: float
    add: float
    bit: int | None = None
    is_float: bool = False
    invalid_raw: tuple[float, ...] = ()  # raw "not available" values (config.ModbusPoint.sentinels)
    invalid: tuple[float, ...] = ()  # ... as decoded: scaled exactly as a value is, so compared after decoding

    def decode_buffer(self, buf: bytes) -> float:
        """Engineering value from the request's registers packed as big-endian bytes."""
        start = self.offset * 2
        if self.reverse_words:
            words = [buf[i : i + 2] for i in range(start, start + 2 * self.count, 2)]
            raw = self.unpack.unpack(b"".join(reversed(words)))[0]  # type: ignore[union-attr]
        else:
            raw = self.unpack.unpack_from(buf, start)[0]  # type: ignore[union-attr]
        if self.bit is not None:
            return float((raw >> self.bit) & 1)  # two's complement bits for signed types too
        return raw * self.scale + self.add if (self.scale != 1.0 or self.add != 0.0) else float(raw)

    def decode_bits(self, bits: list[bool]) -> float:
        return 1.0 if bits[self.offset] else 0.0

    def decode(self, regs: list[int]) -> float:
        """Convenience for callers holding a register list (tests, probe): not the hot path."""
        return self.decode_buffer(struct.pack(f">{len(regs)}H", *regs))


@dataclass(frozen=True, slots=True)
class Lane:
    """The points of a block that one struct call decodes: same buffer (as read, or with the two
    bytes of every register swapped) and same endianness, in address order, not overlapping."""

    swapped: bool
    unpack: struct.Struct  # their formats with pad bytes between them


@dataclass(frozen=True, slots=True)
class BlockDecoder:
    """Decodes every point of one register read at once (the hot path).

    Every byte and word order is one struct call over one of two buffers: the response as read, or
    the response with the bytes of each register swapped (one C call for the block). ABCD and DCBA
    (and 16-bit points) read the response as big / little endian; CDAB and BADC read the swapped
    buffer as little / big endian (swapping each register's bytes of CDAB words gives the value's
    bytes least significant first). So a block is at most four struct calls (`lanes`), whose
    outputs `order` puts back in the order of `decoders`; only bit fields and overlapping points
    are decoded one by one (`others`)."""

    decoders: tuple[PointDecoder, ...]
    ids: tuple[str, ...]
    units: tuple[str, ...]
    lanes: tuple[Lane, ...]
    # indexes into the lanes' concatenated output per decoder (an `other` takes a placeholder);
    # None when that output is already in the decoders' order
    order: Callable[[tuple[float, ...]], tuple[float, ...]] | None
    others: tuple[int, ...]  # indexes of the points decoded one by one
    scaled: tuple[int, ...]  # lane points with a scale or offset
    has_floats: bool
    any_swapped: bool
    checked: tuple[int, ...] = ()  # points with "not available" values
    sentinels: frozenset[float] = frozenset()  # all of them, decoded: one set test per block

    def invalid_at(self, values: list[float]) -> list[int]:
        """Indexes of the decoded values that are their point's "not available" value: a mask applied
        after decoding (one C-level set test for the block; per point only when a value matches)."""
        if self.sentinels.isdisjoint(values):
            return []
        return [i for i in self.checked if values[i] in self.decoders[i].invalid]

    def values(self, buf: bytes) -> list[float]:
        swapped = _swap_bytes(buf) if self.any_swapped else buf
        raw: tuple[float, ...] = ()
        for lane in self.lanes:
            raw += lane.unpack.unpack_from(swapped if lane.swapped else buf)
        if self.others:
            raw += (0.0,)  # the placeholder of the points decoded one by one
        values = list(map(float, raw if self.order is None else self.order(raw)))
        for i in self.others:
            values[i] = self.decoders[i].decode_buffer(buf)
        for i in self.scaled:
            d = self.decoders[i]
            values[i] = values[i] * d.scale + d.add
        return values


def _swap_bytes(buf: bytes) -> bytes:
    """The buffer with the two bytes of every register swapped (an odd last byte is dropped)."""
    words = array.array("H", buf[: len(buf) & ~1])
    words.byteswap()
    return words.tobytes()


def _lane_of(d: PointDecoder) -> tuple[bool, str]:
    """(reads the byte-swapped buffer, endianness) of a point: see BlockDecoder."""
    assert d.unpack is not None  # register tables only
    endian = d.unpack.format[0]
    if d.reverse_words:  # CDAB ('>' bytes, little words) and BADC ('<' bytes, big words)
        return True, "<" if endian == ">" else ">"
    return False, endian


def block_decoder(decoders: list[PointDecoder]) -> BlockDecoder:
    lanes: dict[tuple[bool, str], tuple[list[str], list[int]]] = {}
    ends: dict[tuple[bool, str], int] = {}  # per lane, the register after its last point
    others, scaled = [], []
    for i, d in enumerate(decoders):
        key = _lane_of(d)
        end = ends.get(key, 0)
        if d.bit is not None or d.offset < end:
            others.append(i)
            continue
        fmt, at = lanes.setdefault(key, ([key[1]], []))
        fmt.append(f"{2 * (d.offset - end)}x{d.unpack.format[1:]}" if d.offset > end else d.unpack.format[1:])  # type: ignore[union-attr]
        ends[key] = d.offset + d.count
        at.append(i)
        if d.scale != 1.0 or d.add != 0.0:
            scaled.append(i)
    position = [len(decoders) - len(others)] * len(decoders)  # others: the placeholder after the lanes
    k = 0
    for _, at in lanes.values():
        for i in at:
            position[i] = k
            k += 1
    identity = not others and position == list(range(len(decoders)))
    order = None if identity else (itemgetter(*position) if len(position) > 1 else lambda raw: (raw[position[0]],))
    return BlockDecoder(
        decoders=tuple(decoders),
        ids=tuple(d.point_id for d in decoders),
        units=tuple(d.unit for d in decoders),
        lanes=tuple(Lane(key[0], struct.Struct("".join(fmt))) for key, (fmt, _) in lanes.items()),
        order=order,
        others=tuple(others),
        scaled=tuple(scaled),
        has_floats=any(d.is_float for d in decoders),
        any_swapped=any(key[0] for key in lanes),
        checked=tuple(i for i, d in enumerate(decoders) if d.invalid),
        sentinels=frozenset(v for d in decoders for v in d.invalid),
    )


def decoder_for(point: ModbusPoint, request_start: int) -> PointDecoder:
    if point.type is ModbusType.bool:
        return PointDecoder(point.id, point.unit, point.address - request_start, 1, None, False, 1.0, 0.0)
    count = point.type.registers
    endian = "<" if point.byte_order is ByteOrder.little else ">"
    # words are reversed when byte and word order disagree: CDAB (big bytes, little words) and
    # BADC (little bytes, big words); ABCD and DCBA are plain big / little endian
    reverse = count > 1 and (point.word_order is WordOrder.little) != (point.byte_order is ByteOrder.little)
    raw = point.sentinels
    scaled = point.scale != 1.0 or point.offset != 0.0
    return PointDecoder(
        point_id=point.id,
        unit=point.unit,
        offset=point.address - request_start,
        count=count,
        unpack=struct.Struct(endian + _FORMATS[point.type]),
        reverse_words=reverse,
        scale=point.scale,
        add=point.offset,
        bit=point.bit,
        is_float=point.type in (ModbusType.float32, ModbusType.float64),
        invalid_raw=raw,
        invalid=tuple(float(v) * point.scale + point.offset if scaled else float(v) for v in raw),
    )


def sentinel_text(decoder: PointDecoder, value: float) -> str:
    """The raw "not available" value a decoded value came from: a type's standard one in hex as the
    register reads (0xFFFFFFFF, 0x8000), a listed one as the plant file writes it."""
    raw = decoder.invalid_raw[decoder.invalid.index(value)]
    bits = 16 * decoder.count
    signed = decoder.unpack is not None and decoder.unpack.format[-1].islower()
    if not decoder.is_float and raw == (-(1 << (bits - 1)) if signed else (1 << bits) - 1):
        return f"0x{int(raw) % (1 << bits):0{bits // 4}X}"
    return f"{raw:g}"


def is_finite(value: float) -> bool:
    return math.isfinite(value)

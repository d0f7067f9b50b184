"""Register words to engineering values: data type, word order, scale and offset (pure)."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

from ferrogate.gateway.config import ModbusPoint, ModbusType, WordOrder

# Bytes inside a register are big-endian on the wire; word order is the device's choice.
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
    """Decodes one point from the registers of the request it belongs to."""

    point_id: str
    unit: str
    offset: int  # index of the point's first register inside the request
    count: int
    unpack: struct.Struct
    swap_words: bool
    scale: float
    add: float

    def decode(self, regs: list[int]) -> float:
        words = regs[self.offset : self.offset + self.count]
        if self.swap_words:
            words = words[::-1]
        raw = self.unpack.unpack(struct.pack(f">{self.count}H", *words))[0]
        return raw * self.scale + self.add if (self.scale != 1.0 or self.add != 0.0) else float(raw)


def decoder_for(point: ModbusPoint, request_start: int) -> PointDecoder:
    return PointDecoder(
        point_id=point.id,
        unit=point.unit,
        offset=point.address - request_start,
        count=point.type.registers,
        unpack=struct.Struct(">" + _FORMATS[point.type]),
        swap_words=point.word_order is WordOrder.little and point.type.registers > 1,
        scale=point.scale,
        add=point.offset,
    )


def is_finite(value: float) -> bool:
    return math.isfinite(value)

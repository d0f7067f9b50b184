"""Register maps of simulated Modbus devices and the encoding of values into register words.

Each map is documented in docs/simulators.md; a real meter's map is written the same way in the
plant YAML (address, type, word order, scale, unit).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

_FORMATS = {
    "int16": "h",
    "uint16": "H",
    "int32": "i",
    "uint32": "I",
    "int64": "q",
    "uint64": "Q",
    "float32": "f",
    "float64": "d",
}


@dataclass(frozen=True)
class Register:
    address: int
    type: str
    signal: str  # name of the model signal served here
    unit: str
    word_order: str = "big"
    scale: float = 1.0  # engineering value = raw * scale

    @property
    def count(self) -> int:
        return struct.calcsize(_FORMATS[self.type]) // 2


def raw_value(reg: Register, value: float) -> int | float:
    """The number the device stores: scaled, truncated to an integer type, wrapped at its width."""
    raw = value / reg.scale
    fmt = _FORMATS[reg.type]
    if fmt in "fd":
        return struct.unpack(">" + fmt, struct.pack(">" + fmt, raw))[0]
    bits = reg.count * 16
    wrapped = int(raw) % (1 << bits)  # counters wrap like the device's register does
    if fmt.islower() and wrapped >= 1 << (bits - 1):
        wrapped -= 1 << bits
    return wrapped


def served_value(reg: Register, value: float) -> float:
    """The engineering value a correct client decodes from what this register serves."""
    return raw_value(reg, value) * reg.scale


def encode(reg: Register, value: float) -> list[int]:
    packed = struct.pack(">" + _FORMATS[reg.type], raw_value(reg, value))
    words = list(struct.unpack(f">{reg.count}H", packed))
    return words[::-1] if reg.word_order == "little" else words


@dataclass(frozen=True)
class RegisterMap:
    name: str
    registers: tuple[Register, ...]

    @property
    def size(self) -> int:
        return max(r.address + r.count for r in self.registers)

    def image(self, signals: Callable[[str], float]) -> list[int]:
        words = [0] * self.size
        for reg in self.registers:
            words[reg.address : reg.address + reg.count] = encode(reg, signals(reg.signal))
        return words

    def mapped(self) -> set[int]:
        return {a for r in self.registers for a in range(r.address, r.address + r.count)}


POWER_METER = RegisterMap(
    "power_meter",
    (
        Register(0, "uint32", "energy_import_kwh", "kWh"),
        Register(2, "float32", "power_kw", "kW"),
        Register(4, "uint64", "clock_ms", "ms"),
    ),
)

REGISTER_MAPS = {m.name: m for m in (POWER_METER,)}

"""Register maps of simulated Modbus devices and the encoding of values into register words.

A map covers the four Modbus tables: holding registers (FC3) and input registers (FC4) hold
16-bit words, coils (FC1) and discrete inputs (FC2) hold bits. Each map is documented in
docs/simulators.md (generated from these definitions); a real meter's map is written the same way
in the plant YAML (table, address, type, word order, byte order, scale, unit).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Mapping
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
FLOAT32_MAX = 3.4028234663852886e38
REGISTER_TABLES = ("holding", "input")
BIT_TABLES = ("coil", "discrete_input")
TABLES = (*REGISTER_TABLES, *BIT_TABLES)
# Modbus read function code of each table
READ_FUNCTION = {"coil": 1, "discrete_input": 2, "holding": 3, "input": 4}
TABLE_OF_FUNCTION = {code: table for table, code in READ_FUNCTION.items()}


@dataclass(frozen=True)
class Register:
    address: int
    type: str  # int16 ... float64 in register tables; "bool" in coil / discrete_input tables
    signal: str  # name of the model signal served here
    unit: str
    word_order: str = "big"  # "little": least significant word first (CDAB)
    scale: float = 1.0  # engineering value = raw * scale
    table: str = "holding"
    byte_order: str = "big"  # "little": the two bytes of each register swapped (BADC / DCBA)
    description: str = ""

    def __post_init__(self) -> None:
        if self.table not in TABLES:
            raise ValueError(f"register {self.signal}: table {self.table!r} is not one of {TABLES}")
        if (self.type == "bool") != (self.table in BIT_TABLES):
            raise ValueError(f"register {self.signal}: type 'bool' goes with tables {BIT_TABLES} and only those")
        if self.type != "bool" and self.type not in _FORMATS:
            raise ValueError(f"register {self.signal}: unknown type {self.type!r}")
        if self.word_order not in ("big", "little") or self.byte_order not in ("big", "little"):
            raise ValueError(f"register {self.signal}: word_order and byte_order are 'big' or 'little'")
        if not 0 <= self.address <= 65536 - self.count:
            raise ValueError(f"register {self.signal}: address {self.address} out of range")

    @property
    def count(self) -> int:
        """Addresses occupied: registers for numbers, one bit for bool."""
        return 1 if self.type == "bool" else struct.calcsize(_FORMATS[self.type]) // 2

    @property
    def is_float(self) -> bool:
        return self.type in ("float32", "float64")


def _not_available(fmt: str, bits: int) -> int:
    """What meters serve for a value they cannot measure: all ones (unsigned) or the minimum (signed)."""
    return -(1 << (bits - 1)) if fmt.islower() else (1 << bits) - 1


def raw_value(reg: Register, value: float) -> int | float:
    """The number the device stores: scaled, truncated to an integer type, wrapped at its width."""
    if reg.type == "bool":
        return 1 if value else 0
    raw = value / reg.scale
    fmt = _FORMATS[reg.type]
    if fmt in "fd":
        if fmt == "f" and math.isfinite(raw) and abs(raw) > FLOAT32_MAX:
            return math.copysign(math.inf, raw)  # what a float32 becomes when it overflows
        return struct.unpack(">" + fmt, struct.pack(">" + fmt, raw))[0]
    bits = reg.count * 16
    if not math.isfinite(raw):
        return _not_available(fmt, bits)
    # truncate toward zero like a meter's counter (after rounding away float noise such as
    # 12.8 / 0.1 = 127.99999999999999), and wrap at the register's width like the device does
    wrapped = int(round(raw, 6)) % (1 << bits)
    if fmt.islower() and wrapped >= 1 << (bits - 1):
        wrapped -= 1 << bits
    return wrapped


def served_value(reg: Register, value: float) -> float:
    """The engineering value a correct client decodes from what this register serves."""
    return raw_value(reg, value) * reg.scale


def encode(reg: Register, value: float) -> list[int]:
    """The register words (or [0|1] for a bit) a client reads for `value`."""
    if reg.type == "bool":
        return [raw_value(reg, value)]  # type: ignore[list-item]
    packed = struct.pack(">" + _FORMATS[reg.type], raw_value(reg, value))
    words = list(struct.unpack(f">{reg.count}H", packed))
    if reg.byte_order == "little":
        words = [((w & 0xFF) << 8) | (w >> 8) for w in words]
    return words[::-1] if reg.word_order == "little" else words


@dataclass(frozen=True)
class RegisterMap:
    name: str
    registers: tuple[Register, ...]
    description: str = ""

    def __post_init__(self) -> None:
        for table in TABLES:
            seen: dict[int, str] = {}
            for reg in self.in_table(table):
                for a in range(reg.address, reg.address + reg.count):
                    if a in seen:
                        raise ValueError(f"map {self.name}: {table} {a} used by {seen[a]} and {reg.signal}")
                    seen[a] = reg.signal

    def in_table(self, table: str) -> tuple[Register, ...]:
        return tuple(r for r in self.registers if r.table == table)

    def table_size(self, table: str) -> int:
        """One past the highest address used in `table` (0 if the table is empty)."""
        return max((r.address + r.count for r in self.in_table(table)), default=0)

    @property
    def size(self) -> int:
        """One past the highest register address of the register tables."""
        return max(self.table_size(t) for t in REGISTER_TABLES)

    @property
    def signals(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.signal for r in self.registers))

    def image(self, signals: Callable[[str], float] | Mapping[str, float], table: str = "holding") -> list[int]:
        """All words (register tables) or bits (bit tables) of `table` from address 0; unmapped ones are 0."""
        value = signals.__getitem__ if isinstance(signals, Mapping) else signals
        words = [0] * self.table_size(table)
        for reg in self.in_table(table):
            words[reg.address : reg.address + reg.count] = encode(reg, value(reg.signal))
        return words

    def mapped(self, table: str = "holding") -> set[int]:
        return {a for r in self.in_table(table) for a in range(r.address, r.address + r.count)}


POWER_METER = RegisterMap(
    "power_meter",
    (
        Register(0, "uint32", "energy_import_kwh", "kWh", description="active energy import (wraps at 2^32)"),
        Register(2, "float32", "power_kw", "kW", description="total active power"),
        Register(4, "uint64", "clock_ms", "ms", description="meter clock, Unix time"),
    ),
    "minimal three-phase power meter (big-endian words)",
)


def __getattr__(name: str) -> object:
    # the catalog of every map moved to register_maps; keep the old import path working
    if name == "REGISTER_MAPS":
        from ferrogate.simulators.register_maps import REGISTER_MAPS

        return REGISTER_MAPS
    raise AttributeError(name)

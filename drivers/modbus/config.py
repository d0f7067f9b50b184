"""A Modbus device and its points in the plant file: tables, data types, byte and word order,
bit fields, and the link settings (timeouts, retries, pacing, concurrency per host:port)."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from ferrogate.drivers.config import DeviceBase, PointBase


class ModbusTable(StrEnum):
    holding = "holding"  # FC3, 16-bit registers
    input = "input"  # FC4, 16-bit registers
    coil = "coil"  # FC1, bits
    discrete_input = "discrete_input"  # FC2, bits

    @property
    def is_bits(self) -> bool:
        return self in (ModbusTable.coil, ModbusTable.discrete_input)


class ModbusType(StrEnum):
    bool = "bool"  # one coil or discrete input
    int16 = "int16"
    uint16 = "uint16"
    int32 = "int32"
    uint32 = "uint32"
    int64 = "int64"
    uint64 = "uint64"
    float32 = "float32"
    float64 = "float64"

    @property
    def registers(self) -> int:
        """Addresses the value occupies: registers for numbers, one bit address for bool."""
        return {"ol": 1, "16": 1, "32": 2, "64": 4}[self.value[-2:]]

    @property
    def is_integer(self) -> bool:
        return "int" in self.value

    @property
    def not_available(self) -> int | None:
        """The raw value meters serve for "not available" (SunSpec's convention, and the simulators'):
        all ones for an unsigned integer (0xFFFF, 0xFFFFFFFF...), the minimum for a signed one
        (0x8000, 0x80000000...); None for floats (NaN is theirs) and bool."""
        if not self.is_integer:
            return None
        bits = 16 * self.registers
        return -(1 << (bits - 1)) if self.value.startswith("int") else (1 << bits) - 1

    def holds(self, raw: float) -> bool:
        """Whether a raw value fits this type (an integer in its range; any number for floats)."""
        if not self.is_integer:
            return True
        bits = 16 * self.registers
        low, high = (
            (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if self.value.startswith("int") else (0, (1 << bits) - 1)
        )
        return float(raw).is_integer() and low <= raw <= high


class WordOrder(StrEnum):
    big = "big"  # most significant word first (ABCD)
    little = "little"  # least significant word first (CDAB)


class ByteOrder(StrEnum):
    big = "big"  # most significant byte first inside each register (the Modbus standard)
    little = "little"  # bytes swapped inside each register (BADC, or DCBA with little word order)


class ModbusPoint(PointBase):
    address: int = Field(ge=0, le=65535, description="protocol address, 0-based")
    table: ModbusTable = ModbusTable.holding
    type: ModbusType = ModbusType.uint16
    word_order: WordOrder = WordOrder.big
    byte_order: ByteOrder = ByteOrder.big
    bit: int | None = Field(None, ge=0, le=63, description="bit field: this bit (0 = least significant) as 0/1")
    # raw values (before scale and offset) that mean "not available": read as BAD `sentinel`, no value.
    # None: the device's `not_available` default; [] turns it off for this point
    invalid_values: list[float] | None = Field(None, max_length=8)

    @model_validator(mode="before")
    @classmethod
    def _bits_are_bool(cls, data: object) -> object:
        # a coil or discrete input is a bool unless the file says otherwise (then _fits explains)
        if isinstance(data, dict) and "type" not in data and data.get("table") in ("coil", "discrete_input"):
            return {**data, "type": "bool"}
        return data

    @model_validator(mode="after")
    def _fits(self) -> ModbusPoint:
        if self.address + self.type.registers > 65536:
            raise ValueError("register range runs past address 65535")
        if self.table.is_bits != (self.type is ModbusType.bool):
            raise ValueError(
                "type 'bool' goes with tables 'coil' and 'discrete_input' (and only those); "
                "for one bit of a register use 'bit: N' with an integer type"
            )
        if self.bit is not None:
            if not self.type.is_integer:
                raise ValueError("'bit' needs an integer type (e.g. uint16)")
            if self.bit >= 16 * self.type.registers:
                raise ValueError(f"'bit' {self.bit} is outside a {self.type.value} ({16 * self.type.registers} bits)")
        if (self.bit is not None or self.type is ModbusType.bool) and (self.scale != 1.0 or self.offset != 0.0):
            raise ValueError("scale/offset do not apply to bool or bit points (their value is 0 or 1)")
        if self.invalid_values and (self.bit is not None or self.type is ModbusType.bool):
            raise ValueError("'invalid_values' do not apply to bool or bit points (their value is 0 or 1)")
        for raw in self.invalid_values or ():
            if not self.type.holds(raw):
                raise ValueError(
                    f"'invalid_values' {raw:g} is not a raw {self.type.value} value (they are compared "
                    "before scale and offset, e.g. 65535 for a uint16's 0xFFFF)"
                )
        return self

    @property
    def sentinels(self) -> tuple[float, ...]:
        """The raw "not available" values of this point as resolved by its device (see ModbusDevice)."""
        if self.invalid_values is not None:
            return tuple(self.invalid_values)
        standard = self.type.not_available if self.bit is None else None
        return () if standard is None else (standard,)


class ModbusDevice(DeviceBase):
    protocol: Literal["modbus"]
    host: str
    port: int = Field(502, ge=1, le=65535)
    unit: int = Field(1, ge=0, le=255)
    max_gap: int = Field(8, ge=0, le=120, description="unused addresses tolerated inside one read")
    max_registers_per_read: int = Field(125, ge=1, le=125, description="some devices answer fewer than 125")
    retries: int = Field(1, ge=0, le=10, description="extra tries of a request that timed out")
    min_request_interval_s: float = Field(0.0, ge=0, le=10, description="quiet time between requests on the link")
    # requests in flight to host:port at once (one TCP connection each); serial-to-TCP gateways
    # allow one. Devices on the same host:port share the link and its limit (the smallest wins).
    max_concurrent_requests: int = Field(1, ge=1, le=16)
    # what an integer point without its own `invalid_values` treats as "not available": `standard` the
    # type's all-ones (unsigned) or minimum (signed) value, `none` nothing (a device whose 16-bit
    # registers legitimately reach 0xFFFF)
    not_available: Literal["standard", "none"] = "standard"
    points: list[ModbusPoint] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _resolve_not_available(cls, data: object) -> object:
        # the device's `none` becomes each undecided point's [] (before validation: the models are frozen)
        if (
            not isinstance(data, dict)
            or data.get("not_available") != "none"
            or not isinstance(data.get("points"), list)
        ):
            return data
        points = [
            {**p, "invalid_values": []} if isinstance(p, dict) and p.get("invalid_values") is None else p
            for p in data["points"]
        ]
        return {**data, "points": points}

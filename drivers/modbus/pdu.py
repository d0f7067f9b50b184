"""Register read responses kept as the bytes on the wire.

pymodbus decodes a register response one register at a time into a list of ints, which the driver
would pack straight back into big-endian bytes to decode its points (drivers/modbus/decode.py):
both steps per register, per request. These response classes, registered on the driver's clients
(`use_raw_registers`), keep the response's register bytes as they came (`raw`, big-endian, 2 per
register); `registers` is still there for anyone who asks, made on first use.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException
from pymodbus.pdu.register_message import ReadHoldingRegistersResponse, ReadInputRegistersResponse


class _RawRegisters:
    raw: bytes = b""
    _registers: Sequence[int] | None = None
    function_code: int

    @property
    def registers(self) -> Sequence[int]:
        if self._registers is None:
            self._registers = list(struct.unpack(f">{len(self.raw) // 2}H", self.raw[: len(self.raw) // 2 * 2]))
        return self._registers

    @registers.setter
    def registers(self, value: Sequence[int]) -> None:
        self._registers = value if value else None

    def decode(self, data: bytes) -> None:
        size = int(data[0])
        if size >= len(data):
            raise ModbusIOException(
                f"byte_count {size} > length of packet {len(data)}", function_code=self.function_code
            )
        self.raw = bytes(data[1 : 1 + size])
        self._registers = None


class RawHoldingRegisters(_RawRegisters, ReadHoldingRegistersResponse):
    """FC3 response: `raw` holds the register bytes."""


class RawInputRegisters(_RawRegisters, ReadInputRegistersResponse):
    """FC4 response: `raw` holds the register bytes."""


def use_raw_registers(client: AsyncModbusTcpClient) -> None:
    """Make the client's register reads answer with `raw` bytes (RawHoldingRegisters, RawInputRegisters)."""
    client.register(RawHoldingRegisters)
    client.register(RawInputRegisters)

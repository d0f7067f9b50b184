"""The HJ 212 CRC (HJ 212-2017 Appendix A).

The standard calls it "ANSI CRC16" but it is not CRC-16/MODBUS: the register is shifted right by a
whole byte before the byte is XORed in (`crc = (crc >> 8) ^ byte`), then the eight reflected
polynomial steps run. Test vectors (../shared/reference/hj212.md): b"123456789" -> 0x2F80 (MODBUS
would give 0x4B37), b"" -> 0xFFFF. It covers only the data segment and travels as four hex digits,
high byte first.
"""

from __future__ import annotations

INITIAL = 0xFFFF
POLYNOMIAL = 0xA001  # 0x8005 reflected


def _byte_step(crc: int) -> int:
    for _ in range(8):
        crc = (crc >> 1) ^ POLYNOMIAL if crc & 1 else crc >> 1
    return crc


# The eight steps depend only on the low byte after the XOR (the high byte is 0 after >> 8), so one
# table lookup per byte does them.
_TABLE = tuple(_byte_step(i) for i in range(256))


def crc16(data: bytes) -> int:
    crc = INITIAL
    table = _TABLE
    for byte in data:
        crc = table[(crc >> 8) ^ byte]
    return crc


def crc16_bitwise(data: bytes) -> int:
    """Appendix A step by step, as written; the tests hold the table version to it."""
    crc = INITIAL
    for byte in data:
        crc = _byte_step((crc >> 8) ^ byte)
    return crc

"""HJ 212 frames: `##` + LLLL (decimal byte length of the data segment) + data segment + CCCC (CRC,
four hex digits, high byte first) + `\\r\\n`.

`encode_frame` and `decode_frame` handle one frame; `FrameSplitter` cuts a TCP byte stream into
frames, however it arrives (half frames, several in one read, garbage in between), holding at most
one frame's bytes, and never raises for the input: what is not a frame comes out as an `Hj212Error`.
"""

from __future__ import annotations

from ferrogate.drivers.hj212.protocol.crc import crc16
from ferrogate.drivers.hj212.protocol.errors import ErrorCode, Hj212Error

HEADER = b"##"
TRAILER = b"\r\n"
# HJ 212-2017: the data segment is 0..1024 characters; LLLL itself allows up to 9999
STANDARD_MAX_SEGMENT = 1024
OVERHEAD = 2 + 4 + 4 + 2  # ## LLLL CCCC \r\n
_DIGITS = frozenset(b"0123456789")
_HEX = frozenset(b"0123456789abcdefABCDEF")


def encode_frame(segment: str | bytes) -> bytes:
    data = segment.encode("utf-8") if isinstance(segment, str) else segment
    if len(data) > 9999:
        raise Hj212Error(ErrorCode.OVERSIZE, f"data segment of {len(data)} bytes does not fit LLLL")
    return b"##%04d%s%04X\r\n" % (len(data), data, crc16(data))


def decode_frame(frame: bytes, max_segment: int = 9999) -> bytes:
    """The data segment of exactly one complete frame (with or without its trailing \\r\\n)."""
    if frame.endswith(TRAILER):
        frame = frame[:-2]
    if not frame.startswith(HEADER):
        raise Hj212Error(ErrorCode.BAD_HEADER, "a frame starts with '##'")
    length = _length(frame[2:6])
    if length > max_segment:
        raise Hj212Error(ErrorCode.OVERSIZE, f"data segment of {length} bytes, at most {max_segment} accepted")
    if len(frame) != 6 + length + 4:
        raise Hj212Error(
            ErrorCode.BAD_LENGTH, f"LLLL says {length} bytes but the frame holds {max(0, len(frame) - 10)}"
        )
    segment = frame[6 : 6 + length]
    _check_crc(segment, frame[6 + length :])
    return segment


def _length(field: bytes) -> int:
    if len(field) != 4 or not _DIGITS.issuperset(field):
        raise Hj212Error(ErrorCode.BAD_LENGTH, f"LLLL must be four decimal digits, got {field[:4]!r}")
    return int(field)


def _check_crc(segment: bytes, field: bytes) -> None:
    if len(field) != 4 or not _HEX.issuperset(field):
        raise Hj212Error(ErrorCode.BAD_CRC, f"CRC must be four hex digits, got {field[:4]!r}")
    expected = crc16(segment)
    if int(field, 16) != expected:
        raise Hj212Error(ErrorCode.BAD_CRC, f"CRC {field.decode('ascii')} but the data segment gives {expected:04X}")


class FrameSplitter:
    """Cuts a byte stream into data segments. `feed()` returns, in order, each complete frame's data
    segment (bytes) or the `Hj212Error` that stood in its place; bytes of an incomplete frame wait
    for the next feed. After any error it resynchronises on the next `##`."""

    __slots__ = ("_buffer", "_resync", "max_segment")

    def __init__(self, max_segment: int = STANDARD_MAX_SEGMENT) -> None:
        self.max_segment = max_segment
        self._buffer = bytearray()
        # after a broken frame, the bytes up to the next '##' are its rest, not more garbage
        self._resync = False

    @property
    def pending(self) -> int:
        """Bytes held waiting for the rest of a frame (at most one frame's worth)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes | Hj212Error]:
        buffer = self._buffer
        buffer += data
        out: list[bytes | Hj212Error] = []
        while buffer:
            start = buffer.find(HEADER)
            if start < 0:
                # nothing that starts a frame: drop it all but a last '#' that may begin '##'
                keep = 1 if buffer.endswith(b"#") else 0
                dropped = len(buffer) - keep
                if dropped:
                    if not self._resync:
                        out.append(Hj212Error(ErrorCode.GARBAGE, f"{dropped} bytes outside any frame"))
                    del buffer[:dropped]
                break
            if start:
                if not self._resync:
                    out.append(Hj212Error(ErrorCode.GARBAGE, f"{start} bytes before '##'"))
                del buffer[:start]
            self._resync = False
            if len(buffer) < 6:
                break
            try:
                length = _length(bytes(buffer[2:6]))
                if length > self.max_segment:
                    raise Hj212Error(
                        ErrorCode.OVERSIZE, f"LLLL says {length} bytes, at most {self.max_segment} accepted"
                    )
            except Hj212Error as exc:
                out.append(exc)
                del buffer[:2]  # resynchronise on the next '##'
                self._resync = True
                continue
            end = 6 + length + 6
            if len(buffer) < end:
                break
            if buffer[end - 2 : end] != TRAILER:
                out.append(
                    Hj212Error(ErrorCode.BAD_LENGTH, f"no CRC + \\r\\n where LLLL ({length}) says the frame ends")
                )
                del buffer[:2]
                self._resync = True
                continue
            segment = bytes(buffer[6 : 6 + length])
            try:
                _check_crc(segment, bytes(buffer[6 + length : end - 2]))
                out.append(segment)
            except Hj212Error as exc:
                out.append(exc)
            del buffer[:end]
        return out

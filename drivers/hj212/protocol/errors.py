"""The one error type of the HJ 212 codec and server: a reason code to count by, and a message."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    # framing (## + LLLL + data segment + CRC + \r\n)
    GARBAGE = "garbage"  # bytes outside any frame
    BAD_HEADER = "bad_header"  # a frame that does not start with ##
    BAD_LENGTH = "bad_length"  # LLLL not four digits, or the frame does not end where LLLL says
    OVERSIZE = "oversize"  # LLLL above the configured maximum
    BAD_CRC = "bad_crc"
    BAD_ENCODING = "bad_encoding"  # data segment not UTF-8
    # data segment
    BAD_SEGMENT = "bad_segment"  # missing CP=&&...&&, or a header field missing or malformed
    BAD_CP = "bad_cp"  # an item inside CP without name=value
    BAD_DATATIME = "bad_datatime"
    UNSUPPORTED_VERSION = "unsupported_version"  # Flag's version bits name neither HJ 212-2017 nor -2025
    # session
    UNKNOWN_MN = "unknown_mn"
    BAD_PASSWORD = "bad_password"
    SPLIT_INCOMPLETE = "split_incomplete"  # a split message whose packets did not all arrive in time
    TOO_MANY_CONNECTIONS = "too_many_connections"
    IDLE = "idle"  # a logger connected and said nothing for the idle timeout
    SLOW_READER = "slow_reader"  # a logger that leaves our replies unread


class Hj212Error(ValueError):
    """Raised (or, in streams, returned) for input that is not valid HJ 212; never anything else."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.detail = message

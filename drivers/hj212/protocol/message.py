"""A decoded upload: the data segment's header, its CP, and the sample time `DataTime` as Unix ns.

`DataTime` is the logger's local time (YYYYMMDDhhmmss, optionally with milliseconds): the sample
instant in real-time data (2011), the start of the period in minute, hourly and daily data
(2051/2061/2031). The zone is configured per logger (default: the plant's).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from ferrogate.drivers.hj212.protocol.codes import DATA_COMMANDS
from ferrogate.drivers.hj212.protocol.cp import CpData, parse_cp
from ferrogate.drivers.hj212.protocol.errors import ErrorCode, Hj212Error
from ferrogate.drivers.hj212.protocol.segment import DataSegment
from ferrogate.gateway.timeutil import datetime_to_ns

DATA_CNS = frozenset(DATA_COMMANDS.values())


@dataclass(slots=True)
class Message:
    segment: DataSegment  # for a joined split message, the first packet's header
    cp: CpData
    data_time_ns: int | None
    packets: int = 1
    complete: bool = True  # False: a split message some of whose packets never came

    @property
    def cn(self) -> str:
        return self.segment.cn

    @property
    def mn(self) -> str:
        return self.segment.mn


def parse_hj212_time(text: str, zone: tzinfo) -> int:
    """Unix ns of `YYYYMMDDhhmmss` or `YYYYMMDDhhmmsszzz` in `zone`."""
    if not (text.isdigit() and text.isascii() and len(text) in (14, 17)):
        raise Hj212Error(ErrorCode.BAD_DATATIME, f"{text[:30]!r} is not YYYYMMDDhhmmss[zzz]")
    try:
        moment = datetime(
            int(text[0:4]),
            int(text[4:6]),
            int(text[6:8]),
            int(text[8:10]),
            int(text[10:12]),
            int(text[12:14]),
            int(text[14:17] or 0) * 1000,
            tzinfo=zone,
        )
    except ValueError as exc:
        raise Hj212Error(ErrorCode.BAD_DATATIME, f"{text!r}: {exc}") from None
    return datetime_to_ns(moment)


def format_hj212_time(ns: int, zone: tzinfo, millis: bool = False) -> str:
    moment = datetime.fromtimestamp(ns // 1_000_000_000, zone)
    text = moment.strftime("%Y%m%d%H%M%S")
    return text + f"{(ns // 1_000_000) % 1000:03d}" if millis else text


def decode_message(segment: DataSegment, zone: tzinfo) -> Message:
    """The segment's CP parsed; data uploads (2011, 2051, 2061, 2031) must carry a valid DataTime."""
    cp = parse_cp(segment.cp)
    data_time = cp.fields.get("DataTime")
    if data_time is None:
        if segment.cn in DATA_CNS:
            raise Hj212Error(ErrorCode.BAD_DATATIME, f"CN={segment.cn} carries no DataTime")
        return Message(segment, cp, None)
    return Message(segment, cp, parse_hj212_time(data_time, zone))

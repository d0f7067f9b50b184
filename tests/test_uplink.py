"""The uplink: readings become minute/hourly records (pure), which go to a platform through a disk
spool; against the project's own HJ 212 server: round trip, and every record exactly once, in
order, across a platform outage and across a restart of the sender."""

from __future__ import annotations

import asyncio
from pathlib import Path
from zoneinfo import ZoneInfo

from ferrogate.drivers.hj212.protocol.message import Message
from ferrogate.drivers.hj212.receiver import LoggerAccount
from ferrogate.drivers.hj212.server import Hj212Server
from ferrogate.gateway.reading import Quality, Reading
from ferrogate.gateway.spool import Spool
from ferrogate.gateway.uplink.aggregate import PeriodAggregator, Record, UplinkItem
from ferrogate.gateway.uplink.sender import PlatformSender, PlatformTarget
from tests.waiting import eventually

ZONE = ZoneInfo("Asia/Shanghai")
T0 = 1_767_571_200_000_000_000  # 2026-01-05T00:00:00Z = 08:00 Beijing
S = 1_000_000_000
ITEMS = [
    UplinkItem("a21026", "stack1_cems", "so2", ("minute", "hour")),
    UplinkItem("e01001", "eaf1_meter", "power", ("hour",)),  # a meter, any source
    UplinkItem("a21026", "stack1_cems", "so2_hour_kg", ("hour",), "forward"),
]


def readings(point: str, start: int, seconds: int, every: int, value: float, **kw: object) -> list[Reading]:
    """A reading every `every` s, valued value, value + 1, value + 2..."""
    return [Reading(point, value + k, "x", start + t * S, **kw) for k, t in enumerate(range(0, seconds, every))]  # type: ignore[arg-type]


def test_minute_and_hour_records() -> None:
    agg = PeriodAggregator(ITEMS[:2], ZONE, close_after_s=30)
    agg.add("stack1_cems", readings("so2", T0, 120, 5, 10.0))
    bad = [
        Reading("so2", 99.0, "mg/m3", T0 + 120 * S + i * 5 * S, Quality.UNCERTAIN, "calibration: C") for i in range(9)
    ]
    agg.add("stack1_cems", bad + readings("so2", T0 + 165 * S, 15, 5, 0.0))
    agg.add("eaf1_meter", [Reading("power", 5000.0, "kW", T0 + 10 * S)])
    # the stream is at 02:55: minutes 0 and 1 are more than 30 s behind it, minute 2 is not
    assert [((r.start_ns - T0) // S, r.kind) for r in agg.close()] == [(0, "minute"), (60, "minute")]
    agg.add("eaf1_meter", [Reading("power", 7000.0, "kW", T0 + 3630 * S)])
    records = agg.close()
    assert [((r.start_ns - T0) // S, r.kind) for r in records] == [(0, "hour"), (120, "minute")]
    hour, minute2 = records
    # minute 2: 9 of 12 readings calibrating (25 % good < 75 %): flag C, the 3 good ones averaged
    assert minute2.factors["a21026"] == {"Min": "0.0000", "Avg": "1.0000", "Max": "2.0000", "Flag": "C"}
    # the hour: 24 + 3 good of 33 readings (82 %): N; 10..33 and 0..2
    so2 = hour.factors["a21026"]
    assert so2["Flag"] == "N" and so2["Min"] == "0.0000" and so2["Max"] == "33.0000"
    assert so2["Avg"] == f"{(sum(range(10, 34)) + 3) / 27:.4f}"  # 19.2222
    assert hour.factors["e01001"] == {"Min": "5000.0000", "Avg": "5000.0000", "Max": "5000.0000", "Flag": "N"}
    assert hour.cn == "2061" and minute2.cn == "2051"
    # a period already made is never made again (late readings are counted instead)
    agg.add("stack1_cems", readings("so2", T0 + 30 * S, 10, 5, 1.0))
    assert agg.late == 4 and agg.close() == []  # 2 readings x (minute, hour)


def test_forwarded_hourly_value_and_day_in_local_time() -> None:
    agg = PeriodAggregator([*ITEMS[2:], UplinkItem("a21026", "stack1_cems", "so2_hour_kg", ("day",), "sum")], ZONE, 60)
    for h in range(24):
        agg.add("stack1_cems", [Reading("so2_hour_kg", 1.5, "kg", T0 - 8 * 3600 * S + h * 3600 * S)])
    agg.add("stack1_cems", [Reading("so2_hour_kg", 1.5, "kg", T0 + 20 * 3600 * S)])
    records = agg.close()
    day = next(r for r in records if r.kind == "day")
    assert day.start_ns == T0 - 8 * 3600 * S  # local midnight 2026-01-05 00:00 +08:00
    assert day.factors["a21026"] == {"Cou": "36.0000", "Flag": "N"} and day.cn == "2031"
    hour = next(r for r in records if r.kind == "hour")
    assert hour.factors["a21026"] == {"Avg": "1.5000", "Flag": "N"}


def records(n: int, first: int = 0) -> list[Record]:
    return [
        Record("hour", T0 + (first + i) * 3600 * S, {"a21026": {"Avg": f"{first + i}.0000", "Flag": "N"}})
        for i in range(n)
    ]


class Platform:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.server = Hj212Server(
            {"UPLINK00000001": LoggerAccount("UPLINK00000001", "pw1234", "plant", ZONE)}, self._got
        )

    def _got(self, account: LoggerAccount, message: Message) -> None:
        self.messages.append(message)


async def test_every_record_exactly_once_in_order_across_an_outage_and_a_restart(tmp_path: Path) -> None:
    platform = Platform()
    await platform.server.start("127.0.0.1", 0)
    port = platform.server.port
    target = PlatformTarget(
        "bureau", "127.0.0.1", port, "UPLINK00000001", "pw1234", ZONE, timeout_s=2, retries=1, retry_max_s=0.2
    )
    spool = Spool(tmp_path / "uplink.sqlite", "uplink_bureau", 1 << 20)
    sender = PlatformSender(target, spool, tmp_path / "uplink.bureau.json")
    task = asyncio.create_task(sender.run())
    try:
        sender.enqueue(records(5), {"hour": T0 + 4 * 3600 * S}, 1_767_600_000_000)
        await eventually(lambda: _true(len(platform.messages) == 5), "the first five records")
        await platform.server.stop()  # the platform goes away
        sender.enqueue(records(10, first=5), {"hour": T0 + 14 * 3600 * S}, 1_767_600_060_000)
        await eventually(lambda: _true(sender.connection_failures >= 2), "the sender failing to connect")
        assert spool.rows == 10 and len(platform.messages) == 5  # waiting on disk
        platform.server = Hj212Server(platform.server.accounts, platform._got)
        await platform.server.start("127.0.0.1", port)  # back
        await eventually(lambda: _true(spool.rows == 0), "the backlog sent")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        spool.close()
    # a restarted sender on the same spool: it has nothing left and knows how far records were made
    sender2 = PlatformSender(
        target, Spool(tmp_path / "uplink.sqlite", "uplink_bureau", 1 << 20), tmp_path / "uplink.bureau.json"
    )
    assert sender2.backlog == 0 and sender2.made_through() == {"hour": T0 + 14 * 3600 * S}
    await platform.server.stop()
    times = [m.cp.fields["DataTime"] for m in platform.messages]
    assert times == [f"20260105{8 + h:02d}0000" for h in range(15)]  # each once, in order
    assert len({m.segment.qn for m in platform.messages}) == 15
    assert [m.cp.factors["a21026"]["Avg"] for m in platform.messages] == [f"{h}.0000" for h in range(15)]
    assert all(m.cn == "2061" and m.segment.wants_ack for m in platform.messages)
    assert sender.delivered == 15


async def _true(value: bool) -> bool:
    return value


def test_the_spooled_upload_is_the_standards_frame(tmp_path: Path) -> None:
    """The data segment the uplink spools for a record, checked field by field against HJ 212-2017's
    layout; the frame around it passes the platform side's checks and gets its 9014."""
    from ferrogate.drivers.hj212.protocol.frame import encode_frame
    from ferrogate.drivers.hj212.receiver import Receiver

    target = PlatformTarget("bureau", "127.0.0.1", 1, "UPLINK00000001", "pw1234", ZONE)
    spool = Spool(None, "uplink_bureau", 1 << 20)
    sender = PlatformSender(target, spool)
    record = Record("hour", T0, {"a21026": {"Min": "1.0000", "Avg": "2.5000", "Max": "4.0000", "Flag": "N"}})
    sender.enqueue([record], {"hour": T0}, 1_767_574_805_123)  # the QN: 2026-01-05 09:00:05.123 Beijing
    [entry] = spool.peek(1)
    assert entry.payload.decode() == (
        "QN=20260105090005123;ST=31;CN=2061;PW=pw1234;MN=UPLINK00000001;Flag=5;"
        "CP=&&DataTime=20260105080000;a21026-Min=1.0000,a21026-Avg=2.5000,a21026-Max=4.0000,a21026-Flag=N&&"
    )
    platform = Receiver({"UPLINK00000001": LoggerAccount("UPLINK00000001", "pw1234", "plant", ZONE)})
    got = platform.feed(encode_frame(entry.payload))
    assert not got.errors and len(got.replies) == 1
    [(_, message)] = got.messages
    assert message.data_time_ns == T0 and message.cp.factors["a21026"]["Avg"] == "2.5000"
    spool.close()

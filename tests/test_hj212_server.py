"""The HJ 212 server over real sockets: many loggers at once, replies after delivery, hostile and
broken input counted and unanswered, half frames over a slow socket, idle loggers closed, the
connection limit, split messages released after their timeout, online/offline per logger.

A missing reply is shown without waiting for a timeout: the logger sends a good frame behind the
bad one, and the reply to the good frame is the only one that arrives (replies come in order)."""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio

from ferrogate.drivers.hj212.config import Hj212Device
from ferrogate.drivers.hj212.driver import Hj212Listener
from ferrogate.drivers.hj212.protocol.client import Hj212Client
from ferrogate.drivers.hj212.protocol.frame import FrameSplitter, encode_frame
from ferrogate.drivers.hj212.protocol.message import Message
from ferrogate.drivers.hj212.protocol.segment import DataSegment, build_segment, parse_segment
from ferrogate.drivers.hj212.receiver import LoggerAccount
from ferrogate.drivers.hj212.server import Hj212Server, ServerLimits
from ferrogate.gateway.reading import ScanBatch
from tests.waiting import eventually

ZONE = ZoneInfo("Asia/Shanghai")


def mn_of(i: int) -> str:
    return f"8888888{i:07d}"


ACCOUNTS = {mn_of(i): LoggerAccount(mn_of(i), "123456", f"stack{i}_cems", ZONE) for i in range(300)}


def upload(i: int, n: int, flag: int = 5, pw: str = "123456", mn: str | None = None, **extra: object) -> DataSegment:
    """Real-time data number n of logger i."""
    return DataSegment(
        qn=f"20260105083000{n % 1000:03d}",
        st="31",
        cn="2011",
        pw=pw,
        mn=mn or mn_of(i),
        flag=flag,
        cp=f"DataTime=20260105{8 + n // 3600:02d}{n // 60 % 60:02d}{n % 60:02d};a21026-Rtd={n}.5,a21026-Flag=N",
        **extra,  # type: ignore[arg-type]
    )


def frame(segment: DataSegment) -> bytes:
    return encode_frame(build_segment(segment))


class Platform:
    """The server with what it delivered and each device's online state."""

    def __init__(self, limits: ServerLimits | None = None, fail_for: str | None = None) -> None:
        self.messages: list[tuple[str, Message]] = []
        self.status: dict[str, bool] = {}
        self.fail_for = fail_for
        self.server = Hj212Server(ACCOUNTS, self._deliver, limits, self._status)

    def _deliver(self, account: LoggerAccount, message: Message) -> None:
        if account.device == self.fail_for:
            raise OSError("disk full")
        self.messages.append((account.device, message))

    def _status(self, device: str, online: bool) -> None:
        self.status[device] = online


@pytest_asyncio.fixture(loop_scope="session")
async def platform() -> AsyncIterator[Platform]:
    p = Platform(ServerLimits(idle_timeout_s=60))
    await p.server.start("127.0.0.1", 0)
    yield p
    await p.server.stop()


async def replies_after(client: tuple[asyncio.StreamReader, asyncio.StreamWriter], data: bytes, count: int) -> list:
    """Write raw bytes and read until `count` reply frames came back."""
    reader, writer = client
    writer.write(data)
    await writer.drain()
    splitter = FrameSplitter()
    got: list = []
    while len(got) < count:
        chunk = await asyncio.wait_for(reader.read(4096), 30)
        assert chunk, f"connection closed after {len(got)} of {count} replies"
        got += [parse_segment(item.decode()) for item in splitter.feed(chunk)]
    return got


async def test_many_loggers_at_once_each_acknowledged_after_delivery(platform: Platform) -> None:
    loggers, per_logger = 200, 5
    clients = [Hj212Client("127.0.0.1", platform.server.port, timeout_s=30, retries=0) for _ in range(loggers)]
    await asyncio.gather(*(c.connect() for c in clients))

    async def run(i: int, client: Hj212Client) -> list[bool]:
        return [await client.send(upload(i, n)) for n in range(per_logger)]

    results = await asyncio.gather(*(run(i, c) for i, c in enumerate(clients)))
    assert all(all(r) for r in results)
    assert sum(c.replies for c in clients) == loggers * per_logger
    delivered = [(d, m.cp.factors["a21026"]["Rtd"]) for d, m in platform.messages if d.startswith("stack")]
    assert len(delivered) == loggers * per_logger
    assert sorted(delivered) == sorted((f"stack{i}_cems", f"{n}.5") for i in range(loggers) for n in range(per_logger))
    assert all(platform.status[f"stack{i}_cems"] for i in range(loggers))
    for c in clients:
        await c.close()
    await eventually(
        lambda: asyncio.sleep(0, not any(platform.status.get(f"stack{i}_cems") for i in range(loggers))),
        "every logger offline after disconnecting",
    )


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (frame(upload(1, 1))[:-6] + b"0000\r\n", "bad_crc"),
        (frame(upload(1, 1, pw="654321")), "bad_password"),
        (frame(upload(1, 1, mn="77777770000001")), "unknown_mn"),
        (frame(upload(1, 1, flag=1)), "unsupported_version"),
        (b"##2000" + b"x" * 2000 + b"FFFF\r\n", "oversize"),
        (b"\x00\xffGET / HTTP/1.1\r\n\r\n", "garbage"),
        (b"##0010CN=2011&&0000\r\n", "bad_length"),
    ],
    ids=["bad_crc", "bad_password", "unknown_mn", "version_0", "oversize", "garbage", "bad_length"],
)
async def test_broken_or_refused_frames_are_counted_and_get_no_reply(platform: Platform, bad: bytes, code: str) -> None:
    before = platform.server.stats.errors.get(code, 0)
    delivered = len(platform.messages)
    client = await asyncio.open_connection("127.0.0.1", platform.server.port)
    good = upload(1, 2)
    [reply] = await replies_after(client, bad + frame(good), 1)
    assert (reply.cn, reply.qn) == ("9014", good.qn)  # the one reply is the good frame's
    assert platform.server.stats.errors[code] == before + 1
    assert len(platform.messages) == delivered + 1
    client[1].close()


async def test_half_frames_over_a_slow_socket(platform: Platform) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", platform.server.port)
    data = frame(upload(2, 7))
    for i in range(len(data)):  # one byte per write, each drained before the next
        writer.write(data[i : i + 1])
        await writer.drain()
    [reply] = await replies_after((reader, writer), b"", 1)
    assert reply.qn == upload(2, 7).qn
    writer.close()


async def test_no_reply_when_the_data_cannot_be_delivered() -> None:
    p = Platform(fail_for="stack3_cems")
    await p.server.start("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", p.server.port)
        writer.write(frame(upload(3, 1)))
        await writer.drain()
        assert await asyncio.wait_for(reader.read(4096), 30) == b""  # closed, no 9014
        writer.close()
    finally:
        await p.server.stop()


async def test_idle_logger_closed_and_connection_limit() -> None:
    p = Platform(ServerLimits(idle_timeout_s=0.3, max_connections=2))
    await p.server.start("127.0.0.1", 0)
    try:
        silent = await asyncio.open_connection("127.0.0.1", p.server.port)
        talking = Hj212Client("127.0.0.1", p.server.port, timeout_s=30, retries=0)
        await talking.connect()
        assert await talking.send(upload(4, 1))
        await eventually(lambda: asyncio.sleep(0, p.server.stats.connections_open == 2), "two connections open")
        third = await asyncio.open_connection("127.0.0.1", p.server.port)
        assert await asyncio.wait_for(third[0].read(10), 30) == b""  # over the limit: closed at once
        assert p.server.stats.connections_refused == 1
        assert await asyncio.wait_for(silent[0].read(10), 30) == b""  # said nothing: closed when idle
        await eventually(lambda: asyncio.sleep(0, p.status.get("stack4_cems") is False), "idle logger offline")
        assert p.server.stats.idle_closed == 2 and p.server.stats.errors["idle"] == 2
        for _, w in (silent, third):
            w.close()
        await talking.close()
    finally:
        await p.server.stop()


async def test_split_message_released_incomplete_after_its_timeout() -> None:
    p = Platform(ServerLimits(split_timeout_s=0.3))
    await p.server.start("127.0.0.1", 0)
    try:
        client = await asyncio.open_connection("127.0.0.1", p.server.port)
        first = upload(5, 1, flag=7, pnum=2, pno=1)
        [reply] = await replies_after(client, frame(first), 1)
        assert reply.qn == first.qn
        await eventually(lambda: asyncio.sleep(0, len(p.messages) == 1), "the incomplete message delivered")
        device, message = p.messages[0]
        assert (device, message.complete, message.packets) == ("stack5_cems", False, 1)
        assert message.cp.factors["a21026"]["Rtd"] == "1.5"
        assert p.server.stats.errors["split_incomplete"] == 1
        client[1].close()
    finally:
        await p.server.stop()


async def test_client_resends_until_acknowledged_then_gives_up() -> None:
    """Our client against a platform that swallows the first two copies: 10 s / 3 retries scaled down."""
    seen: list[bytes] = []

    async def platform_dropping_two(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        splitter = FrameSplitter()
        while data := await reader.read(4096):
            for item in splitter.feed(data):
                seen.append(item)
                if len(seen) == 3:
                    s = parse_segment(item.decode())
                    writer.write(frame(DataSegment(qn=s.qn, st="91", cn="9014", pw=s.pw, mn=s.mn, flag=4, cp="")))

    server = await asyncio.start_server(platform_dropping_two, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = Hj212Client("127.0.0.1", port, timeout_s=0.3, retries=3)
    await client.connect()
    assert await client.send(upload(6, 1)) is True
    # a reply slower than the timeout on a busy box means one more copy, still answered by that reply
    sent = len(seen)
    assert sent >= 3 and client.resends == sent - 1 and client.replies == 1
    assert await client.send(upload(6, 2)) is False  # nobody answers: 1 + 3 tries, then False
    assert len(seen) == sent + 4
    await client.close()
    server.close()
    await server.wait_closed()


def test_listener_counters_in_prometheus_format() -> None:
    from ferrogate.drivers.hj212.server import ServerStats, render_prometheus

    stats = ServerStats(frames=7, replies=5, connections_open=2)
    stats.errors = {"bad_crc": 3, "unknown_mn": 1}
    text = render_prometheus({"127.0.0.1:9212": stats})
    assert 'ferrogate_hj212_frames_total{listener="127.0.0.1:9212"} 7' in text
    assert 'ferrogate_hj212_connections_open{listener="127.0.0.1:9212"} 2' in text
    assert 'ferrogate_hj212_errors_total{listener="127.0.0.1:9212",reason="bad_crc"} 3' in text
    assert render_prometheus({}) == ""


async def test_a_taken_listen_port_moves_only_where_the_harness_chose_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The listen port was chosen free, then another process bound it: with on_moved the listener
    takes a port the kernel picks, says which, and a logger sending there is heard; without it (a
    configured port) the start fails with EADDRINUSE."""
    monkeypatch.setenv("TEST_HJ212_PW", "123456")
    with socket.create_server(("127.0.0.1", 0)) as other:
        taken = other.getsockname()[1]
        device = Hj212Device.model_validate(
            {
                "id": "stack1_cems",
                "protocol": "hj212",
                "mn": mn_of(1),
                "password_env": "TEST_HJ212_PW",
                "listen_host": "127.0.0.1",
                "listen_port": taken,
                "points": [{"id": "so2", "code": "a21026-Rtd", "unit": "mg/m3"}],
            }
        )
        batches: list[ScanBatch] = []
        fixed = Hj212Listener([device], "site", "Asia/Shanghai", batches.append)
        with pytest.raises(OSError) as failed:
            await fixed.start()
        assert failed.value.errno == errno.EADDRINUSE
        moves: list[tuple[list[str], int]] = []
        listener = Hj212Listener(
            [device], "site", "Asia/Shanghai", batches.append, on_moved=lambda ids, port: moves.append((ids, port))
        )
        await listener.start()
        try:
            assert moves == [(["stack1_cems"], listener.port)] and listener.port not in (taken, 0)
            client = Hj212Client("127.0.0.1", listener.port, timeout_s=30, retries=0)
            await client.connect()
            assert await client.send(upload(1, 7))
            await client.close()
            assert [r.value for b in batches for r in b.readings] == [7.5]
        finally:
            await listener.server.stop()

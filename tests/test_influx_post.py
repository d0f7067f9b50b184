"""InfluxDB writes over the client's own HTTP/1.1 connection (gateway/influx_post.py): a real influxd
takes them and answers errors as before; a kept-alive connection the server closed is replaced, and
chunked or connection-delimited answers are read whole (an HTTP server in the test, the protocol's
edge cases that influxd does not show on demand)."""

from __future__ import annotations

import asyncio
import time

import pytest

from ferrogate.gateway.config import InfluxConfig
from ferrogate.gateway.influx import ErrorKind, InfluxError, InfluxV1Client
from ferrogate.gateway.influx_post import PlainPost, plain_http
from ferrogate.gateway.services import InfluxDB


async def test_writes_reach_influxdb_and_its_errors_keep_their_kind(influxdb: InfluxDB, fresh_database: str) -> None:
    client = InfluxV1Client(InfluxConfig(url=influxdb.url, database=fresh_database))
    assert client._post is not None  # plain http on loopback: not through httpx
    try:
        now = time.time_ns()
        with pytest.raises(InfluxError) as missing:
            await client.write([f"m value=1 {now}"])
        assert missing.value.kind is ErrorKind.NOT_FOUND and "database not found" in str(missing.value)
        await client.prepare()
        for i in range(3):  # one connection, kept alive
            await client.write([f"m,i={i} value={i}.5 {now + i}", f"m,i={i} value={i}.25 {now + 10 + i}"])
        with pytest.raises(InfluxError) as bad:
            await client.write([f"m value= {now}"])
        assert bad.value.kind is ErrorKind.REJECTED and "unable to parse" in str(bad.value)
        (series,) = await client.query("SELECT count(value) FROM m")
        assert series.values[0][1] == 6
    finally:
        await client.aclose()


def test_only_plain_http_without_a_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert plain_http("http://127.0.0.1:8086")
    assert not plain_http("https://influx.example:8086")
    monkeypatch.setenv("http_proxy", "http://proxy.example:3128")
    assert not plain_http("http://influx.example:8086")
    monkeypatch.setenv("no_proxy", "influx.example")
    assert plain_http("http://influx.example:8086")


class Server:
    """Answers each request with the next of `answers` (raw bytes); `None`: close without answering;
    an HTTP/1.0 or `Connection: close` answer closes after it. Counts connections and keeps each
    request's line and body."""

    def __init__(self, answers: list[bytes | None]) -> None:
        self.answers = answers
        self.connections = 0
        self.requests: list[tuple[bytes, bytes]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while self.answers:
                line = await reader.readline()
                if not line:
                    return
                length = 0
                while (header := await reader.readline()) != b"\r\n":
                    if header.lower().startswith(b"content-length:"):
                        length = int(header.split(b":")[1])
                self.requests.append((line, await reader.readexactly(length)))
                answer = self.answers.pop(0)
                if answer is None:
                    return
                writer.write(answer)
                await writer.drain()
                if answer.startswith(b"HTTP/1.0") or b"Connection: close" in answer:
                    return
        finally:
            writer.close()


async def serve(server: Server) -> tuple[asyncio.Server, int]:
    listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    return listening, listening.sockets[0].getsockname()[1]


async def test_a_connection_the_server_closed_is_replaced_and_the_write_sent_again() -> None:
    no_content = b"HTTP/1.1 204 No Content\r\n\r\n"
    # the first connection answers once, then drops the next request unanswered (an idle timeout):
    # sent again on a new connection; when that one drops one too, so does the one after it: an error
    server = Server([no_content, None, no_content, None])
    listening, port = await serve(server)
    post = PlainPost(f"http://127.0.0.1:{port}/base/", 5.0, ("user", "pass"))
    try:
        assert await post.post("/write?db=a", b"one") == (204, b"")
        assert await post.post("/write?db=a", b"two") == (204, b"")  # the first connection dropped it
        assert server.connections == 2
        with pytest.raises((asyncio.IncompleteReadError, ConnectionResetError)):
            await post.post("/write?db=a", b"three")  # the third connection closes at once: not tried again
        assert server.connections == 3
        assert [body for _, body in server.requests] == [b"one", b"two", b"two", b"three"]
        assert server.requests[0][0] == b"POST /base/write?db=a HTTP/1.1\r\n"
    finally:
        await post.aclose()
        listening.close()


async def test_chunked_and_connection_delimited_answers_are_read_whole() -> None:
    chunked = (
        b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'8\r\n{"error"\r\n8;ext=1\r\n:"bad"}\n\r\n0\r\n\r\n'
    )
    delimited = b"HTTP/1.0 500 Internal Server Error\r\n\r\nbroken"
    server = Server([chunked, delimited, b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"])
    listening, port = await serve(server)
    post = PlainPost(f"http://127.0.0.1:{port}", 5.0)
    try:
        assert await post.post("/write", b"x") == (400, b'{"error":"bad"}\n')
        assert await post.post("/write", b"y") == (500, b"broken")  # HTTP/1.0: closed after
        assert await post.post("/write", b"z") == (204, b"")
        assert server.connections == 2
    finally:
        await post.aclose()
        listening.close()


async def test_a_server_that_does_not_answer_in_time_is_a_timeout() -> None:
    never = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await never.wait()

    listening = await asyncio.start_server(silent, "127.0.0.1", 0)
    post = PlainPost(f"http://127.0.0.1:{listening.sockets[0].getsockname()[1]}", 0.2)
    try:
        with pytest.raises(TimeoutError):
            await post.post("/write", b"x")
        assert post._stream is None  # its state unknown: closed
    finally:
        never.set()
        await post.aclose()
        listening.close()

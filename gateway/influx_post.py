"""POST over one kept-alive HTTP/1.1 connection of its own, for InfluxDB's `/write` on plain http.

httpx spends about 1.4 ms of CPU per request here (some 2,700 Python calls through httpx, httpcore,
h11 and anyio), whatever the body: against a real influxd, 1,000-line bodies cost 1.35-1.50 ms per
write through httpx, 0.18 ms through asyncio's streams and 0.32 ms through http.client (the 2-core
box, loaded). At ingest's batch size 1,000 that was most of what separated it from the featureless
floor (issue 15, bench/README.md). Only `http://` URLs without a proxy in the environment come here
(`plain_http`); https, with httpx's certificate checks, and proxied URLs keep httpx.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import urllib.parse
import urllib.request


def plain_http(url: str) -> bool:
    """True for an http:// URL that no proxy of the environment (HTTP_PROXY, NO_PROXY) applies to."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return False
    proxies = urllib.request.getproxies()
    return not ({"http", "all"} & proxies.keys()) or bool(urllib.request.proxy_bypass(parts.hostname))


class PlainPost:
    """One request at a time over one connection, opened on first use and again after it failed or
    the server closed it; a request on a kept-alive connection that fails before its answer is
    sent once more on a new one (a line-protocol write is idempotent: same series and time)."""

    def __init__(self, url: str, timeout_s: float, credentials: tuple[str, str] | None = None) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host = parts.hostname or ""
        self.port = parts.port or 80
        self.base_path = parts.path.rstrip("/")
        self.timeout_s = timeout_s
        host = parts.netloc.rpartition("@")[2]
        self._head = f"Host: {host}\r\n".encode()
        if credentials is not None:
            token = base64.b64encode(":".join(credentials).encode()).decode()
            self._head += f"Authorization: Basic {token}\r\n".encode()
        self._stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._lock = asyncio.Lock()

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """(status, response body) of `POST base_path + path`; OSError, TimeoutError,
        asyncio.IncompleteReadError or ValueError (an answer that is not HTTP) when there is none."""
        request = (
            f"POST {self.base_path}{path} HTTP/1.1\r\n".encode()
            + self._head
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        async with self._lock:
            try:
                async with asyncio.timeout(self.timeout_s):
                    while True:
                        reused = self._stream is not None
                        reader, writer = self._stream or await self._connect()
                        try:
                            writer.write(request)
                            writer.write(body)
                            await writer.drain()
                            return await self._answer(reader)
                        except (OSError, asyncio.IncompleteReadError) as exc:
                            self.close()
                            if not reused or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                                raise
            except BaseException:  # timed out, cancelled, not HTTP: the connection's state is unknown
                self.close()
                raise

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self._stream = await asyncio.open_connection(self.host, self.port)
        return self._stream

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[int, bytes]:
        status_line = await reader.readline()
        if not status_line:
            raise asyncio.IncompleteReadError(b"", None)  # closed before answering
        version, status, *_ = status_line.split(None, 2)
        if not version.startswith(b"HTTP/1."):
            raise ValueError(f"not an HTTP answer: {status_line[:80]!r}")
        length: int | None = None
        chunked = False
        keep_alive = version == b"HTTP/1.1"
        while (line := await reader.readline()) not in (b"\r\n", b"\n"):
            if not line:
                raise asyncio.IncompleteReadError(b"", None)
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = value.endswith(b"chunked")
            elif name == b"connection":
                keep_alive = value == b"keep-alive" or (keep_alive and value != b"close")
        code = int(status)
        if chunked:
            body = await _chunks(reader)
        elif length is not None:
            body = await reader.readexactly(length)
        elif code in (204, 304) or code < 200:
            body = b""
        else:  # delimited by the end of the connection
            body, keep_alive = await reader.read(), False
        if not keep_alive:
            self.close()
        return code, body

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream[1].close()

    async def aclose(self) -> None:
        stream = self._stream
        self.close()
        if stream is not None:
            with contextlib.suppress(OSError):
                await stream[1].wait_closed()


async def _chunks(reader: asyncio.StreamReader) -> bytes:
    """A chunked body (RFC 9112 7.1); trailers are read and dropped."""
    parts = []
    while size := int((await reader.readline()).split(b";", 1)[0].strip() or b"x", 16):
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)  # the chunk's CRLF
    while (line := await reader.readline()) not in (b"\r\n", b"\n"):
        if not line:
            raise asyncio.IncompleteReadError(b"", None)
    return b"".join(parts)

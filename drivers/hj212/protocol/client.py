"""The logger side over TCP: a client that sends uploads to a platform and waits for its 9014.

HJ 212-2017 6.6 (reference "Ack"): an upload with Flag bit A set is acknowledged with a 9014 of the
same QN; without one within the timeout (10 s) it is sent again, up to 3 times. `send` returns True
once acknowledged, False when every try went unanswered; a lost connection raises ConnectionError
(the caller reconnects and sends again). Used by the simulated CEMS logger and the uplink role.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ferrogate.drivers.hj212.protocol.codes import CN_DATA_REPLY
from ferrogate.drivers.hj212.protocol.errors import Hj212Error
from ferrogate.drivers.hj212.protocol.frame import STANDARD_MAX_SEGMENT, FrameSplitter, encode_frame
from ferrogate.drivers.hj212.protocol.segment import DataSegment, build_segment, parse_segment

log = logging.getLogger(__name__)

STANDARD_TIMEOUT_S = 10.0
STANDARD_RETRIES = 3


class Hj212Client:
    def __init__(
        self,
        host: str,
        port: int,
        timeout_s: float = STANDARD_TIMEOUT_S,
        retries: int = STANDARD_RETRIES,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.host, self.port = host, port
        self.timeout_s = timeout_s
        self.retries = retries
        self.connect_timeout_s = connect_timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reading: asyncio.Task | None = None
        self._waiting: dict[tuple[str | None, str], asyncio.Future[None]] = {}
        self._lost: asyncio.Event = asyncio.Event()
        self.sent_frames = 0
        self.replies = 0
        self.resends = 0
        self.ignored_frames = 0  # frames from the platform that answer nothing we wait for

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._lost.is_set()

    async def connect(self) -> None:
        await self.close()
        self._reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), self.connect_timeout_s
        )
        self._lost = asyncio.Event()
        self._reading = asyncio.create_task(self._read_replies(), name=f"hj212-client:{self.host}:{self.port}")

    async def send(self, segment: DataSegment, first_frame: bytes | None = None) -> bool:
        """Send an upload; with Flag bit A wait for its 9014 (resending on timeout). `first_frame`
        replaces the first transmission (fault injection: a frame damaged on the way)."""
        frame = encode_frame(build_segment(segment))
        if not segment.wants_ack:
            await self.send_raw(frame)
            return True
        key = (segment.qn, segment.mn)
        for attempt in range(1 + self.retries):
            waiter = asyncio.get_running_loop().create_future()
            self._waiting[key] = waiter
            try:
                if attempt:
                    self.resends += 1
                await self.send_raw(first_frame if attempt == 0 and first_frame is not None else frame)
                lost = asyncio.ensure_future(self._lost.wait())
                try:
                    done, _ = await asyncio.wait({waiter, lost}, timeout=self.timeout_s, return_when="FIRST_COMPLETED")
                finally:
                    lost.cancel()
                if waiter in done:
                    return True
                if self._lost.is_set():
                    raise ConnectionError("the platform closed the connection")
            finally:
                self._waiting.pop(key, None)
        return False

    async def send_raw(self, data: bytes) -> None:
        """Bytes as they are (also broken frames, for fault injection)."""
        if self._writer is None or self._lost.is_set():
            raise ConnectionError("not connected")
        self._writer.write(data)
        self.sent_frames += 1
        try:
            await self._writer.drain()
        except OSError as exc:
            self._lost.set()
            raise ConnectionError(f"sending failed: {exc}") from exc

    async def _read_replies(self) -> None:
        assert self._reader is not None
        splitter = FrameSplitter(STANDARD_MAX_SEGMENT)
        try:
            while data := await self._reader.read(65536):
                for item in splitter.feed(data):
                    if isinstance(item, Hj212Error):
                        log.debug("HJ 212 client: %s from %s:%d", item, self.host, self.port)
                        continue
                    self._reply(item)
        except OSError:
            pass
        finally:
            self._lost.set()

    def _reply(self, data: bytes) -> None:
        try:
            reply = parse_segment(data.decode("utf-8"))
        except (UnicodeDecodeError, Hj212Error):
            self.ignored_frames += 1
            return
        waiter = self._waiting.get((reply.qn, reply.mn)) if reply.cn == CN_DATA_REPLY else None
        if waiter is None or waiter.done():
            self.ignored_frames += 1
            return
        self.replies += 1
        waiter.set_result(None)

    async def close(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
            await asyncio.gather(self._reading, return_exceptions=True)
            self._reading = None
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
            self._writer = None

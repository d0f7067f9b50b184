"""A lean Modbus TCP client: the four read functions, one request in flight per connection.

pymodbus's request path (transaction manager, framer, PDU objects, one decode call per register)
cost about twice the CPU of the request's own socket work (issue 15: 285-304 us against 148-180 us
of process CPU per 100-register read, loops of 2,000 reads against the bench's simulator). This
client sends the 12-byte request with one `struct` call and hands back the response's register
bytes as they came (big-endian, 2 per register; the driver decodes a whole block at once) or its
bits, and times each request out without a timer of its own; it never writes. A link lends each
connection to one request at a time (drivers/modbus/link.py), so a connection holds at most one
waiter.

Frames are checked as they arrive: an answer whose transaction id (unless 0), unit (unless the
request's is 0) or function is not the request's is dropped (a late answer to an abandoned request;
the driver also drops the connection on a timeout), and a frame whose header is not Modbus TCP
closes the connection.
"""

from __future__ import annotations

import asyncio
import struct

_REQUEST = struct.Struct(">HHHBBHH")  # MBAP header (transaction, protocol 0, length 6, unit) + PDU
_HEADER = struct.Struct(">HHHB")  # transaction, protocol, length (unit + PDU), unit
MAX_FRAME_LENGTH = 254  # the MBAP length field's largest value: unit id + the largest PDU (253)


class ExceptionResponse(Exception):
    """The device answered with a Modbus exception (function code | 0x80)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        # the request waiting for its answer: (transaction id, unit, function code, future of the PDU)
        self.waiting: tuple[int, int, int, asyncio.Future[bytes]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        waiting, self.waiting = self.waiting, None
        if waiting is not None and not waiting[3].done():
            waiting[3].set_exception(ConnectionError("connection lost while waiting for an answer"))

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while len(buffer) >= 7:
            tid, protocol, length, unit = _HEADER.unpack_from(buffer)
            if protocol != 0 or not 2 <= length <= MAX_FRAME_LENGTH:
                self._garbage(f"not a Modbus TCP frame (protocol {protocol}, length {length})")
                return
            end = 6 + length
            if len(buffer) < end:
                return
            pdu = bytes(buffer[7:end])
            del buffer[:end]
            waiting = self.waiting
            # anything else is an answer to a request given up on: not this request's. As pymodbus
            # did: transaction id 0 in an answer (devices that do not echo it) and any unit for a
            # request to unit 0 are taken
            if (
                waiting is not None
                and tid in (waiting[0], 0)
                and (unit == waiting[1] or waiting[1] == 0)
                and pdu[0] & 0x7F == waiting[2]
            ):
                self.waiting = None
                if not waiting[3].done():
                    waiting[3].set_result(pdu)

    def _garbage(self, why: str) -> None:
        self.buffer.clear()
        waiting, self.waiting = self.waiting, None
        if waiting is not None and not waiting[3].done():
            waiting[3].set_exception(ConnectionError(why))
        if self.transport is not None:
            self.transport.close()


class ModbusTcpClient:
    """One TCP connection to a Modbus server (a device or a serial gateway), reconnected on demand."""

    def __init__(self, host: str, port: int, connect_timeout_s: float) -> None:
        self.host, self.port = host, port
        self.connect_timeout_s = connect_timeout_s
        self._protocol: _Protocol | None = None
        self._tid = 0
        # the answer timeout: one timer re-armed from the current request's deadline when it fires,
        # not one per request (a timer made and cancelled per read was a tenth of the collector's CPU)
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None

    @property
    def connected(self) -> bool:
        protocol = self._protocol
        return protocol is not None and protocol.transport is not None and not protocol.transport.is_closing()

    async def connect(self) -> bool:
        """Open the connection (closing a previous one); False when the server cannot be reached."""
        self.close()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                _, protocol = await loop.create_connection(_Protocol, self.host, self.port)
        except (OSError, TimeoutError):
            return False
        self._protocol = protocol
        return True

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None:
            protocol.transport.close()

    async def read(self, function: int, start: int, count: int, unit: int, timeout_s: float) -> bytes:
        """Send one read (FC 1-4) and return the response's data bytes (after the byte count).
        Raises TimeoutError when no answer came within `timeout_s` (the request is abandoned: a late
        answer is dropped), ExceptionResponse for an exception answer, ConnectionError when the
        connection is not up or drops meanwhile."""
        protocol = self._protocol
        if protocol is None or protocol.transport is None:
            raise ConnectionError(f"not connected to {self.host}:{self.port}")
        loop = asyncio.get_running_loop()
        self._tid = tid = self._tid % 0xFFFF + 1  # 1..65535: 0 is what non-echoing devices answer
        answer: asyncio.Future[bytes] = loop.create_future()
        protocol.waiting = (tid, unit, function, answer)
        self._deadline = deadline = loop.time() + timeout_s
        timer = self._timer
        if timer is None or timer.when() > deadline:  # none armed, or armed for a later deadline
            if timer is not None:
                timer.cancel()
            self._timer = loop.call_at(deadline, self._expire)
        protocol.transport.write(_REQUEST.pack(tid, 0, 6, unit, function, start, count))
        try:
            pdu = await answer
        finally:
            if protocol.waiting is not None and protocol.waiting[3] is answer:
                protocol.waiting = None  # given up (timeout, cancelled): a late answer is dropped
        if pdu[0] & 0x80:
            raise ExceptionResponse(pdu[1] if len(pdu) > 1 else 0)
        size = pdu[1] if len(pdu) > 1 else 0
        return pdu[2 : 2 + size]

    def _expire(self) -> None:
        """The timer: fail the request waiting past its deadline, or re-arm for the one waiting now."""
        self._timer = None
        protocol = self._protocol
        waiting = protocol.waiting if protocol is not None else None
        if waiting is None:
            return  # nothing waits: the next read arms the timer again
        loop = asyncio.get_running_loop()
        if loop.time() < self._deadline:
            self._timer = loop.call_at(self._deadline, self._expire)
            return
        protocol.waiting = None  # type: ignore[union-attr]
        if not waiting[3].done():
            waiting[3].set_exception(TimeoutError())


def unpack_bits(data: bytes, count: int) -> list[bool]:
    """Coil or discrete input bytes (least significant bit first) as `count` bools at most."""
    return [bool(byte >> bit & 1) for byte in data for bit in range(8)][:count]

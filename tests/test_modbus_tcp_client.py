"""The lean Modbus TCP client (drivers/modbus/tcp.py) against a scripted server on loopback: which
answers it takes, which it drops, and what a frame that is not Modbus TCP or a silent server does.
The driver against the real pymodbus simulator is tests/test_drivers_modbus.py."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from ferrogate.drivers.modbus.tcp import ExceptionResponse, ModbusTcpClient, unpack_bits
from ferrogate.gateway.ports import LOOPBACK

# (transaction id, unit, function, start, count) of a request -> the bytes the server sends back
Script = Callable[[int, int, int, int, int], bytes]


def frame(tid: int, unit: int, pdu: bytes) -> bytes:
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu


def registers(values: list[int]) -> bytes:
    return bytes([2 * len(values)]) + struct.pack(f">{len(values)}H", *values)


@asynccontextmanager
async def scripted(script: Script) -> AsyncIterator[ModbusTcpClient]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await reader.readexactly(12)
                tid, _, _, unit, function, start, count = struct.unpack(">HHHBBHH", request)
                writer.write(script(tid, unit, function, start, count))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, LOOPBACK, 0)
    client = ModbusTcpClient(LOOPBACK, server.sockets[0].getsockname()[1], 2.0)
    try:
        assert await client.connect()
        yield client
    finally:
        client.close()
        server.close()
        await server.wait_closed()


async def test_an_answer_in_two_pieces_and_two_answers_in_one() -> None:
    def script(tid: int, unit: int, function: int, start: int, count: int) -> bytes:
        return frame(tid, unit, bytes([function]) + registers(list(range(start, start + count))))

    async with scripted(script) as client:
        assert await client.read(3, 10, 3, 1, 1.0) == struct.pack(">3H", 10, 11, 12)
        # the protocol reassembles frames from whatever the socket hands it
        protocol = client._protocol
        assert protocol is not None
        whole = frame(7, 1, bytes([3]) + registers([5]))
        protocol.waiting = None
        protocol.data_received(whole[:4])
        protocol.data_received(whole[4:] + whole)  # the rest, then a whole second frame: both dropped
        assert protocol.buffer == bytearray()
        assert await client.read(4, 0, 2, 1, 1.0) == struct.pack(">2H", 0, 1)


async def test_answers_to_other_requests_are_dropped_and_the_request_times_out() -> None:
    def script(tid: int, unit: int, function: int, start: int, count: int) -> bytes:
        body = bytes([function]) + registers([1])
        if start == 1:
            return frame(tid + 1, unit, body)  # another transaction's
        if start == 2:
            return frame(tid, unit + 1, body)  # another unit's
        if start == 3:
            return frame(tid, unit, bytes([4]) + registers([1]))  # another function's
        return frame(0, unit, body)  # transaction id 0: a device that does not echo it (taken)

    async with scripted(script) as client:
        for start in (1, 2, 3):
            with pytest.raises(TimeoutError):
                await client.read(3, start, 1, 1, 0.2)
        assert await client.read(3, 0, 1, 1, 1.0) == struct.pack(">H", 1)


async def test_an_exception_answer_and_coil_bits() -> None:
    def script(tid: int, unit: int, function: int, start: int, count: int) -> bytes:
        if function == 3:
            return frame(tid, unit, bytes([0x83, 2]))
        return frame(tid, unit, bytes([function, 2, 0b0000_0101, 0b1]))

    async with scripted(script) as client:
        with pytest.raises(ExceptionResponse) as raised:
            await client.read(3, 0, 1, 1, 1.0)
        assert raised.value.code == 2
        data = await client.read(1, 0, 9, 1, 1.0)
        assert unpack_bits(data, 9) == [True, False, True, False, False, False, False, False, True]


async def test_a_frame_that_is_not_modbus_tcp_closes_the_connection() -> None:
    async with scripted(lambda tid, unit, function, start, count: b"HTTP/1.1 400 Bad Request\r\n\r\n") as client:
        with pytest.raises(ConnectionError, match="not a Modbus TCP frame"):
            await client.read(3, 0, 1, 1, 1.0)
        assert not client.connected


async def test_a_timer_armed_for_a_long_timeout_does_not_hold_a_short_one() -> None:
    """One timer serves the connection's requests: a request with a shorter timeout than the one the
    timer was armed for still times out on time."""

    def script(tid: int, unit: int, function: int, start: int, count: int) -> bytes:
        if start == 0:
            return frame(tid, unit, bytes([function]) + registers([1]))
        return b""  # silent

    async with scripted(script) as client:
        assert await client.read(3, 0, 1, 1, 30.0) == struct.pack(">H", 1)  # arms the timer for 30 s
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TimeoutError):
            await client.read(3, 1, 1, 1, 0.3)
        assert loop.time() - started < 10.0


async def test_a_server_that_hangs_up_fails_the_waiting_request() -> None:
    def script(tid: int, unit: int, function: int, start: int, count: int) -> bytes:
        raise ConnectionError("hang up")  # the server closes the connection without answering

    async with scripted(script) as client:
        with pytest.raises(ConnectionError, match="connection lost while waiting for an answer"):
            await client.read(3, 0, 1, 1, 5.0)
        assert not client.connected

"""Ingest's receive buffer (gateway/ingest_flow.py): paho's reads served from chunks taken from a real
socket (a socketpair), with socket.recv's meaning kept: bytes in order, b"" at the end of the
stream, BlockingIOError only when nothing is buffered, nothing carried over to another socket.
The hand-over under a burst (pauses, read-ahead) is tested with the real broker in
tests/test_store_and_forward_durable_ack.py."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest

from ferrogate.gateway.ingest_flow import RECEIVE_CHUNK, ReceiveBuffer


@pytest.fixture
def pair() -> Iterator[tuple[mqtt.Client, socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client._sock = ours  # what paho reads once connected
    yield client, ours, theirs
    client._sock = None
    ours.close()
    theirs.close()


def test_one_chunk_serves_many_reads_in_order(pair: tuple[mqtt.Client, socket.socket, socket.socket]) -> None:
    client, _, theirs = pair
    buffer = ReceiveBuffer(client)
    theirs.sendall(b"\x30\x05hello\x30\x02ok")
    # paho's own pattern: the command byte, the remaining length, the rest
    assert [client._sock_recv(1), client._sock_recv(1), client._sock_recv(5)] == [b"\x30", b"\x05", b"hello"]
    assert buffer.fills == 1 and buffer.pending() == 4
    assert client._sock_recv(100) == b"\x30\x02ok"  # no more than is buffered, without blocking
    assert buffer.pending() == 0
    with pytest.raises(BlockingIOError):  # nothing buffered, nothing on the socket
        client._sock_recv(1)
    assert buffer.fills == 1  # the socket had nothing: no chunk taken


def test_a_read_larger_than_a_chunk_takes_at_most_a_chunk(
    pair: tuple[mqtt.Client, socket.socket, socket.socket],
) -> None:
    client, _, theirs = pair
    ReceiveBuffer(client)
    data = bytes(range(256)) * (RECEIVE_CHUNK // 256) + b"0123456789"
    theirs.sendall(data)
    reads = []
    while sum(map(len, reads)) < len(data):
        reads.append(client._sock_recv(len(data)))
    assert b"".join(reads) == data and len(reads) >= 2 and max(map(len, reads)) <= RECEIVE_CHUNK


def test_end_of_stream_and_another_socket(pair: tuple[mqtt.Client, socket.socket, socket.socket]) -> None:
    client, ours, theirs = pair
    buffer = ReceiveBuffer(client)
    theirs.sendall(b"abcdef")
    assert client._sock_recv(2) == b"ab" and buffer.pending() == 4
    # a new connection: what the old one left is not served from it
    fresh, other = socket.socketpair()
    try:
        fresh.setblocking(False)
        client._sock = fresh
        assert buffer.pending() == 0
        other.sendall(b"xyz")
        assert client._sock_recv(3) == b"xyz"
        other.close()
        assert client._sock_recv(1) == b""  # the peer closed: the end of the stream
    finally:
        client._sock = ours
        fresh.close()
    client._sock = None
    assert buffer.pending() == 0  # disconnected: nothing pending

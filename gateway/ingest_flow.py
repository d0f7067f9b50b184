"""Ingest's own flow control: the broker's socket is not read while the writer holds too much.

MQTT v5's Receive Maximum (the worker's `receive_maximum`) should make the broker stop sending at
that many unacknowledged messages, and Mosquitto 2.0.11 does while none is acknowledged; but once
acknowledgements flow it sends past it (measured: up to 3,550 unacknowledged messages with Receive
Maximum 1000, a 5,000-message burst acknowledged 50 at a time). Under a burst, everything the broker
queued then ended up in the worker's memory, first as received messages, then as line protocol
waiting for its write (peak RSS 165-203 MiB for a 500,000-point burst, issue 15).

So the worker keeps its own window: once the writer holds more than it needs to keep writing (see
`InfluxWriter.crowded`), the worker stops reading the connection's socket; the kernel's buffers
fill and TCP makes the broker wait, which keeps the rest queued where it is durable anyway (the
broker, the collectors' spools). Reading resumes when the writer has room again, and at the latest
after half the keepalive interval, so that the broker's PINGRESP is read and paho does not take a
long database outage for a dead connection (while nothing is acknowledged, the broker keeps to the
Receive Maximum by itself).

ReadPause is also the connection's reader (`take_over`): paho reads a packet with a recv per byte
of its fixed header and one for the rest (4 system calls for a 3 kB batch), and aiomqtt reads one
packet per readiness of the socket (an event-loop turn and an epoll per message). Through
`ReceiveBuffer` one recv of up to RECEIVE_CHUNK bytes serves every packet in it, and the reader
goes on while the buffer holds bytes: a turn of the loop per chunk, not per message. It takes one
chunk more per turn at most (the one a packet that crosses the chunk's end completes from) and
leaves the rest for the next turn, and it pauses itself once `read_ahead` received messages wait
(a chunk may hold hundreds of small ones), so the worker reads no further ahead than before.
"""

from __future__ import annotations

import asyncio

import aiomqtt
import paho.mqtt.client as mqtt

# bytes taken from the socket at once: about 20 ferrogate/2 batches of 100 readings, so a paused
# reader holds at most that much more than READ_AHEAD (gateway/ingest.py) in this process
RECEIVE_CHUNK = 65536


class ReceiveBuffer:
    """paho's reads of one client served from chunks of RECEIVE_CHUNK bytes (installed as its
    `_sock_recv`, whose paho original, with its TLS handling, fills the buffer)."""

    def __init__(self, paho: mqtt.Client) -> None:
        self._paho = paho
        self._fill = paho._sock_recv
        self._sock: object = None  # the socket the buffered bytes came from
        self._data = b""
        self._pos = 0
        self.fills = 0  # chunks taken from the socket
        paho._sock_recv = self.recv  # type: ignore[method-assign]

    def recv(self, size: int) -> bytes:
        """Up to `size` bytes, as socket.recv: b"" at the end of the stream; BlockingIOError (and
        any other error) from the socket only when nothing is buffered."""
        if not self.pending():
            data = self._fill(RECEIVE_CHUNK)
            self._sock, self._data, self._pos = self._paho._sock, data, 0
            self.fills += 1
            if len(data) <= size:
                self._pos = len(data)
                return data
        start = self._pos
        self._pos = min(start + size, len(self._data))
        return self._data[start : self._pos]

    def pending(self) -> int:
        """Bytes received and not yet read by paho (none once its socket is another or gone)."""
        if self._paho._sock is not self._sock or self._sock is None:
            return 0
        return len(self._data) - self._pos


class ReadPause:
    """Stops and restarts the event loop's reading of one connection's socket (aiomqtt 2.5, pinned,
    registers a reader that calls paho's `loop_read`; while removed, nothing is read)."""

    def __init__(self, client: aiomqtt.Client, read_ahead: int) -> None:
        self.client = client
        # received messages not yet taken, at most: the reader pauses itself there, the worker resumes it
        self.read_ahead = read_ahead
        self.paused_fd: int | None = None
        self.buffer = ReceiveBuffer(client._client)
        self._scheduled = False  # a turn of `_readable` is asked for (bytes left in the buffer)

    def take_over(self) -> None:
        """Read the connection from now on (aiomqtt's own reader is replaced by `_readable`)."""
        self.pause()
        self.resume()

    def pause(self) -> None:
        sock = self.client._client.socket()  # paho's socket, as aiomqtt reads it
        if self.paused_fd is not None or sock is None or sock.fileno() < 0:
            return
        self.paused_fd = sock.fileno()
        asyncio.get_running_loop().remove_reader(self.paused_fd)

    def resume(self) -> None:
        fd, self.paused_fd = self.paused_fd, None
        sock = self.client._client.socket()
        if fd is None or sock is None or sock.fileno() != fd:
            return  # closed meanwhile: the reconnect registers a reader of its own
        loop = asyncio.get_running_loop()
        loop.add_reader(fd, self._readable)
        if self.buffer.pending():  # bytes received before the pause: the socket may say nothing more
            self._again(loop)

    def _again(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._readable)

    def _readable(self) -> None:
        # what aiomqtt's own reader does: a read that fails (a broken pipe) ends the connection
        self._scheduled = False
        if self.paused_fd is not None:
            return  # a turn asked for before the pause
        client, buffer = self.client, self.buffer
        last_chunk = buffer.fills + 1  # this turn's chunk; the buffer may be empty now
        try:
            while True:
                if len(client.messages) >= self.read_ahead:
                    self.pause()  # what is left in the buffer is read when the worker resumes
                    break
                client._client.loop_read()
                if buffer.pending():
                    if buffer.fills <= last_chunk:
                        continue
                    self._again(asyncio.get_running_loop())  # the rest of the chunk on the next turn
                    break
                sock = client._client.socket()
                if not (hasattr(sock, "pending") and sock.pending() > 0):  # TLS: decoded bytes left
                    break
        except Exception as exc:  # handed to the message iterator, as aiomqtt does
            if not client._disconnected.done():
                client._disconnected.set_exception(exc)

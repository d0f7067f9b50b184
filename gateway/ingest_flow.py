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
"""

from __future__ import annotations

import asyncio

import aiomqtt


class ReadPause:
    """Stops and restarts the event loop's reading of one connection's socket (aiomqtt 2.5, pinned,
    registers a reader that calls paho's `loop_read`; while removed, nothing is read)."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.paused_fd: int | None = None

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
        asyncio.get_running_loop().add_reader(fd, self._readable)

    def _readable(self) -> None:
        # what aiomqtt's own reader does: a read that fails (a broken pipe) ends the connection
        client = self.client
        try:
            while True:
                client._client.loop_read()
                sock = client._client.socket()
                if not (hasattr(sock, "pending") and sock.pending() > 0):  # TLS: decoded bytes left
                    break
        except Exception as exc:  # handed to the message iterator, as aiomqtt does
            if not client._disconnected.done():
                client._disconnected.set_exception(exc)

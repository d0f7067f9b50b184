"""Manual PUBACKs of one connection, sent together.

paho queues each PUBACK as a packet of its own and writes each with a system call of its own (and,
under aiomqtt, a register of the socket for writing): an ingest flush that makes 50 messages durable
sent 50 four-byte packets. `PubackBatch` gathers the PUBACKs asked for during one turn of the event
loop (the writer acknowledges a whole batch's messages in one go) and hands them to paho as one
packet, in the order asked: MQTT wants QoS 1 PUBACKs in the order of their PUBLISHes, and paho
writes its queue in order.
"""

from __future__ import annotations

import asyncio
import struct

import aiomqtt
from paho.mqtt.client import PUBACK

from ferrogate.gateway.mqtt import ack

_PUBACK = struct.Struct("!BBH")  # paho's own: the type, remaining length 2, the packet id (reason: success)


class PubackBatch:
    """The PUBACKs of one connection's messages (received with manual acknowledgement), sent at the
    end of the event loop's turn that asked for them."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self._mids: list[int] = []
        self._loop = asyncio.get_running_loop()
        self.packets = 0  # writes handed to paho (each with one or more PUBACKs)

    def ack(self, message: aiomqtt.Message) -> None:
        """Acknowledge `message` (QoS 1: in this turn's packet; otherwise at once, after it)."""
        if message.qos != 1:
            self._send()
            ack(self.client, message)
            return
        if not self._mids:
            self._loop.call_soon(self._send)
        self._mids.append(message.mid)

    def _send(self) -> None:
        mids, self._mids = self._mids, []
        if not mids:
            return
        packet = b"".join([_PUBACK.pack(PUBACK, 2, mid) for mid in mids])
        # one queued packet: paho writes it whole (in pieces if the socket is full) before what follows
        self.client._client._packet_queue(PUBACK, packet, 0, 1)
        self.packets += 1

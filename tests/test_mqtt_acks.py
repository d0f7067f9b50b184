"""PUBACKs sent together (gateway/mqtt_acks.py), with the real Mosquitto: the acknowledgements asked
for in one turn of the event loop go out as one write, and the broker takes every one of them (a
session resumed afterwards gets nothing again: a marker published after them is the first and only
message), while a message not acknowledged comes back."""

from __future__ import annotations

import asyncio

import aiomqtt

from ferrogate.gateway.config import MqttConfig
from ferrogate.gateway.mqtt import make_client, received
from ferrogate.gateway.mqtt_acks import PubackBatch
from ferrogate.gateway.services import Mosquitto

TOPIC = "acks/test"


async def take(client: aiomqtt.Client, count: int) -> list[aiomqtt.Message]:
    messages: list[aiomqtt.Message] = []
    async with asyncio.timeout(30):
        async for message in received(client):
            messages.append(message)
            if len(messages) == count:
                return messages
    raise AssertionError("unreachable")


async def publish(mqtt: MqttConfig, payloads: list[bytes]) -> None:
    async with make_client(mqtt, "acks-publisher") as publisher:
        for payload in payloads:
            await publisher.publish(TOPIC, payload, qos=1)


async def test_the_acks_of_a_turn_are_one_write_and_the_broker_takes_them(mosquitto: Mosquitto) -> None:
    mqtt = MqttConfig(port=mosquitto.port)
    async with make_client(mqtt, "acks-worker", manual_ack=True) as client:
        await client.subscribe(TOPIC, qos=1)
        await publish(mqtt, [b"%d" % i for i in range(50)])
        messages = await take(client, 50)
        pubacks = PubackBatch(client)
        for message in messages[:-1]:  # the last one is not acknowledged
            pubacks.ack(message)
        assert pubacks.packets == 0  # sent at the end of the turn
        await asyncio.sleep(0)
        assert pubacks.packets == 1
        # the broker has read them once it answers a request sent after them on the same connection
        await client.subscribe("acks/other", qos=1)
    await publish(mqtt, [b"marker"])
    async with make_client(mqtt, "acks-worker", manual_ack=True) as client:
        again = await take(client, 2)
        assert [m.payload for m in again] == [b"49", b"marker"]  # only the one not acknowledged
        pubacks = PubackBatch(client)
        for message in again:
            pubacks.ack(message)
        await asyncio.sleep(0)
        await client.subscribe("acks/other", qos=1)

"""The MQTT client every role uses (gateway.mqtt.make_client), against the real Mosquitto: a role
task cancelled while its connection is being set up really stops (Python 3.11's wait_for loses a
cancellation that arrives in the same loop turn as the broker's CONNACK; a role that went on would
hang `Gateway.stop()`)."""

from __future__ import annotations

import asyncio

import pytest

from ferrogate.gateway.config import MqttConfig
from ferrogate.gateway.mqtt import make_client
from ferrogate.gateway.services import Mosquitto


async def test_a_cancel_arriving_with_the_connack_stops_the_task(mosquitto: Mosquitto) -> None:
    client = make_client(MqttConfig(port=mosquitto.port), "cancel-with-connack")
    reached_body = asyncio.Event()
    forward = client._client.on_connect

    def on_connect(*args: object) -> None:
        forward(*args)  # aiomqtt resolves its CONNACK future...
        role.cancel()  # ...and in the same loop turn the role is cancelled

    client._client.on_connect = on_connect

    async def run_role() -> None:
        async with client:
            reached_body.set()
            await asyncio.Event().wait()  # a role's endless loop

    role = asyncio.create_task(run_role())
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(role, 15)
    assert role.cancelled() and not reached_body.is_set()

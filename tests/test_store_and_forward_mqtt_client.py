"""The MQTT client every role uses (gateway.mqtt.make_client), against the real Mosquitto: a role
task cancelled while its connection is being set up really stops (Python 3.11's wait_for loses a
cancellation that arrives in the same loop turn as the broker's CONNACK; a role that went on would
hang `Gateway.stop()`)."""

from __future__ import annotations

import asyncio
import gc

import aiomqtt
import pytest

from ferrogate.gateway.config import MqttConfig
from ferrogate.gateway.mqtt import connection_lost, make_client
from ferrogate.gateway.services import Mosquitto
from tests.waiting import eventually


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


class HeldConnack:
    """A TCP relay to the real broker that holds the broker's answers until `release` is set (a
    slow broker or network), and notes when the client closes its side."""

    def __init__(self, broker_port: int) -> None:
        self.broker_port = broker_port
        self.release = asyncio.Event()
        self.client_closed = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._pumps: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return self._server.sockets[0].getsockname()[1]

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        broker_reader, broker_writer = await asyncio.open_connection("127.0.0.1", self.broker_port)
        self._writers += [client_writer, broker_writer]
        for pump in (
            self._pump(client_reader, broker_writer, self.client_closed),
            self._held(broker_reader, client_writer),
        ):
            task = asyncio.create_task(pump)
            self._pumps.add(task)

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, closed: asyncio.Event) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
        except ConnectionError:
            pass  # a reset is a close too
        finally:
            closed.set()
            writer.close()

    async def _held(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self.release.wait()
        await self._pump(reader, writer, asyncio.Event())

    async def close(self) -> None:
        """Both sides dropped, as a broker that goes away."""
        for writer in self._writers:
            writer.close()
        for task in self._pumps:
            task.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


def never_retrieved(caplog: pytest.LogCaptureFixture) -> list[str]:
    gc.collect()  # a client left behind is garbage in a reference cycle: collect it now
    return [r.getMessage() for r in caplog.records if "never retrieved" in r.getMessage()]


async def give_up_connecting(relay: HeldConnack, how: str) -> None:
    """Connect through the relay and give up before the CONNACK; then let the CONNACK through."""
    client = make_client(MqttConfig(port=await relay.start()), f"given-up-{how}")
    if how == "timed_out":
        client.timeout = 0.5
    connecting = asyncio.create_task(client.__aenter__())
    await eventually(lambda: asyncio.sleep(0, client._client.socket() is not None), "the TCP connection")
    if how == "cancelled":
        connecting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await connecting
    else:
        with pytest.raises(aiomqtt.MqttError, match="timed out"):
            await connecting
    relay.release.set()  # the CONNACK arrives after all


@pytest.mark.parametrize("how", ["cancelled", "timed_out"])
async def test_a_connect_given_up_before_its_connack_leaves_no_session_behind(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    """aiomqtt lets paho's half-made connection go on when the CONNACK wait ends early; the CONNACK
    arriving later made a session no one read, and the broker ending it logged 'Future exception
    was never retrieved' (the lines at the end of the test suite). The client closes it instead."""
    relay = HeldConnack(mosquitto.port)
    await give_up_connecting(relay, how)
    await eventually(lambda: asyncio.sleep(0, relay.client_closed.is_set()), "the client to close the connection")
    await relay.close()
    assert never_retrieved(caplog) == []


async def drop_while_idle(relay: HeldConnack) -> asyncio.Future[None]:
    """A publish-only role connected through the relay, waiting on its own (empty) outbox while the
    broker goes away, then stopped; returns the client's future of the drop."""
    relay.release.set()
    client = make_client(MqttConfig(port=await relay.start()), "dropped-while-idle")
    entered = asyncio.Event()

    async def publish_only_role() -> None:
        async with client:
            entered.set()
            await asyncio.Event().wait()

    role = asyncio.create_task(publish_only_role())
    await asyncio.wait_for(entered.wait(), 15)
    await relay.close()
    await eventually(lambda: asyncio.sleep(0, not client._client.is_connected()), "the client to see the drop")
    role.cancel()
    await asyncio.gather(role, return_exceptions=True)
    return connection_lost(client)


async def test_a_connection_dropped_while_the_role_waited_elsewhere_leaves_nothing_unretrieved(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    """The energy books' outbox client waits on its queue, not on the connection: the broker going
    away, then the role stopping, must not leave the drop's exception behind."""
    dropped = await drop_while_idle(HeldConnack(mosquitto.port))
    # asyncio logs "never retrieved" when the future is collected, which may be only at exit: its
    # flag says now whether it would
    assert dropped.done() and not dropped._log_traceback  # type: ignore[attr-defined]
    assert isinstance(dropped.exception(), aiomqtt.MqttError)
    assert never_retrieved(caplog) == []

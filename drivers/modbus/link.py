"""The TCP side of Modbus: one link per host:port, shared by every unit id behind it.

A serial-to-TCP gateway (and the pymodbus server) answers one request at a time per connection,
so a link holds `max_concurrent_requests` connections (default 1) and lends each to one request
at a time; devices behind the same gateway queue for it instead of pipelining into timeouts.
The pymodbus client's own background reconnect is switched off: the collector decides when to
reconnect (backoff with jitter), so a dead host costs one failed connect per backoff step.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pymodbus.client import AsyncModbusTcpClient

from ferrogate.drivers.modbus.config import ModbusDevice
from ferrogate.drivers.modbus.pdu import use_raw_registers


class LinkConnection:
    """One TCP connection of a link and the time its last request finished (for pacing)."""

    def __init__(self, client: AsyncModbusTcpClient) -> None:
        self.client = client
        self.last_done = 0.0  # time.monotonic() when the last answer (or timeout) came

    async def ensure_connected(self, timeout_s: float) -> None:
        if self.client.connected:
            return
        try:
            async with asyncio.timeout(timeout_s):
                ok = await self.client.connect()
        except TimeoutError:
            ok = False
        if not ok:
            params = self.client.comm_params
            raise ConnectionError(f"cannot connect to {params.host}:{params.port}")

    async def pace(self, min_interval_s: float) -> None:
        """Keep the device's quiet time between two requests on this connection."""
        if min_interval_s > 0:
            wait = self.last_done + min_interval_s - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)


class ModbusLink:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.max_concurrent = 16
        self.timeout_s = 0.0
        self.users = 0
        self._connections: list[LinkConnection] = []
        self._idle: asyncio.Queue[LinkConnection] | None = None

    def join(self, device: ModbusDevice) -> None:
        """A device starts using this link: the smallest concurrency limit and longest timeout win."""
        self.users += 1
        self.max_concurrent = min(self.max_concurrent, device.max_concurrent_requests)
        self.timeout_s = max(self.timeout_s, device.timeout_s)

    def _pool(self) -> asyncio.Queue[LinkConnection]:
        if self._idle is None:
            self._idle = asyncio.Queue()
            for i in range(self.max_concurrent):
                client = AsyncModbusTcpClient(
                    self.host,
                    port=self.port,
                    # our per-request timeout (asyncio.timeout) fires first; this one only bounds connect
                    timeout=self.timeout_s + 1.0,
                    retries=0,  # the driver retries, per device
                    reconnect_delay=0,  # no background reconnect task: the collector owns reconnects
                    name=f"modbus:{self.host}:{self.port}#{i}",
                )
                use_raw_registers(client)  # register bytes as they came, decoded per point in one call
                conn = LinkConnection(client)
                self._connections.append(conn)
                self._idle.put_nowait(conn)
        return self._idle

    @asynccontextmanager
    async def borrow(self) -> AsyncIterator[LinkConnection]:
        """One connection for one request; waits while all of them are busy."""
        pool = self._pool()
        conn = await pool.get()
        try:
            yield conn
        finally:
            pool.put_nowait(conn)

    @property
    def connected(self) -> bool:
        return any(c.client.connected for c in self._connections)

    def leave(self) -> None:
        self.users -= 1
        if self.users <= 0:
            self.close()

    def close(self) -> None:
        for conn in self._connections:
            conn.client.close()


class ModbusLinks:
    """host:port -> link, so units behind one gateway share its connections and limit."""

    def __init__(self) -> None:
        self._links: dict[tuple[str, int], ModbusLink] = {}

    def join(self, device: ModbusDevice) -> ModbusLink:
        key = (device.host, device.port)
        link = self._links.get(key)
        if link is None:
            link = self._links[key] = ModbusLink(device.host, device.port)
        link.join(device)
        return link

"""The platform side over TCP: an asyncio server the plant's data loggers connect to, as they
connect to the environmental bureau's platform.

Many loggers at once, one `Receiver` per connection. Hostile or broken input never stops it:
framing, CRC, segment, MN and password errors are counted by reason (`ServerStats.errors`), logged
at most once per reason per `log_interval_s` (with how many were not logged), and get no reply, so
the logger resends. Bounded: at most `max_connections` connections (more are closed at once), at
most one frame's bytes waiting per connection, split messages bounded per connection, a connection
that sends nothing for `idle_timeout_s` is closed, and one that does not read its replies is cut.

Acknowledgements follow delivery: `on_message` runs first (the collector's sink commits the
readings to its disk spool before returning), then the 9014 replies are written; if `on_message`
raises, the connection is closed without replies and the logger sends again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ferrogate.drivers.hj212.protocol.errors import ErrorCode
from ferrogate.drivers.hj212.protocol.message import Message
from ferrogate.drivers.hj212.receiver import LoggerAccount, Received, Receiver, ReceiverLimits

log = logging.getLogger(__name__)

MessageSink = Callable[[LoggerAccount, Message], None]
StatusSink = Callable[[str, bool], None]


@dataclass(slots=True)
class ServerLimits:
    max_connections: int = 1000
    idle_timeout_s: float = 600.0  # longer than the longest upload interval of the loggers
    max_segment: int = 1024
    max_pending_splits: int = 16  # per connection
    split_timeout_s: float = 60.0
    max_unread_replies: int = 64 * 1024  # bytes of replies a logger leaves unread before it is cut off
    log_interval_s: float = 10.0


@dataclass(slots=True)
class ServerStats:
    connections_total: int = 0
    connections_open: int = 0
    connections_refused: int = 0  # over max_connections
    idle_closed: int = 0
    frames: int = 0  # frames with a good CRC
    messages: int = 0  # uploads delivered (a split message once)
    replies: int = 0  # 9014 written
    bytes_in: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # ErrorCode value -> count

    def count(self, code: ErrorCode) -> None:
        self.errors[code.value] = self.errors.get(code.value, 0) + 1


def render_prometheus(listeners: dict[str, ServerStats]) -> str:
    """The listeners' counters in Prometheus text format, labelled by listen address."""
    if not listeners:
        return ""
    out: list[str] = []
    counters = [
        ("connections", "connections_total", "logger connections accepted or refused"),
        ("connections_refused", "connections_refused", "connections closed at once (over max_connections)"),
        ("idle_closed", "idle_closed", "connections closed for silence"),
        ("frames", "frames", "frames with a good CRC"),
        ("messages", "messages", "uploads delivered (a split message once)"),
        ("replies", "replies", "9014 replies written"),
        ("bytes_received", "bytes_in", "bytes received"),
    ]
    for name, attr, help_text in counters:
        metric = f"ferrogate_hj212_{name}_total"
        out += [f"# HELP {metric} {help_text}", f"# TYPE {metric} counter"]
        out += [f'{metric}{{listener="{where}"}} {getattr(stats, attr)}' for where, stats in listeners.items()]
    out += [
        "# HELP ferrogate_hj212_connections_open logger connections open",
        "# TYPE ferrogate_hj212_connections_open gauge",
    ]
    out += [f'ferrogate_hj212_connections_open{{listener="{w}"}} {s.connections_open}' for w, s in listeners.items()]
    metric = "ferrogate_hj212_errors_total"
    out += [f"# HELP {metric} input refused or dropped, by reason", f"# TYPE {metric} counter"]
    for where, stats in listeners.items():
        out += [f'{metric}{{listener="{where}",reason="{r}"}} {n}' for r, n in sorted(stats.errors.items())]
    return "\n".join(out) + "\n"


class _RateLimitedLog:
    """One warning per reason per interval, saying how many of that reason went unlogged."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._next: dict[ErrorCode, float] = {}
        self._skipped: dict[ErrorCode, int] = {}

    def warning(self, code: ErrorCode, text: str, *args: object) -> None:
        now = time.monotonic()
        if now < self._next.get(code, 0.0):
            self._skipped[code] = self._skipped.get(code, 0) + 1
            return
        self._next[code] = now + self.interval_s
        skipped = self._skipped.pop(code, 0)
        suffix = f" ({skipped} more {code.value} not logged)" if skipped else ""
        log.warning("HJ 212: " + text + suffix, *args)


class Hj212Server:
    def __init__(
        self,
        accounts: Mapping[str, LoggerAccount],
        on_message: MessageSink,
        limits: ServerLimits | None = None,
        on_status: StatusSink | None = None,
    ) -> None:
        self.accounts = accounts
        self.on_message = on_message
        self.on_status = on_status
        self.limits = limits or ServerLimits()
        self.stats = ServerStats()
        self.receiver_limits = ReceiverLimits(
            self.limits.max_segment, self.limits.max_pending_splits, self.limits.split_timeout_s
        )
        self._log = _RateLimitedLog(self.limits.log_interval_s)
        self._connections: set[_LoggerConnection] = set()
        self._device_connections: dict[str, int] = {}  # device -> connections that delivered its data
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return self._server.sockets[0].getsockname()[1]

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _LoggerConnection(self), host, port, reuse_address=True)
        self._sweeper = asyncio.create_task(self._sweep(), name=f"hj212-sweep:{port}")
        log.info("HJ 212 server listening on %s:%d for %d logger(s)", host, self.port, len(self.accounts))

    async def serve_forever(self) -> None:
        assert self._server is not None, "not started"
        await self._server.serve_forever()

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            conn.close()
        if self._server is not None:
            await self._server.wait_closed()

    # -- called by the connections ---------------------------------------------------------------

    def _opened(self, conn: _LoggerConnection) -> bool:
        self.stats.connections_total += 1
        if len(self._connections) >= self.limits.max_connections:
            self.stats.connections_refused += 1
            self.stats.count(ErrorCode.TOO_MANY_CONNECTIONS)
            self._log.warning(
                ErrorCode.TOO_MANY_CONNECTIONS, "connection from %s refused: %d open", conn.peer, len(self._connections)
            )
            return False
        self._connections.add(conn)
        self.stats.connections_open = len(self._connections)
        return True

    def _closed(self, conn: _LoggerConnection) -> None:
        if conn not in self._connections:
            return
        self._connections.discard(conn)
        self.stats.connections_open = len(self._connections)
        for device in conn.devices:
            left = self._device_connections[device] = self._device_connections[device] - 1
            if left == 0 and self.on_status is not None:
                self.on_status(device, False)

    def _handle(self, conn: _LoggerConnection, received: Received) -> bool:
        """Deliver, count and log what a connection received; False: close it without replying."""
        stats = self.stats
        stats.frames += received.frames
        for exc, mn in received.errors:
            stats.count(exc.code)
            self._log.warning(exc.code, "%s (from %s, MN %s)", exc, conn.peer, mn or "?")
        for account, message in received.messages:
            if account.device not in conn.devices:
                conn.devices.add(account.device)
                count = self._device_connections.get(account.device, 0) + 1
                self._device_connections[account.device] = count
                if count == 1 and self.on_status is not None:
                    self.on_status(account.device, True)
            try:
                self.on_message(account, message)
            except Exception:  # the data is not safe: no reply, the logger sends again
                log.exception("HJ 212: delivering MN %s CN %s failed; closing %s", message.mn, message.cn, conn.peer)
                return False
            stats.messages += 1
        return True

    async def _sweep(self) -> None:
        """Close idle connections and release split messages that waited too long."""
        period = max(0.05, min(self.limits.idle_timeout_s, self.limits.split_timeout_s) / 4)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for conn in list(self._connections):
                if now - conn.last_activity >= self.limits.idle_timeout_s:
                    self.stats.idle_closed += 1
                    self.stats.count(ErrorCode.IDLE)
                    self._log.warning(
                        ErrorCode.IDLE, "closing %s: silent for %.0f s", conn.peer, now - conn.last_activity
                    )
                    conn.close()
                elif conn.receiver.joiner.pending:
                    self._handle(conn, conn.receiver.expire())


class _LoggerConnection(asyncio.Protocol):
    def __init__(self, server: Hj212Server) -> None:
        self.server = server
        self.receiver = Receiver(server.accounts, server.receiver_limits)
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.devices: set[str] = set()
        self.last_activity = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        if not self.server._opened(self):
            transport.abort()

    def data_received(self, data: bytes) -> None:
        server = self.server
        self.last_activity = time.monotonic()
        server.stats.bytes_in += len(data)
        received = self.receiver.feed(data)
        if not server._handle(self, received):
            self.close()
            return
        if received.replies and self.transport is not None:
            if self.transport.get_write_buffer_size() > server.limits.max_unread_replies:
                server.stats.count(ErrorCode.SLOW_READER)
                server._log.warning(ErrorCode.SLOW_READER, "closing %s: it does not read its replies", self.peer)
                self.close()
                return
            self.transport.write(b"".join(received.replies))
            server.stats.replies += len(received.replies)

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._closed(self)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()
        self.server._closed(self)

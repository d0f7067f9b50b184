"""Free loopback ports for servers the tests and the demo start, and the one failure that choosing a
port beforehand invites: another process took it before the server bound it (EADDRINUSE).

A leaf (no ferrogate imports): the services (Mosquitto, influxd) and the simulators both use it.
"""

from __future__ import annotations

import errno
import socket

LOOPBACK = "127.0.0.1"
# attempts with a new port before giving up, where the caller chose the port (`free_port`)
PORT_ATTEMPTS = 5


def free_port() -> int:
    """A TCP port that was free a moment ago (the caller retries if it was taken meanwhile)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def address_in_use(exc: BaseException) -> bool:
    """Whether a failure to listen is a port in use (EADDRINUSE), anywhere in its chain of causes."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno == errno.EADDRINUSE:
            return True
        if "address already in use" in str(seen).lower():  # a child's log, or a library's re-raised text
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def bind_error(host: str, port: int) -> OSError | None:
    """Why `host:port` cannot be listened on now, or None: for a library that reports a failed
    listen without its OSError (pymodbus), so the caller can tell EADDRINUSE from the rest."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.create_server((host, port), family=family):
            return None
    except OSError as exc:
        return exc

"""uvicorn inside the gateway's event loop: only a process that serves the API imports it (a
collect process never does; about 2 MiB of its memory, issue 15)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import uvicorn


class EmbeddedServer(uvicorn.Server):
    """uvicorn inside our event loop: the CLI, not uvicorn, owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def listening_socket(host: str) -> socket.socket:
    """A TCP socket listening on `host` at a port the kernel picks (port 0)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, 0), family=family)

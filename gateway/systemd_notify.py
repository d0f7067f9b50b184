"""systemd's readiness protocol (sd_notify) without a dependency: a `Type=notify` unit's
`systemctl start` returns only once the service says READY=1, so the next command in a script
(or the next unit) finds it listening. Outside systemd ($NOTIFY_SOCKET unset) it does nothing."""

from __future__ import annotations

import os
import socket


def notify(state: str) -> bool:
    """Send e.g. "READY=1" or "STATUS=..." to the service manager; False when not under one."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace socket
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(state.encode())
    return True

"""sd_notify over a real datagram socket, as systemd's manager listens for it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from ferrogate.gateway.systemd_notify import notify


def test_notify_sends_the_state_to_the_managers_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert notify("READY=1") is True
        assert manager.recv(64) == b"READY=1"


def test_notify_outside_systemd_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify("READY=1") is False

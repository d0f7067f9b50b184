"""`ferrogate api-key create`: prints the key once, stores only its hash, and keeps the key file's
permissions: a new file is the owner's alone, an installed one (root:ferrogate 0640, made by
deploy/install.sh so the service user can read it) stays readable by the service."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ferrogate.api.keys import KeyStore, Role
from ferrogate.cli import main


def create(file: Path, name: str, role: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["api-key", "create", "--name", name, "--role", role, "--file", str(file)]) == 0
    return capsys.readouterr().out.strip()


def test_new_key_file_is_private_and_holds_only_the_hash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "keys"
    key = create(file, "control-room", "viewer", capsys)
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert key not in file.read_text()
    found = KeyStore.load(file).check(key)
    assert found is not None and found.name == "control-room" and found.role == Role.viewer.name


def test_appending_keeps_an_installed_files_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "keys"
    file.touch(mode=0o640)
    file.chmod(0o640)
    first = create(file, "control-room", "viewer", capsys)
    second = create(file, "mes", "operator", capsys)
    assert stat.S_IMODE(file.stat().st_mode) == 0o640
    store = KeyStore.load(file)
    assert len(store) == 2 and store.check(first) is not None and store.check(second) is not None


def test_a_second_key_with_the_same_name_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "keys"
    create(file, "control-room", "viewer", capsys)
    assert main(["api-key", "create", "--name", "control-room", "--role", "admin", "--file", str(file)]) == 1
    assert "already has a key named 'control-room'" in capsys.readouterr().err
    assert len(KeyStore.load(file)) == 1

"""API keys with roles. Keys are random tokens `fgk_<id>_<secret>`; only a SHA-256 of the secret is
stored (a fast hash is right for high-entropy tokens; passwords would need a slow one).

Sources, merged: a JSON-lines file (`{"id", "name", "role", "sha256"}` per line, and at a group
center optionally `"sites": ["plant_a", ...]`: the plants the key may read; without it, every plant)
and the environment variable FERROGATE_API_KEYS (the same JSON lines, for containers)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import asdict, dataclass, replace
from enum import IntEnum
from pathlib import Path

ENV_VAR = "FERROGATE_API_KEYS"
PREFIX = "fgk"


class Role(IntEnum):
    """Ordered: a role may do everything the roles below it may."""

    viewer = 1  # read
    operator = 2  # acknowledge alarms
    admin = 3  # reload configuration, trigger recomputation


@dataclass(frozen=True)
class StoredKey:
    id: str
    name: str
    role: str
    sha256: str
    # at a group center: the plant sites this key may read (None: every plant of the group)
    sites: tuple[str, ...] | None = None

    def may_read(self, site: str) -> bool:
        return self.sites is None or site in self.sites


class KeyFileError(ValueError):
    pass


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key(
    name: str, role: Role, key: str | None = None, sites: tuple[str, ...] | None = None
) -> tuple[str, StoredKey]:
    """A fresh key (or the given one, e.g. from FERROGATE_DEMO_API_KEY) and what to store for it."""
    if key is None:
        key = f"{PREFIX}_{secrets.token_hex(4)}_{secrets.token_urlsafe(24)}"
    key_id = key.split("_")[1] if key.startswith(PREFIX + "_") and key.count("_") >= 2 else _digest(key)[:8]
    return key, StoredKey(key_id, name, role.name, _digest(key), sites)


def parse_lines(text: str, source: str) -> list[StoredKey]:
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            doc = json.loads(line)
            key = StoredKey(str(doc["id"]), str(doc["name"]), str(doc["role"]), str(doc["sha256"]))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise KeyFileError(f"{source}:{number}: not a key entry ({exc})") from exc
        sites = doc.get("sites")
        if sites is not None:
            if not isinstance(sites, list) or not sites or not all(isinstance(s, str) and s for s in sites):
                raise KeyFileError(f"{source}:{number}: 'sites' must be a non-empty list of plant site ids")
            key = replace(key, sites=tuple(sites))
        if key.role not in Role.__members__:
            raise KeyFileError(f"{source}:{number}: role {key.role!r} is not one of {list(Role.__members__)}")
        keys.append(key)
    return keys


class KeyStore:
    def __init__(self, keys: list[StoredKey]) -> None:
        self._by_digest = {k.sha256: k for k in keys}

    @classmethod
    def load(cls, file: Path | None = None, extra: list[StoredKey] | None = None) -> KeyStore:
        keys = list(extra or [])
        if file is not None and file.exists():
            keys += parse_lines(file.read_text(encoding="utf-8"), str(file))
        if os.environ.get(ENV_VAR):
            keys += parse_lines(os.environ[ENV_VAR], ENV_VAR)
        return cls(keys)

    def __len__(self) -> int:
        return len(self._by_digest)

    def check(self, presented: str) -> StoredKey | None:
        digest = _digest(presented)
        for stored_digest, key in self._by_digest.items():
            if hmac.compare_digest(stored_digest, digest):
                return key
        return None


def append_key(file: Path, stored: StoredKey) -> None:
    """A new key file is made readable by its owner only; an existing one keeps its mode and group
    (an installed gateway's file is root:ferrogate 0640 so the service user can read it)."""
    file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with open(fd, "a", encoding="utf-8") as out:
        entry = asdict(stored)
        if stored.sites is None:  # a key for every plant: the line as before sites existed
            del entry["sites"]
        out.write(json.dumps(entry) + "\n")

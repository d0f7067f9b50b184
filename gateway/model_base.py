"""The bottom of the plant file's model: what every layer's configuration builds on.

`Strict` (unknown keys are errors, values frozen, secrets never inline), ids, credentials taken
from the environment or a file, the site, and the disk outbox. It imports nothing of ferrogate but
the log mask of secrets (a leaf), so drivers, simulators, accounting, the API and the plant model
itself can all build on it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from ferrogate.gateway.redact import remember

ID_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
Identifier = Annotated[str, Field(pattern=ID_PATTERN)]
# Keys that would hold a secret if written into the YAML; rejected with a pointer to the _env/_file form.
SECRET_KEYS = frozenset({"password", "token", "secret", "api_key", "key_password"})


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_inline_secrets(cls, data: object) -> object:
        if isinstance(data, dict):
            for key in data:
                if key in SECRET_KEYS:
                    raise ValueError(
                        f"'{key}' must not be written in the plant file; use "
                        f"'{key}_env: VARIABLE' or '{key}_file: PATH' instead"
                    )
        return data


class Credentials(Strict):
    """Username plus a password taken from the environment or a file, never from the YAML."""

    username: str | None = None
    password_env: str | None = None
    password_file: Path | None = None

    @model_validator(mode="after")
    def _one_password_source(self) -> Credentials:
        if self.password_env is not None and self.password_file is not None:
            raise ValueError("give at most one of 'password_env' or 'password_file'")
        return self

    def resolve_password(self) -> str | None:
        """The secret, also remembered for masking in log lines (gateway/redact.py)."""
        if self.password_env is not None:
            value = os.environ.get(self.password_env)
            if value is None:
                raise LookupError(f"environment variable {self.password_env} is not set")
        elif self.password_file is not None:
            value = self.password_file.read_text(encoding="utf-8").splitlines()[0].strip()
        else:
            return None
        remember(value)
        return value


def known_zone(value: str) -> str:
    """An IANA time zone name (e.g. Asia/Shanghai), or ValueError."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


TimeZone = Annotated[str, AfterValidator(known_zone)]


class Site(Strict):
    id: Identifier
    name: str
    timezone: str = "Asia/Shanghai"
    province: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return known_zone(value)


class SpoolConfig(Strict):
    """A disk outbox (SQLite, WAL) for what cannot be delivered yet; without `path` it lives in memory
    only and is lost when the process dies."""

    path: Path | None = None
    max_mib: float = Field(512.0, gt=0, le=1_048_576, description="payload bytes held, MiB (2^20 bytes)")
    when_full: Literal["drop_oldest", "drop_newest"] = "drop_oldest"
    # normal: survives a killed process (WAL); full: also a power cut, at one fsync per batch
    sync: Literal["normal", "full"] = "normal"
    # while the spool's disk refuses writes (full), the collector holds its batches in memory, up to
    # this; beyond, `when_full` applies (docs/store-and-forward.md)
    memory_mib: float = Field(
        64.0, gt=0, le=65_536, description="payload bytes held in memory while the disk refuses writes, MiB"
    )

"""The plant file's `api:` section."""

from __future__ import annotations

import ssl
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class ApiTlsConfig(BaseModel):
    """HTTPS served by the gateway itself (uvicorn): the server certificate (PEM, with any
    intermediate certificates after it) and its private key (PEM, unencrypted, readable by the
    service user only)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cert_file: Path
    key_file: Path

    def check(self) -> None:
        """Load the pair once before serving, so a wrong file stops the API with its name and why
        (uvicorn would only say 'SSLError' from deep inside its startup)."""
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"api.tls: cannot load {self.cert_file} with {self.key_file}: {exc}") from exc


class ApiConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    keys_file: Path | None = Field(None, description="JSON lines of hashed API keys (ferrogate api-key create)")
    stale_after_scans: float = Field(3.0, gt=0, description="a point is stale after this many scan intervals")
    max_range_days: int = Field(400, ge=1, le=3660, description="longest time range one request may ask for")
    page_size_max: int = Field(1000, ge=1, le=100_000)
    live_queue: int = Field(1000, ge=10, le=1_000_000, description="batches buffered per live-stream client")
    # a client that presents this many unknown keys within the window gets 429 (Retry-After) until
    # the oldest of them leaves the window
    auth_failures_max: int = Field(10, ge=1, le=10_000, description="unknown keys per client address per window")
    auth_failure_window_s: float = Field(60.0, gt=0, le=86_400, description="seconds")
    tls: ApiTlsConfig | None = Field(None, description="serve HTTPS with this certificate and key")

"""The plant file's `uplink.energy_platforms:` entries: where a provincial energy online-monitoring
platform listens, how the gateway proves who it is, and the mapping file that names the items.

    uplink:
      energy_platforms:
        - id: province
          url: https://ems.example.gov.cn/api/energy-data
          mapping_file: /etc/ferrogate/energy-platform-mapping.yaml
          client_cert_file: /etc/ferrogate/tls/plant.crt      # mutual TLS, or:
          client_key_file: /etc/ferrogate/tls/plant.key
          token_env: ENERGY_PLATFORM_TOKEN                     # bearer token (or token_file)
          ca_file: /etc/ferrogate/tls/platform-ca.crt          # default: the system's CAs
          send_from: 2026-12-01
          spool: {path: /var/lib/ferrogate/uplink-energy.sqlite}

Only the shape is checked here (imports nothing above model_base); the mapping file is read and
checked against the accounting model by `mapping.load_mapping` when the plant file is loaded.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from ferrogate.gateway.model_base import Credentials, Identifier, SpoolConfig, Strict


class EnergyPlatformConfig(Strict):
    id: Identifier
    url: str = Field(description="the platform's HTTPS endpoint that takes one period's message per POST")
    mapping_file: Path = Field(description="item codes, units and periods of this platform (YAML)")
    client_cert_file: Path | None = Field(None, description="mutual TLS: the plant's certificate (PEM)")
    client_key_file: Path | None = Field(None, description="mutual TLS: its private key (PEM)")
    token_env: str | None = Field(None, description="bearer token from this environment variable")
    token_file: Path | None = Field(None, description="bearer token from the first line of this file")
    ca_file: Path | None = Field(None, description="CA bundle that signed the platform's certificate")
    send_from: date = Field(description="first local day reported (periods before it are never sent)")
    close_after_s: float = Field(
        1800.0, ge=0, le=7 * 86_400, description="a period is built this long after its end (the books settle)"
    )
    timeout_s: float = Field(30.0, gt=0, le=300, description="one POST's timeout")
    retry_max_s: float = Field(300.0, gt=0, le=3600, description="cap of the backoff while the platform is away")
    poll_s: float = Field(60.0, gt=0, le=3600, description="how often closed periods are looked for")
    spool: SpoolConfig = SpoolConfig()

    @field_validator("url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not re.match(r"^https://[^/\s]+", value):
            raise ValueError("must be an https:// URL (the data leaves the plant)")
        return value

    @model_validator(mode="after")
    def _auth(self) -> EnergyPlatformConfig:
        if (self.client_cert_file is None) != (self.client_key_file is None):
            raise ValueError("mutual TLS needs both 'client_cert_file' and 'client_key_file'")
        if self.token_env is not None and self.token_file is not None:
            raise ValueError("give at most one of 'token_env' or 'token_file'")
        if self.client_cert_file is None and self.token_env is None and self.token_file is None:
            raise ValueError("no authentication: give client_cert_file/client_key_file, token_env or token_file")
        return self

    def resolve_token(self) -> str | None:
        """The bearer token from its environment variable or file (same rules as passwords)."""
        return Credentials(password_env=self.token_env, password_file=self.token_file).resolve_password()

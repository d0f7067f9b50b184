"""What the group center's API reads: the center file, its keys and its database (it owns none)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ferrogate.api.context import ReadinessCheck
from ferrogate.api.keys import KeyStore
from ferrogate.api.ratelimit import AuthFailureLimiter, limiter_for
from ferrogate.gateway.center_config import CenterFile
from ferrogate.gateway.influx import InfluxV1Client


@dataclass
class GroupContext:
    center: CenterFile
    keys: KeyStore
    influx: InfluxV1Client | None = None  # the center's database: every plant's readings and books
    readiness: dict[str, ReadinessCheck] = field(default_factory=dict)
    auth_limiter: AuthFailureLimiter | None = None

    def __post_init__(self) -> None:
        if self.auth_limiter is None:
            self.auth_limiter = limiter_for(self.center.api)

    @property
    def limiter(self) -> AuthFailureLimiter:
        assert self.auth_limiter is not None  # made in __post_init__
        return self.auth_limiter

"""What the API reads from the running gateway (it owns none of it)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferrogate.api.keys import KeyStore, StoredKey
from ferrogate.api.ratelimit import AuthFailureLimiter, limiter_for
from ferrogate.gateway.alarms import AlarmBook, LimitRule
from ferrogate.gateway.compliance_service import ComplianceService
from ferrogate.gateway.cost.model import CostModel
from ferrogate.gateway.energy.model import AccountingModel
from ferrogate.gateway.influx import InfluxV1Client
from ferrogate.gateway.live import LiveCache
from ferrogate.gateway.plant_file import PlantFile

# name -> async check returning None when healthy, else the reason
ReadinessCheck = Callable[[], Awaitable[str | None]]


@dataclass
class ApiContext:
    plant: PlantFile
    live: LiveCache
    keys: KeyStore
    readiness: dict[str, ReadinessCheck] = field(default_factory=dict)
    # Prometheus text exposition of the gateway's own metrics
    metrics_text: Callable[[], str] = lambda: ""
    alarms: AlarmBook = field(default_factory=AlarmBook)
    plant_file: Path | None = None  # for admin reload
    extra_keys: list[StoredKey] = field(default_factory=list)  # keys not from the key file (the demo's)
    limits_changed: Callable[[list[LimitRule]], None] = lambda limits: None
    influx: InfluxV1Client | None = None  # history (derived series) for the energy routes
    accounting: AccountingModel | None = None  # the plant's resolved accounting section
    recompute: Callable[[int, int], Awaitable[None]] | None = None  # when the energy role runs here
    compliance: ComplianceService | None = None  # grades, carbon market, CBAM, footprints, manual inputs
    cost: CostModel | None = None  # the plant's resolved cost section (tariffs, surcharges)
    demand_forecast: Callable[[], dict[str, Any] | None] | None = None  # the live demand window, where watched
    # failed key attempts per client; by default from the plant file's `api` section
    auth_limiter: AuthFailureLimiter | None = None

    def __post_init__(self) -> None:
        if self.auth_limiter is None:
            self.auth_limiter = limiter_for(self.plant.api)

    @property
    def limiter(self) -> AuthFailureLimiter:
        assert self.auth_limiter is not None  # made in __post_init__
        return self.auth_limiter

"""Response models of the API (they make the OpenAPI schema)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    error: str = Field(description="machine-readable reason, e.g. unknown_asset, unauthorized, bad_range")
    message: str
    model_config = {"extra": "allow"}


class ErrorOut(BaseModel):
    detail: ErrorBody


class MeterOut(BaseModel):
    role: str
    device: str
    point: str
    unit: str


class DeviceState(BaseModel):
    device: str
    online: bool = Field(description="a scan with at least one good reading arrived within the stale window")
    last_scan: str | None = Field(description="ISO 8601 UTC gateway time of the last scan received")


class AssetOut(BaseModel):
    id: str
    type: str
    name: str
    product: str | None
    rated_power_kw: float | None = Field(description="kW")
    meters: list[MeterOut]
    devices: list[DeviceState]


class LivePoint(BaseModel):
    role: str
    device: str
    point: str
    unit: str
    value: float | None = Field(description="engineering value in `unit`; null only when quality is bad")
    quality: str = Field(description="good | uncertain | bad")
    reason: str | None
    source_time: str | None = Field(description="ISO 8601 UTC time the device stamped the value")
    received_age_s: float | None = Field(description="seconds since the gateway received it")
    stale: bool = Field(description="no update for more than the configured number of scan intervals")


class LiveOut(BaseModel):
    asset: str
    timezone: str = Field(description="the plant's time zone; times in the response are UTC")
    points: list[LivePoint]


class ReadyOut(BaseModel):
    ready: bool
    checks: dict[str, str] = Field(description="dependency -> 'ok' or the reason it is not")
    devices: dict[str, int] = Field(description="device counts: online, offline, unknown")


class LiveEvent(BaseModel):
    """One SSE `data:` object per device scan (readings of the requested assets only)."""

    device: str
    seq: int
    gateway_time: str
    readings: list[dict[str, Any]]
    skipped: int = Field(description="batches dropped for this client so far because it read too slowly")


class AlarmOut(BaseModel):
    id: int
    kind: str = Field(description="device_offline, stale_data, limit_exceeded, counter_reset, ...")
    source: str
    severity: str
    message: str
    active: bool
    raised: str = Field(description="ISO 8601 UTC")
    updated: str
    cleared: str | None
    value: float | None
    unit: str | None
    acked_by: str | None
    acked: str | None


class AlarmPage(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[AlarmOut]


class ReloadOut(BaseModel):
    reloaded: list[str] = Field(description="what took effect now")
    restart_needed: list[str] = Field(description="sections that changed but take effect only after a restart")

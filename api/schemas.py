"""Response models of the API (they make the OpenAPI schema)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class MeterOut(BaseModel):
    role: str
    device: str
    point: str
    unit: str


class AssetOut(BaseModel):
    id: str
    type: str
    name: str
    product: str | None
    rated_power_kw: float | None = Field(description="kW")
    meters: list[MeterOut]


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
    stale: bool = Field(description="no update for more than 3 scan intervals")


class LiveOut(BaseModel):
    asset: str
    timezone: str = Field(description="the plant's time zone; times in the response are UTC")
    points: list[LivePoint]

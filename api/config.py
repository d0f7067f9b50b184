"""The plant file's `api:` section."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class ApiConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    keys_file: Path | None = Field(None, description="JSON lines of hashed API keys (ferrogate api-key create)")
    stale_after_scans: float = Field(3.0, gt=0, description="a point is stale after this many scan intervals")
    max_range_days: int = Field(400, ge=1, le=3660, description="longest time range one request may ask for")
    page_size_max: int = Field(1000, ge=1, le=100_000)
    live_queue: int = Field(1000, ge=10, le=1_000_000, description="batches buffered per live-stream client")

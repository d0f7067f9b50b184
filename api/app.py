"""The energy-center HTTP API (FastAPI), versioned under /api/v1."""

from __future__ import annotations

import time

from fastapi import FastAPI, HTTPException

from ferrogate import __version__
from ferrogate.api.schemas import AssetOut, LiveOut, LivePoint, MeterOut
from ferrogate.gateway.config import Asset, PlantConfig
from ferrogate.gateway.live import LiveCache
from ferrogate.gateway.timeutil import iso_utc


def create_app(plant: PlantConfig, live: LiveCache) -> FastAPI:
    app = FastAPI(
        title="ferrogate energy-center API",
        version=__version__,
        description="Live plant state, energy and carbon figures for the energy management center.",
    )
    assets = {a.id: a for a in plant.assets}
    scan_interval = {d.id: d.scan_interval_s for d in plant.devices}

    def find_asset(asset_id: str) -> Asset:
        asset = assets.get(asset_id)
        if asset is None:
            raise HTTPException(
                404, {"error": "unknown_asset", "message": f"no asset {asset_id!r}", "known": sorted(assets)}
            )
        return asset

    def asset_out(asset: Asset) -> AssetOut:
        meters = []
        for role, ref in asset.meters.items():
            dev, _, point = ref.partition(".")
            cfg = next(p for p in plant.device(dev).points if p.id == point)
            meters.append(MeterOut(role=role.value, device=dev, point=point, unit=cfg.unit))
        return AssetOut(
            id=asset.id,
            type=asset.type.value,
            name=asset.name,
            product=asset.product,
            rated_power_kw=asset.rated_power_kw,
            meters=meters,
        )

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process is up (no dependency checks)."""
        return {"status": "ok"}

    @app.get("/api/v1/assets", tags=["plant"])
    async def list_assets() -> list[AssetOut]:
        """The plant model: assets with their meters, roles and units."""
        return [asset_out(a) for a in plant.assets]

    @app.get("/api/v1/assets/{asset_id}", tags=["plant"], responses={404: {"description": "unknown asset"}})
    async def get_asset(asset_id: str) -> AssetOut:
        return asset_out(find_asset(asset_id))

    @app.get("/api/v1/assets/{asset_id}/live", tags=["live"], responses={404: {"description": "unknown asset"}})
    async def asset_live(asset_id: str) -> LiveOut:
        """Last reading of each of the asset's points, with quality and age; stale ones flagged."""
        asset = find_asset(asset_id)
        now_ns = time.time_ns()
        points = []
        for role, ref in asset.meters.items():
            dev, _, point = ref.partition(".")
            unit = next(p.unit for p in plant.device(dev).points if p.id == point)
            entry = live.get(dev, point)
            if entry is None:
                points.append(
                    LivePoint(
                        role=role.value,
                        device=dev,
                        point=point,
                        unit=unit,
                        value=None,
                        quality="bad",
                        reason="no_data",
                        source_time=None,
                        received_age_s=None,
                        stale=True,
                    )
                )
                continue
            reading, received_ns = entry
            age = (now_ns - received_ns) / 1e9
            points.append(
                LivePoint(
                    role=role.value,
                    device=dev,
                    point=point,
                    unit=reading.unit,
                    value=reading.value,
                    quality=reading.quality.value,
                    reason=reading.reason,
                    source_time=iso_utc(reading.source_time_ns),
                    received_age_s=round(age, 3),
                    stale=age > 3 * scan_interval[dev],
                )
            )
        return LiveOut(asset=asset.id, timezone=plant.site.timezone, points=points)

    return app

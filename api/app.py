"""The energy-center HTTP API (FastAPI), versioned under /api/v1.

Routes read the running gateway through `ApiContext`; they never own or stall it. Every error is a
4xx with {"detail": {"error": <code>, "message": ...}}; keys and roles guard /api/v1.
"""

# no `from __future__ import annotations`: FastAPI must evaluate route annotations that
# refer to closure variables (dependencies, page limits) when the routes are defined
import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.sse import EventSourceResponse
from fastapi_standalone_docs import StandaloneDocs
from starlette.exceptions import HTTPException as StarletteHTTPException

from ferrogate import __version__
from ferrogate.api import auth
from ferrogate.api.auth import error
from ferrogate.api.context import ApiContext
from ferrogate.api.routes_alarms import alarms_router
from ferrogate.api.routes_compliance import compliance_router
from ferrogate.api.routes_cost import cost_router
from ferrogate.api.routes_energy import energy_router
from ferrogate.api.routes_pollution import pollution_router
from ferrogate.api.routes_reports import reports_router
from ferrogate.api.schemas import AssetOut, DeviceState, ErrorOut, LiveEvent, LiveOut, LivePoint, MeterOut, ReadyOut
from ferrogate.gateway.config import Asset
from ferrogate.gateway.live import Subscription
from ferrogate.gateway.timeutil import iso_utc

NOT_FOUND = {404: {"model": ErrorOut, "description": "unknown asset"}}


class PlantView:
    """Lookups over the plant model and the live cache that several routes share."""

    def __init__(self, context: ApiContext) -> None:
        self.context = context
        plant = context.plant
        self.assets = {a.id: a for a in plant.assets}
        self.scan_interval = {d.id: d.scan_interval_s for d in plant.devices}
        self.units = {(d.id, p.id): p.unit for d in plant.devices for p in d.points}
        self.stale_after = plant.api.stale_after_scans

    def asset(self, asset_id: str) -> Asset:
        asset = self.assets.get(asset_id)
        if asset is None:
            raise error(404, "unknown_asset", f"no asset {asset_id!r}", known=sorted(self.assets))
        return asset

    def stale(self, device: str, received_ns: int, now_ns: int) -> bool:
        return (now_ns - received_ns) / 1e9 > self.stale_after * self.scan_interval[device]

    def device_state(self, device: str, now_ns: int) -> DeviceState:
        seen = self.context.live.devices.get(device)
        if seen is None:
            return DeviceState(device=device, online=False, last_scan=None)
        gateway_ns, good = seen
        return DeviceState(
            device=device, online=good and not self.stale(device, gateway_ns, now_ns), last_scan=iso_utc(gateway_ns)
        )

    def asset_out(self, asset: Asset) -> AssetOut:
        now_ns = time.time_ns()
        meters, devices = [], []
        for role, ref in asset.meters.items():
            dev, _, point = ref.partition(".")
            meters.append(MeterOut(role=role.value, device=dev, point=point, unit=self.units[(dev, point)]))
            if dev not in devices:
                devices.append(dev)
        return AssetOut(
            id=asset.id,
            type=asset.type.value,
            name=asset.name,
            product=asset.product,
            rated_power_kw=asset.rated_power_kw,
            meters=meters,
            devices=[self.device_state(d, now_ns) for d in devices],
        )


def plant_router(view: PlantView) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["plant"], responses=auth.AUTH_ERRORS, dependencies=[auth.viewer])

    @router.get("/assets")
    async def list_assets() -> list[AssetOut]:
        """The plant model: assets with their meters (role, device, point, unit) and device online state."""
        return [view.asset_out(a) for a in view.assets.values()]

    @router.get("/assets/{asset_id}", responses=NOT_FOUND)
    async def get_asset(asset_id: str) -> AssetOut:
        return view.asset_out(view.asset(asset_id))

    @router.get("/assets/{asset_id}/live", responses=NOT_FOUND, tags=["live"])
    async def asset_live(asset_id: str) -> LiveOut:
        """Last reading of each of the asset's points, with quality and age; stale ones flagged."""
        asset = view.asset(asset_id)
        now_ns = time.time_ns()
        points = []
        for role, ref in asset.meters.items():
            dev, _, point = ref.partition(".")
            entry = view.context.live.get(dev, point)
            if entry is None:
                points.append(
                    LivePoint(
                        role=role.value,
                        device=dev,
                        point=point,
                        unit=view.units[(dev, point)],
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
                    received_age_s=round((now_ns - received_ns) / 1e9, 3),
                    stale=view.stale(dev, received_ns, now_ns),
                )
            )
        return LiveOut(asset=asset.id, timezone=view.context.plant.site.timezone, points=points)

    def wanted_assets(
        asset: Annotated[list[str] | None, Query(description="only these assets (repeatable)")] = None,
    ) -> set[str] | None:
        # checked as a dependency: once the stream has started, a 404 can no longer be sent
        return {view.asset(a).id for a in asset} if asset else None

    async def live_subscription() -> AsyncIterator[Subscription]:
        # ended with the request (a dependency's teardown), not by the stream's generator: a client
        # that goes away while its socket is full leaves the generator suspended at a yield, and its
        # own `finally` would run only when the garbage collector finds it
        subscription = view.context.live.subscribe(view.context.plant.api.live_queue)
        try:
            yield subscription
        finally:
            view.context.live.unsubscribe(subscription)

    @router.get("/live", response_class=EventSourceResponse, tags=["live"], responses=NOT_FOUND)
    async def live_stream(
        request: Request,
        wanted: Annotated[set[str] | None, Depends(wanted_assets)],
        subscription: Annotated[Subscription, Depends(live_subscription, scope="request")],
    ) -> AsyncIterator[LiveEvent]:
        """Server-Sent Events: one event per device scan as it arrives. A client that reads too
        slowly loses the oldest events (counted in `skipped`); it never holds up the gateway."""
        while not await request.is_disconnected():
            try:
                batch = await asyncio.wait_for(subscription.queue.get(), timeout=5)
            except TimeoutError:
                continue
            readings = [
                {
                    "point": r.point,
                    "asset": batch.assets.get(r.point),
                    "v": r.value,
                    "u": r.unit,
                    "q": r.quality.value,
                    "t": iso_utc(r.source_time_ns),
                    "r": r.reason,
                }
                for r in batch.readings
                if wanted is None or batch.assets.get(r.point) in wanted
            ]
            if readings:
                yield LiveEvent(
                    device=batch.device,
                    seq=batch.seq,
                    gateway_time=iso_utc(batch.gateway_time_ns),
                    readings=readings,
                    skipped=subscription.skipped,
                )

    return router


def ops_router(view: PlantView) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is up (no dependency checks, no key needed)."""
        return {"status": "ok"}

    @router.get("/readyz", responses={503: {"model": ReadyOut, "description": "a dependency is not reachable"}})
    async def readyz() -> ReadyOut:
        """Broker and database reachable; device summary. 503 while a dependency is down."""
        checks: dict[str, str] = {}
        for name, check in view.context.readiness.items():
            try:
                reason = await asyncio.wait_for(check(), timeout=3)
            except TimeoutError:
                reason = "no answer within 3 s"
            checks[name] = reason or "ok"
        now_ns = time.time_ns()
        counts = {"online": 0, "offline": 0, "unknown": 0}
        for device in view.scan_interval:
            state = view.device_state(device, now_ns)
            counts["unknown" if state.last_scan is None else "online" if state.online else "offline"] += 1
        body = ReadyOut(ready=all(v == "ok" for v in checks.values()), checks=checks, devices=counts)
        if not body.ready:
            return JSONResponse(body.model_dump(), status_code=503)  # type: ignore[return-value]
        return body

    @router.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> str:
        """The gateway's own metrics in Prometheus text format."""
        return view.context.metrics_text() + view.context.limiter.render_prometheus()

    return router


def base_app(title: str, description: str, context: object) -> FastAPI:
    """A FastAPI app with the house conventions (offline docs, the error body of every 400); the
    plant's API and the group center's build on it. `context` must offer `keys` and `limiter`."""
    app = FastAPI(
        title=title,
        version=__version__,
        description=description,
        # no online-validator badge: it would load an image from the internet
        swagger_ui_parameters={"validatorUrl": None},
    )
    # /docs and /redoc load Swagger UI, ReDoc and their favicons from this server, not from a CDN:
    # plant networks have no internet (tests/test_offline.py). It patches FastAPI's two docs-page
    # functions process-wide, harmless while every app keeps the default docs, redoc and openapi URLs.
    StandaloneDocs(app)
    app.state.context = context

    @app.exception_handler(StarletteHTTPException)
    async def house_error_body(request: Request, exc: StarletteHTTPException) -> Response:
        # FastAPI answers a body it cannot parse with a bare string; every 400 of this API has the
        # {"error", "message"} body its schema documents
        if exc.status_code == 400 and isinstance(exc.detail, str):
            body = {"detail": {"error": "bad_request", "message": exc.detail}}
            return JSONResponse(body, status_code=400, headers=exc.headers)
        return await http_exception_handler(request, exc)

    return app


def create_app(context: ApiContext) -> FastAPI:
    app = base_app(
        "ferrogate energy-center API",
        "Live plant state, energy and carbon figures for the energy management center. "
        "Send an API key in X-API-Key (or Authorization: Bearer). Times are ISO 8601 UTC.",
        context,
    )
    view = PlantView(context)
    app.include_router(ops_router(view))
    app.include_router(plant_router(view))
    app.include_router(alarms_router(context))
    app.include_router(energy_router(context))
    app.include_router(pollution_router(context))
    app.include_router(compliance_router(context))
    app.include_router(reports_router(context))
    app.include_router(cost_router(context))
    return app

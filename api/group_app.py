"""The group energy center's HTTP API: the group routes (api/routes_group.py) and health, on the
same conventions as a plant's API (keys and roles, error bodies, offline docs)."""

# no `from __future__ import annotations`: FastAPI evaluates route annotations
import asyncio

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse

from ferrogate.api.app import base_app
from ferrogate.api.group_context import GroupContext
from ferrogate.api.routes_group import group_router


def group_ops_router(context: GroupContext) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is up (no dependency checks, no key needed)."""
        return {"status": "ok"}

    @router.get("/readyz", responses={503: {"description": "a dependency is not reachable"}})
    async def readyz() -> dict[str, object]:
        """The center's database reachable; 503 while it is not."""
        checks: dict[str, str] = {}
        for name, check in context.readiness.items():
            try:
                reason = await asyncio.wait_for(check(), timeout=3)
            except TimeoutError:
                reason = "no answer within 3 s"
            checks[name] = reason or "ok"
        body = {"ready": all(v == "ok" for v in checks.values()), "checks": checks}
        return body if body["ready"] else JSONResponse(body, status_code=503)  # type: ignore[return-value]

    return router


def create_group_app(context: GroupContext) -> FastAPI:
    app = base_app(
        "ferrogate group energy-center API",
        "Every plant of the group as a resource: energy, carbon, benchmark figures and limit status per "
        "plant, per product across plants and for the group, from the books and limit grades each plant's "
        "gateway derived. Send an "
        "API key in X-API-Key (or Authorization: Bearer); a key may be limited to some plants.",
        context,
    )
    app.include_router(group_ops_router(context))
    app.include_router(group_router(context))
    return app

"""Alarms (viewer lists, operator acknowledges) and admin actions (reload)."""

# no `from __future__ import annotations`: FastAPI must evaluate route annotations that
# refer to closure variables (dependencies, page limits) when the routes are defined
import time
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from ferrogate.api import auth
from ferrogate.api.auth import error
from ferrogate.api.context import ApiContext
from ferrogate.api.keys import KeyStore, StoredKey
from ferrogate.api.schemas import AlarmOut, AlarmPage, ErrorOut, ReloadOut
from ferrogate.gateway.alarms import Alarm
from ferrogate.gateway.config_loader import ConfigError, load_plant
from ferrogate.gateway.timeutil import iso_utc


def alarm_out(a: Alarm) -> AlarmOut:
    return AlarmOut(
        id=a.id,
        kind=a.kind.value,
        source=a.source,
        severity=a.severity.value,
        message=a.message,
        active=a.active,
        raised=iso_utc(a.raised_ns),
        updated=iso_utc(a.updated_ns),
        cleared=iso_utc(a.cleared_ns) if a.cleared_ns is not None else None,
        value=a.value,
        unit=a.unit,
        acked_by=a.acked_by,
        acked=iso_utc(a.acked_ns) if a.acked_ns is not None else None,
    )


def alarms_router(context: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["alarms"], responses=auth.AUTH_ERRORS)
    page_max = context.plant.api.page_size_max

    @router.get("/alarms", dependencies=[auth.viewer])
    async def list_alarms(
        state: Annotated[Literal["active", "all"], Query(description="active only, or active then recent")] = "all",
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=page_max)] = 100,
    ) -> AlarmPage:
        """Active alarms (newest first) followed by recently cleared ones; paginated."""
        alarms = [a for a in context.alarms.listing() if state == "all" or a.active]
        return AlarmPage(
            total=len(alarms), offset=offset, limit=limit, items=[alarm_out(a) for a in alarms[offset : offset + limit]]
        )

    @router.post(
        "/alarms/{alarm_id}/ack", responses={404: {"model": ErrorOut, "description": "no active alarm with this id"}}
    )
    async def acknowledge(alarm_id: Annotated[int, Path(ge=1)], who: StoredKey = auth.operator) -> AlarmOut:
        """Acknowledge an active alarm (operator). The condition stays until it clears by itself."""
        alarm = context.alarms.acknowledge(alarm_id, who.name, time.time_ns())
        if alarm is None:
            raise error(404, "unknown_alarm", f"no active alarm with id {alarm_id}")
        return alarm_out(alarm)

    @router.post(
        "/admin/reload",
        dependencies=[auth.admin],
        responses={
            409: {"model": ErrorOut, "description": "not started from a plant file, or the file is not valid"},
        },
    )
    async def reload() -> ReloadOut:
        """Re-read the plant file (admin): API keys and alarm limits take effect at once; changes to
        devices, broker or database are reported as needing a restart."""
        if context.plant_file is None:
            raise error(409, "no_plant_file", "this gateway was not started from a plant file")
        try:
            fresh = load_plant(context.plant_file)
        except ConfigError as exc:
            raise error(
                409,
                "invalid_plant_file",
                "the plant file has errors; nothing was changed",
                problems=[str(p) for p in exc.problems],
            ) from exc
        context.keys = KeyStore.load(fresh.api.keys_file, extra=context.extra_keys)
        context.limits_changed(list(fresh.alarms.limits))
        restart = [
            name
            for name in ("site", "mqtt", "influxdb", "devices", "assets", "accounting")
            if getattr(fresh, name) != getattr(context.plant, name)
        ]
        return ReloadOut(reloaded=["api keys", "alarm limits"], restart_needed=restart)

    return router

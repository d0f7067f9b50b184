"""Authentication (API key in X-API-Key, or Authorization: Bearer KEY) and role checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from ferrogate.api.keys import Role, StoredKey
from ferrogate.api.schemas import ErrorOut

# the answers of every route behind a key, for the OpenAPI schema
AUTH_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorOut, "description": "no or unknown API key"},
    403: {"model": ErrorOut, "description": "the key's role may not do this"},
    429: {"model": ErrorOut, "description": "too many unknown keys from this client; see Retry-After"},
}

_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key (or Authorization: Bearer KEY)")
_bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")


def error(status: int, code: str, message: str, **extra: object) -> HTTPException:
    """An HTTP error whose body is {"detail": {"error": code, "message": ..., ...}}."""
    return HTTPException(status, {"error": code, "message": message, **extra})


def require(role: Role) -> Callable[..., StoredKey]:
    async def check(
        request: Request,
        key: Annotated[str | None, Depends(_api_key)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> StoredKey:
        context = request.app.state.context
        client = request.client.host if request.client is not None else "unknown"
        wait_s = context.limiter.retry_after(client)
        if wait_s is not None:
            raise HTTPException(
                429,
                {"error": "too_many_failures", "message": f"too many unknown API keys from {client}; retry later"},
                headers={"Retry-After": str(wait_s)},
            )
        presented = key or (bearer.credentials if bearer is not None else None)
        if not presented:
            raise error(401, "unauthorized", "send an API key in X-API-Key or Authorization: Bearer")
        stored = context.keys.check(presented)
        if stored is None:
            context.limiter.record_failure(client)
            raise error(401, "unauthorized", "unknown API key")
        if Role[stored.role] < role:
            raise error(403, "forbidden", f"role {stored.role} may not do this; needs {role.name}")
        return stored

    return check


viewer = Depends(require(Role.viewer))
operator = Depends(require(Role.operator))
admin = Depends(require(Role.admin))

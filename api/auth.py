"""Authentication (API key in X-API-Key, or Authorization: Bearer KEY) and role checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from ferrogate.api.keys import Role, StoredKey

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
        presented = key or (bearer.credentials if bearer is not None else None)
        if not presented:
            raise error(401, "unauthorized", "send an API key in X-API-Key or Authorization: Bearer")
        stored = request.app.state.context.keys.check(presented)
        if stored is None:
            raise error(401, "unauthorized", "unknown API key")
        if Role[stored.role] < role:
            raise error(403, "forbidden", f"role {stored.role} may not do this; needs {role.name}")
        return stored

    return check


viewer = Depends(require(Role.viewer))
operator = Depends(require(Role.operator))
admin = Depends(require(Role.admin))

"""A thin async InfluxDB client for the v1 HTTP API: `/write` (line protocol), `/query` (InfluxQL), `/ping`.

influxdb-client speaks only /api/v2 and cannot write to InfluxDB 1.6; the v1 endpoints are
answered by 1.x, by 2.x (DBRP mapping) and by 3.x, so they are the portable pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from ferrogate.gateway.config import InfluxConfig


class InfluxError(Exception):
    """A request InfluxDB answered with an error; `retryable` says whether trying again can help."""

    def __init__(self, message: str, status: int | None, retryable: bool) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


@dataclass(frozen=True)
class Series:
    name: str
    tags: dict[str, str]
    columns: list[str]
    values: list[list[Any]]

    def rows(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.values]


class InfluxV1Client:
    def __init__(self, config: InfluxConfig, credentials: tuple[str, str] | None = None) -> None:
        """`credentials` (user, password) override the config's user, e.g. for an admin task."""
        self.config = config
        auth = None
        if credentials is not None:
            auth = httpx.BasicAuth(*credentials)
        elif config.username is not None:
            auth = httpx.BasicAuth(config.username, config.resolve_password() or "")
        self._http = httpx.AsyncClient(base_url=config.url, auth=auth, timeout=config.timeout_s)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def ping(self) -> str:
        """The server's version; raises InfluxError when it does not answer."""
        try:
            resp = await self._http.get("/ping")
        except httpx.HTTPError as exc:
            raise InfluxError(f"InfluxDB not reachable at {self.config.url}: {exc!r}", None, True) from exc
        if resp.status_code != 204:
            raise InfluxError(f"/ping answered {resp.status_code}", resp.status_code, True)
        return resp.headers.get("X-Influxdb-Version", "unknown")

    async def write(self, lines: list[str], precision: str = "ns") -> None:
        params = {"db": self.config.database, "precision": precision}
        if self.config.retention_policy:
            params["rp"] = self.config.retention_policy
        body = "\n".join(lines).encode()
        try:
            resp = await self._http.post("/write", params=params, content=body)
        except httpx.HTTPError as exc:
            raise InfluxError(f"write failed: {exc!r}", None, True) from exc
        if resp.status_code == 204:
            return
        # 4xx other than 429 will fail again the same way (bad lines, unknown database, auth)
        retryable = resp.status_code >= 500 or resp.status_code == 429
        raise InfluxError(f"write answered {resp.status_code}: {resp.text.strip()}", resp.status_code, retryable)

    async def query(self, q: str, *, epoch: str | None = "ns", db: bool = True) -> list[Series]:
        """Run one InfluxQL statement; SELECT/SHOW go as GET, everything else as POST."""
        params: dict[str, str] = {"q": q}
        if db:
            params["db"] = self.config.database
        if epoch:
            params["epoch"] = epoch
        read_only = q.lstrip().upper().startswith(("SELECT", "SHOW"))
        try:
            if read_only:
                resp = await self._http.get("/query", params=params)
            else:
                resp = await self._http.post("/query", params=params)
        except httpx.HTTPError as exc:
            raise InfluxError(f"query failed: {exc!r}", None, True) from exc
        if resp.status_code != 200:
            raise InfluxError(
                f"query answered {resp.status_code}: {resp.text.strip()}", resp.status_code, resp.status_code >= 500
            )
        doc = resp.json()
        out: list[Series] = []
        for result in doc.get("results", []):
            if "error" in result:
                raise InfluxError(f"query error: {result['error']}", 200, False)
            for s in result.get("series", []):
                out.append(Series(s.get("name", ""), s.get("tags", {}) or {}, s["columns"], s["values"]))
        return out

    async def ensure_database(self) -> None:
        await self.query(f'CREATE DATABASE "{self.config.database}"', epoch=None, db=False)

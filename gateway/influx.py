"""A thin async InfluxDB client for the v1 HTTP API: `/write` (line protocol), `/query` (InfluxQL), `/ping`.

influxdb-client speaks only /api/v2 and cannot write to InfluxDB 1.6; the v1 endpoints are
answered by 1.x, by 2.x (DBRP mapping) and by 3.x, so they are the portable pair.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

import httpx

from ferrogate.gateway.config import InfluxConfig
from ferrogate.gateway.influx_post import PlainPost, plain_http

# InfluxDB 1.x commits (and deletes) a point's fields one at a time, not as one transaction
# (influxdata/influxdb#7262, #8546, "wontfix"): a query running beside the write or DELETE of a point
# can return it with only some of its fields. Readers that need whole rows read again, this often,
# pausing 0.02 s, then twice as long each time (about 5 s in all): a write takes milliseconds.
WHOLE_READ_ATTEMPTS = 9
WHOLE_READ_PAUSE_S = 0.02


class ErrorKind(Enum):
    """What a failed write means for the batch."""

    UNAVAILABLE = "unavailable"  # unreachable, timeout, 5xx, 429: try again later
    NOT_FOUND = "not_found"  # database/bucket missing: create it if we may, else wait for it
    UNAUTHORIZED = "unauthorized"  # 401/403: credentials; the batch is fine, hold it until fixed
    TOO_LARGE = "too_large"  # 413: split the batch
    REJECTED = "rejected"  # other 4xx (bad lines, field type conflict): retrying cannot fix it


def error_kind(status: int | None) -> ErrorKind:
    if status is None or status >= 500 or status in (408, 429):
        return ErrorKind.UNAVAILABLE
    return {404: ErrorKind.NOT_FOUND, 401: ErrorKind.UNAUTHORIZED, 403: ErrorKind.UNAUTHORIZED}.get(
        status, ErrorKind.TOO_LARGE if status == 413 else ErrorKind.REJECTED
    )


class InfluxError(Exception):
    """A request InfluxDB answered with an error; `retryable` says whether trying again can help,
    `kind` what the writer should do with the batch."""

    def __init__(self, message: str, status: int | None, retryable: bool, kind: ErrorKind | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.kind = kind or (ErrorKind.UNAVAILABLE if retryable else error_kind(status))


class LineSink(Protocol):
    """Where the ingest writes line protocol: the v1 `/write` client or the v2 client."""

    async def write(self, lines: list[str], precision: str = "ns") -> None: ...

    async def prepare(self) -> bool:
        """Create the write target if this dialect may (v1: CREATE DATABASE); True if it exists now."""
        ...

    async def aclose(self) -> None: ...


def influxql_string(text: str) -> str:
    """An InfluxQL string literal (quotes and backslashes escaped; a raw newline would end InfluxQL's
    string, so it is written as \\n)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


@dataclass(frozen=True)
class Series:
    name: str
    tags: dict[str, str]
    columns: list[str]
    values: list[list[Any]]

    def rows(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.values]


def _series_of(doc: dict[str, Any]) -> list[Series]:
    """The series of a /query answer (or of one of its chunks); InfluxError for an error in it."""
    if "error" in doc:  # a chunked answer that failed after it began
        raise InfluxError(f"query error: {doc['error']}", 200, False)
    out: list[Series] = []
    for result in doc.get("results", []):
        if "error" in result:
            raise InfluxError(f"query error: {result['error']}", 200, False)
        for s in result.get("series", []):
            out.append(Series(s.get("name", ""), s.get("tags", {}) or {}, s["columns"], s["values"]))
    return out


class InfluxV1Client:
    def __init__(self, config: InfluxConfig, credentials: tuple[str, str] | None = None) -> None:
        """`credentials` (user, password) override the config's user, e.g. for an admin task."""
        self.config = config
        if credentials is None and config.username is not None:
            credentials = (config.username, config.resolve_password() or "")
        auth = httpx.BasicAuth(*credentials) if credentials is not None else None
        self._http = httpx.AsyncClient(base_url=config.url, auth=auth, timeout=config.timeout_s)
        # writes, the hot path, skip httpx where they can (gateway/influx_post.py)
        self._post = PlainPost(config.url, config.timeout_s, credentials) if plain_http(config.url) else None

    async def aclose(self) -> None:
        await self._http.aclose()
        if self._post is not None:
            await self._post.aclose()

    async def ping(self) -> str:
        """The server's version; raises InfluxError when it does not answer."""
        try:
            resp = await self._http.get("/ping")
        except httpx.HTTPError as exc:
            raise InfluxError(f"InfluxDB not reachable at {self.config.url}: {exc!r}", None, True) from exc
        if resp.status_code != 204:
            raise InfluxError(f"/ping answered {resp.status_code}", resp.status_code, True)
        return resp.headers.get("X-Influxdb-Version", "unknown")

    async def write(self, lines: list[str], precision: str = "ns", retention_policy: str | None = None) -> None:
        """`retention_policy` overrides the configured one (derived series go to `long`)."""
        params = {"db": self.config.database, "precision": precision}
        if retention_policy or self.config.retention_policy:
            params["rp"] = retention_policy or self.config.retention_policy
        body = "\n".join(lines).encode()
        try:
            if self._post is not None:
                status, answer = await self._post.post(f"/write?{urllib.parse.urlencode(params)}", body)
                text = answer.decode("utf-8", "replace")
            else:
                resp = await self._http.post("/write", params=params, content=body)
                status, text = resp.status_code, resp.text
        except (httpx.HTTPError, OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            raise InfluxError(f"write failed: {exc!r}", None, True) from exc
        if status == 204:
            return
        kind = error_kind(status)
        raise InfluxError(f"write answered {status}: {text.strip()}", status, kind is ErrorKind.UNAVAILABLE, kind)

    async def query(self, q: str, *, epoch: str | None = "ns", db: bool = True) -> list[Series]:
        """Run one InfluxQL statement; SELECT/SHOW go as GET, everything else as POST with the
        statement in the body (it may hold a password: CREATE USER; URLs end up in logs)."""
        params: dict[str, str] = {}
        if db:
            params["db"] = self.config.database
        if epoch:
            params["epoch"] = epoch
        read_only = q.lstrip().upper().startswith(("SELECT", "SHOW"))
        try:
            if read_only:
                resp = await self._http.get("/query", params={"q": q, **params})
            else:
                resp = await self._http.post("/query", params=params, data={"q": q})
        except httpx.HTTPError as exc:
            raise InfluxError(f"query failed: {exc!r}", None, True) from exc
        if resp.status_code != 200:
            raise InfluxError(
                f"query answered {resp.status_code}: {resp.text.strip()}", resp.status_code, resp.status_code >= 500
            )
        return _series_of(resp.json())

    async def query_whole(self, q: str, whole: Callable[[dict[str, Any]], bool]) -> list[Series]:
        """A SELECT whose every row `whole` accepts (the fields its writer always writes are there),
        read again while a row is caught half written or half deleted (see WHOLE_READ_ATTEMPTS);
        InfluxError, not retryable, if some row still lacks them: stored that way, not in passing."""
        torn = 0
        for attempt in range(WHOLE_READ_ATTEMPTS):
            if attempt:
                await asyncio.sleep(WHOLE_READ_PAUSE_S * 2 ** (attempt - 1))
            series = await self.query(q)
            torn = sum(1 for s in series for row in s.rows() if not whole(row))
            if not torn:
                return series
        raise InfluxError(
            f"{torn} rows lack fields their writer always writes, in {WHOLE_READ_ATTEMPTS} reads: {q[:300]}", 200, False
        )

    async def query_chunks(self, q: str, chunk_size: int) -> AsyncIterator[list[Series]]:
        """A SELECT's series as InfluxDB streams them (`chunked=true`): pieces of at most
        `chunk_size` rows each, a series' pieces in order, so a long span is read in one query
        (cheaper for influxd than many short ones) without holding its whole answer."""
        params = {"db": self.config.database, "epoch": "ns", "q": q, "chunked": "true", "chunk_size": str(chunk_size)}
        try:
            async with self._http.stream("GET", "/query", params=params) as resp:
                if resp.status_code != 200:
                    text = (await resp.aread()).decode(errors="replace").strip()
                    raise InfluxError(
                        f"query answered {resp.status_code}: {text}", resp.status_code, resp.status_code >= 500
                    )
                async for line in resp.aiter_lines():
                    if line.strip():
                        yield _series_of(json.loads(line))
        except httpx.HTTPError as exc:
            raise InfluxError(f"query failed: {exc!r}", None, True) from exc

    async def ensure_database(self) -> None:
        """The database and its retention policies (`raw` default, `long` for derived series);
        missing ones are created, existing ones (e.g. set by `ferrogate db-init`) are left as they are."""
        from ferrogate.gateway.influx_setup import ensure_policies  # it builds on this client

        await self.query(f'CREATE DATABASE "{self.config.database}"', epoch=None, db=False)
        await ensure_policies(self, self.config.database)

    async def prepare(self) -> bool:
        """CREATE DATABASE (idempotent). A user without admin rights gets 401/403: then the database
        is left to `ferrogate db-init`, and False says it was not created here."""
        try:
            await self.ensure_database()
        except InfluxError as exc:
            if exc.status in (401, 403):
                return False
            raise
        return True

"""The HTTPS side: one POST per period's message, authenticated by a client certificate (mutual
TLS) and/or a bearer token, the platform's certificate checked against `ca_file` (or the system's
CAs). What the status means for the message is decided here, once."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import httpx


class Outcome(StrEnum):
    delivered = "delivered"  # 2xx: taken
    duplicate = "duplicate"  # 409: the platform already has this message id (a resend after an outage)
    # 401, 403, 408, 425, 429, 5xx, refused, timed out, unreachable: the platform is away or does not
    # take us (an expired token or certificate is the plant's problem, not the message's): try again
    retry = "retry"
    rejected = "rejected"  # any other 4xx: resending the same message cannot help


RETRY_STATUSES = frozenset({401, 403, 408, 425, 429})


@dataclass(frozen=True, slots=True)
class Answer:
    outcome: Outcome
    status: int | None  # None: no HTTP answer at all
    detail: str


def outcome_of(status: int) -> Outcome:
    if 200 <= status < 300:
        return Outcome.delivered
    if status == 409:
        return Outcome.duplicate
    if status in RETRY_STATUSES or status >= 500:
        return Outcome.retry
    return Outcome.rejected


def tls_context(ca_file: Path | None, cert_file: Path | None, key_file: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
    if cert_file is not None and key_file is not None:
        context.load_cert_chain(str(cert_file), str(key_file))
    return context


class PlatformClient:
    def __init__(self, url: str, context: ssl.SSLContext, token: str | None, timeout_s: float) -> None:
        self.url = url
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.AsyncClient(verify=context, headers=headers, timeout=timeout_s)

    async def post(self, message_id: str, body: bytes) -> Answer:
        try:
            response = await self._http.post(self.url, content=body, headers={"Idempotency-Key": message_id})
        except httpx.HTTPError as exc:
            return Answer(Outcome.retry, None, f"{type(exc).__name__}: {exc}")
        return Answer(outcome_of(response.status_code), response.status_code, response.text[:200])

    async def aclose(self) -> None:
        await self._http.aclose()

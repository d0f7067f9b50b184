"""The v2 write dialect: line protocol to `/api/v2/write` through influxdb-client (org, bucket, token).

For InfluxDB 2.x, 3.x (v2-compatible write API) and 1.8+ (token "username:password", bucket
"database/retention_policy", org "-"). influxdb-client's async API needs aiohttp and does not batch
or retry either, so the synchronous client runs one request at a time in a worker thread; batching,
retries, spooling and dead letters stay in the ingest writer, the same for both dialects.
"""

from __future__ import annotations

import asyncio

import urllib3
from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from ferrogate.gateway.config import InfluxConfig
from ferrogate.gateway.influx import ErrorKind, InfluxError, error_kind

_PRECISIONS = {"ns": WritePrecision.NS, "us": WritePrecision.US, "ms": WritePrecision.MS, "s": WritePrecision.S}


class InfluxV2Client:
    def __init__(self, config: InfluxConfig) -> None:
        if config.dialect != "v2" or config.bucket is None or config.org is None:
            raise ValueError("InfluxV2Client needs an influxdb section with dialect v2, org and bucket")
        self.config = config
        self.bucket, self.org = config.bucket, config.org
        # retries=False: one attempt per call; the ingest writer owns retries and backoff
        self._client = InfluxDBClient(
            url=config.url, token=config.resolve_token(), org=config.org, timeout=int(config.timeout_s * 1000)
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)

    async def write(self, lines: list[str], precision: str = "ns") -> None:
        body = "\n".join(lines)
        try:
            await asyncio.to_thread(self._write_api.write, self.bucket, self.org, body, _PRECISIONS[precision])
        except ApiException as exc:
            kind = error_kind(exc.status)
            text = exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else str(exc.body or exc.reason)
            raise InfluxError(
                f"v2 write answered {exc.status}: {text.strip()}", exc.status, kind is ErrorKind.UNAVAILABLE, kind
            ) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise InfluxError(f"v2 write to {self.config.url} failed: {exc!r}", None, True) from exc

    async def prepare(self) -> bool:
        """Buckets are created by the database's administrator (they need an org id and rights)."""
        return False

    async def aclose(self) -> None:
        await asyncio.to_thread(self._client.close)

"""One platform's sending side: records become HJ 212 uploads in a disk spool, and leave it only
when the platform's 9014 reply came (10 s timeout, 3 resends, HJ 212-2017), oldest first.

While the platform is away (refused, silent, unreachable) the head record waits and is tried again
with backoff; everything behind it waits in the spool, on disk, and goes out in order once the
platform answers again (ordered backfill). A record keeps the QN it was given when spooled, so a
resend is recognisably the same upload. Each record is spooled once (PeriodAggregator's
`made_through`, saved in `state_path` across restarts); it is delivered exactly once unless the
process dies between the platform's reply and the spool's removal, when the platform sees the same
QN twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path

from ferrogate.drivers.hj212.protocol.client import Hj212Client
from ferrogate.drivers.hj212.protocol.cp import build_cp
from ferrogate.drivers.hj212.protocol.message import format_hj212_time
from ferrogate.drivers.hj212.protocol.segment import VERSION_2017, DataSegment, build_segment, make_flag, parse_segment
from ferrogate.gateway.spool import Spool, wait_head
from ferrogate.gateway.uplink.aggregate import Record

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PlatformTarget:
    id: str
    host: str
    port: int
    mn: str
    password: str
    zone: tzinfo
    st: str = "31"
    timeout_s: float = 10.0
    retries: int = 3
    retry_max_s: float = 60.0  # backoff cap while the platform is away


class PlatformSender:
    def __init__(self, target: PlatformTarget, spool: Spool, state_path: Path | None = None) -> None:
        self.target = target
        self.spool = spool
        self.state_path = state_path
        self.delivered = 0
        self.unanswered = 0  # tries that got no reply after every resend
        self.connection_failures = 0
        self._last_qn_ms = 0
        self._wake = asyncio.Event()
        self.connected = False

    # -- records in ---------------------------------------------------------------------------------

    def made_through(self) -> dict[str, int]:
        """kind -> start (ns) of the last record spooled, from the state file."""
        if self.state_path is None or not self.state_path.exists():
            return {}
        return {k: int(v) for k, v in json.loads(self.state_path.read_text(encoding="utf-8")).items()}

    def enqueue(self, records: list[Record], made_through: dict[str, int], now_ms: int) -> None:
        """Spool the records (committed on return), then remember how far records were made."""
        for record in records:
            qn_ms = self._last_qn_ms = max(now_ms, self._last_qn_ms + 1)
            segment = DataSegment(
                qn=format_hj212_time(qn_ms * 1_000_000, self.target.zone, millis=True),
                st=self.target.st,
                cn=record.cn,
                pw=self.target.password,
                mn=self.target.mn,
                flag=make_flag(VERSION_2017, ack=True),
                cp=build_cp({"DataTime": format_hj212_time(record.start_ns, self.target.zone)}, record.factors.items()),
            )
            self.spool.append(record.cn, build_segment(segment).encode("utf-8"), 1)
        if records and self.state_path is not None:
            tmp = self.state_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(made_through), encoding="utf-8")
            os.replace(tmp, self.state_path)
        if records:
            self._wake.set()

    # -- records out --------------------------------------------------------------------------------

    async def run(self) -> None:
        first = min(1.0, self.target.retry_max_s)
        delay = first
        while True:
            client = Hj212Client(self.target.host, self.target.port, self.target.timeout_s, self.target.retries)
            try:
                await client.connect()
                self.connected = True
                delay = first
                await self._send_all(client)
            except (OSError, ConnectionError, TimeoutError) as exc:
                self.connection_failures += 1
                log.warning("uplink %s: platform %s:%d: %s", self.target.id, self.target.host, self.target.port, exc)
            finally:
                self.connected = False
                await client.close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.target.retry_max_s)

    async def _send_all(self, client: Hj212Client) -> None:
        while True:
            entry = await wait_head(self.spool, self._wake)
            segment = parse_segment(entry.payload.decode("utf-8"))
            if not await client.send(segment):
                self.unanswered += 1
                raise ConnectionError(f"no 9014 for QN {segment.qn} after {1 + self.target.retries} tries")
            self.spool.remove_through(entry.id)
            self.delivered += 1

    @property
    def backlog(self) -> int:
        return self.spool.rows

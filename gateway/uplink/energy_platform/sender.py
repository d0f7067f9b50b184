"""One energy platform's sending side: messages wait in a disk spool (gateway/spool.py, the same
outbox the HJ 212 uplink and the MQTT publisher use) and leave it oldest first, one at a time, only
when the platform took them (2xx) or says it already has them (409).

While the platform is away (refused, 5xx, timeout) the head message is tried again with backoff
and everything behind it waits, on disk, in order (ordered backfill). A resend carries the same
message id, so the platform can de-duplicate the one case that sends twice: the process dying
between the platform's answer and the spool's removal. A message the platform refuses for good
(another 4xx) is moved to the `rejected` outbox, logged and counted, never silently dropped.
"""

from __future__ import annotations

import asyncio
import logging

from ferrogate.gateway.spool import Spool, wait_head
from ferrogate.gateway.uplink.energy_platform.client import Outcome, PlatformClient

log = logging.getLogger(__name__)


class EnergySender:
    def __init__(self, name: str, client: PlatformClient, spool: Spool, rejected: Spool, retry_max_s: float) -> None:
        self.name = name
        self.client = client
        self.spool = spool
        self.rejected = rejected
        self.retry_max_s = retry_max_s
        self.delivered = 0
        self.duplicates = 0
        self.refused = 0  # tries the platform did not take (it was away or answered 5xx/429)
        self.rejected_count = 0
        self.last_error = ""
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        first = min(1.0, self.retry_max_s)
        delay = first
        while True:
            entry = await wait_head(self.spool, self._wake)
            answer = await self.client.post(entry.topic, entry.payload)
            if answer.outcome is Outcome.retry:
                self.refused += 1
                self.last_error = f"{answer.status or 'no answer'}: {answer.detail}"
                log.warning("energy platform %s away (%s); %d waiting", self.name, self.last_error, self.spool.rows)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)
                continue
            delay = first
            if answer.outcome is Outcome.rejected:
                self.rejected_count += 1
                self.last_error = f"{answer.status}: {answer.detail}"
                log.error("energy platform %s rejected %s: %s", self.name, entry.topic, self.last_error)
                self.rejected.append(entry.topic, entry.payload, entry.items)
            elif answer.outcome is Outcome.duplicate:
                self.duplicates += 1
            else:
                self.delivered += 1
            self.spool.remove_through(entry.id)

    @property
    def backlog(self) -> int:
        return self.spool.rows

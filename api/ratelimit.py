"""Failed API key attempts, counted and limited per client address.

A client that presents `limit` unknown keys within `window_s` seconds gets 429 with Retry-After
for every /api/v1 request until the oldest of those failures leaves the window: guessing keys
costs the guesser time, and a client with a good key is never slowed down by someone else's
failures (unless they share an address, e.g. behind one reverse proxy).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from ferrogate.api.config import ApiConfig


class AuthFailureLimiter:
    def __init__(
        self,
        limit: int,
        window_s: float,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_clients = max_clients  # bounds the memory an address-hopping guesser can take
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self.failed = 0  # unknown keys presented, all clients
        self.refused = 0  # requests answered 429

    def _recent(self, client: str, now: float) -> deque[float] | None:
        times = self._failures.get(client)
        if times is None:
            return None
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[client]
            return None
        return times

    def retry_after(self, client: str) -> int | None:
        """Whole seconds the client must wait, or None when it may try (counts the refusal)."""
        now = self._clock()
        times = self._recent(client, now)
        if times is None or len(times) < self.limit:
            return None
        self.refused += 1
        return max(1, math.ceil(times[0] + self.window_s - now))

    def record_failure(self, client: str) -> None:
        now = self._clock()
        self.failed += 1
        times = self._recent(client, now)
        if times is None:
            if len(self._failures) >= self.max_clients:
                del self._failures[next(iter(self._failures))]  # the longest-tracked client
            times = self._failures[client] = deque(maxlen=self.limit)
        times.append(now)

    def render_prometheus(self) -> str:
        return (
            "# HELP ferrogate_api_auth_failures_total API requests with an unknown key\n"
            "# TYPE ferrogate_api_auth_failures_total counter\n"
            f"ferrogate_api_auth_failures_total {self.failed}\n"
            "# HELP ferrogate_api_auth_refused_total API requests refused with 429 after repeated unknown keys\n"
            "# TYPE ferrogate_api_auth_refused_total counter\n"
            f"ferrogate_api_auth_refused_total {self.refused}\n"
        )


def limiter_for(api: ApiConfig) -> AuthFailureLimiter:
    """The limiter an `api:` section asks for (a plant's API or the group center's)."""
    return AuthFailureLimiter(api.auth_failures_max, api.auth_failure_window_s)

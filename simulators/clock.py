"""Simulated time: runs `speed` times faster than the wall clock, starting `history_s` in the past,
and continues at 1x once it has caught up, so it never produces timestamps in the future.

A clock made `held` stands at its start until `release()`: the demo holds its plant's history
until the gateway scans, so a box slow to start the servers does not lose plant time to it."""

from __future__ import annotations

import time
from collections.abc import Callable


class SimClock:
    def __init__(
        self, speed: float = 1.0, history_s: float = 0.0, wall: Callable[[], float] = time.time, held: bool = False
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        if history_s < 0:
            raise ValueError("history must be >= 0")
        self.speed = speed
        self.history_s = history_s
        self._wall = wall
        self.held = held
        self.wall0 = wall()
        self.sim0 = self.wall0 - history_s
        self._run_from(self.wall0)

    def _run_from(self, wall0: float) -> None:
        self.wall0 = wall0
        # wall seconds until the accelerated clock reaches the wall clock
        self.catch_up_s = (wall0 - self.sim0) / (self.speed - 1) if self.speed > 1 else float("inf")

    def release(self) -> None:
        """Start a held clock: from its start, now (the history grows by the time it was held)."""
        if self.held:
            self.held = False
            self._run_from(self._wall())

    def now(self) -> float:
        """Simulated Unix time in seconds."""
        if self.held:
            return self.sim0
        wall = self._wall()
        elapsed = wall - self.wall0
        if elapsed >= self.catch_up_s:
            return wall
        return self.sim0 + elapsed * self.speed

    def now_ns(self) -> int:
        return int(self.now() * 1e9)


class ManualClock:
    """Simulated time that moves only when told to: deterministic tests and scripted runs."""

    def __init__(self, t: float) -> None:
        self.t = float(t)

    def now(self) -> float:
        return self.t

    def now_ns(self) -> int:
        return int(self.t * 1e9)

    def set(self, t: float) -> None:
        if t < self.t:
            raise ValueError("simulated time never runs backwards")
        self.t = float(t)

"""Simulated time: runs `speed` times faster than the wall clock, starting `history_s` in the past,
and continues at 1x once it has caught up, so it never produces timestamps in the future."""

from __future__ import annotations

import time
from collections.abc import Callable


class SimClock:
    def __init__(self, speed: float = 1.0, history_s: float = 0.0, wall: Callable[[], float] = time.time) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        if history_s < 0:
            raise ValueError("history must be >= 0")
        self.speed = speed
        self.history_s = history_s
        self._wall = wall
        self.wall0 = wall()
        self.sim0 = self.wall0 - history_s
        # wall seconds until the accelerated clock reaches the wall clock
        self.catch_up_s = history_s / (speed - 1) if speed > 1 else float("inf")

    def now(self) -> float:
        """Simulated Unix time in seconds."""
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

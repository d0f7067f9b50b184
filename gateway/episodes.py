"""A fault that lasts and repeats (a disk that refuses writes, batches held for want of a durable
place), told without flooding the log: its first occurrence at once, then at most once per
interval while it lasts, and its end once."""

from __future__ import annotations

import time


class Episode:
    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.active = False
        self.occurrences = 0  # over every episode
        self._next_log = 0.0

    def occurred(self) -> bool:
        """Count an occurrence; True when it is to be logged."""
        self.occurrences += 1
        now = time.monotonic()
        due = not self.active or now >= self._next_log
        if due:
            self._next_log = now + self.interval_s
        self.active = True
        return due

    def ended(self) -> bool:
        """True once, when an episode that was going on ends (cheap to call after every success)."""
        was, self.active = self.active, False
        return was

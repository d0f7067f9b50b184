"""Dead letters: batches InfluxDB rejected for good (a 4xx retrying cannot fix), kept for an operator.

One JSON object per line: {"time", "status", "error", "lines"}. The lines are exactly what was sent,
so after fixing the cause (e.g. a field type conflict) they can be written again as they are.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
from pathlib import Path

from ferrogate.gateway.influx import InfluxError
from ferrogate.gateway.timeutil import iso_utc

log = logging.getLogger(__name__)

# InfluxDB 1.x names the first line it could not parse: "unable to parse '<line>': <reason>"
_UNPARSABLE = re.compile(r"unable to parse '(.*?)': ")
LOGGED_LINES = 3
# one log line per this many seconds at most (a systemic rejection would otherwise flood the log)
LOG_INTERVAL_S = 1.0


class DeadLetters:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.batches = 0
        self.lines = 0
        self._next_log = 0.0
        self._unlogged = 0
        self.write_errors = 0  # records the disk refused (full); their batches were not acknowledged
        if path is None:
            # ingest then holds a rejected batch unacknowledged (gateway/ingest.py): nowhere to keep it
            log.warning("no dead-letter file configured: a batch InfluxDB rejects for good is held, not acknowledged")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)

    def add(self, lines: list[str], error: InfluxError, now_ns: int) -> None:
        """Keep a rejected batch (durably, before the caller acknowledges its messages)."""
        if self.path is not None:
            record = {"time": iso_utc(now_ns), "status": error.status, "error": str(error), "lines": lines}
            self._append(json.dumps(record, ensure_ascii=False) + "\n")
        self.batches += 1
        self.lines += len(lines)
        now = time.monotonic()
        if now < self._next_log:
            self._unlogged += 1
            return
        self._next_log = now + LOG_INTERVAL_S
        named = _UNPARSABLE.findall(str(error))
        shown = named or lines[:LOGGED_LINES]
        log.error(
            "InfluxDB rejected a batch of %d lines (%s); kept in %s; offending line(s): %s%s%s",
            len(lines),
            error,
            self.path or "(no dead-letter file)",
            " | ".join(shown),
            "" if named or len(lines) <= LOGGED_LINES else f" | ... {len(lines) - LOGGED_LINES} more",
            f" ({self._unlogged} more rejected batches not logged)" if self._unlogged else "",
        )
        self._unlogged = 0

    def _append(self, record: str) -> None:
        """Append one record durably; on a write error (a full disk) cut off any part of it that got
        in, so the file stays whole lines, and raise: the caller must not acknowledge the batch."""
        assert self.path is not None
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            start = os.lseek(fd, 0, os.SEEK_END)
            try:
                data = memoryview(record.encode())
                while data:  # a write may take part of the record
                    data = data[os.write(fd, data) :]
                os.fsync(fd)
            except OSError as exc:
                self.write_errors += 1
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)
                log.error("dead-letter file %s cannot be written (%s): its batch is kept, tried again", self.path, exc)
                raise
        finally:
            os.close(fd)


def read_dead_letters(path: Path) -> list[dict]:
    """Every record of a dead-letter file, oldest first."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]

"""Messages a consumer of the MQTT stream refused: counted by reason, logged at most once per
interval (a flood of junk must not flood the log), exported as a Prometheus counter."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable

log = logging.getLogger(__name__)

LOG_INTERVAL_S = 1.0  # each log line carries the running count
REASON_KINDS_MAX = 50  # distinct reasons counted apart; more are counted as "other"
_DETAIL = re.compile(r"'[^']*'|\"[^\"]*\"|\d+")


def reason_kind(reason: str) -> str:
    """The reason without what the sender chose (quoted values, numbers), so a hostile sender cannot
    make the counters' labels grow: "unknown schema 'x/9', expected ..." -> "unknown schema '…', ..."."""
    return _DETAIL.sub(lambda m: "N" if m.group().isdigit() else "'…'", reason.split(":", 1)[0])[:80]


class Rejections:
    def __init__(self, consumer: str) -> None:
        self.consumer = consumer  # ingest, live, energy
        self.count = 0
        self.by_reason: dict[str, int] = {}
        self._next_log = 0.0

    def add(self, topic: str, reason: str) -> None:
        self.count += 1
        kind = reason_kind(reason)
        if kind not in self.by_reason and len(self.by_reason) >= REASON_KINDS_MAX:
            kind = "other"
        self.by_reason[kind] = self.by_reason.get(kind, 0) + 1
        now = time.monotonic()
        if now >= self._next_log:
            self._next_log = now + LOG_INTERVAL_S
            log.warning(
                "%s rejected a message on %s: %s (%d rejected so far)", self.consumer, topic, reason[:300], self.count
            )


def render_prometheus(consumers: Iterable[Rejections]) -> str:
    lines = [
        "# HELP ferrogate_mqtt_rejected_total MQTT messages a consumer refused (malformed, oversized, wrong schema)",
        "# TYPE ferrogate_mqtt_rejected_total counter",
    ]
    for rejections in consumers:
        for kind, n in sorted(rejections.by_reason.items()):
            label = kind.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
            lines.append(f'ferrogate_mqtt_rejected_total{{consumer="{rejections.consumer}",reason="{label}"}} {n}')
    return "\n".join(lines) + "\n"

"""The group center's ingest: the plants' telemetry on the shared subscription (`IngestWorker` with
every plant's site), and their books' derived series and limit grades (all under `energy/`) on a
subscription of its own.

Readings are idempotent (a reading is one series and timestamp; a second delivery overwrites it with
the same value), so any worker of the shared group may write any of them. The books' rows are not: a
plant re-sums a month's KPI many times and the last one must win. Split between workers, an older
revision could be written after a newer one. So each center worker also follows every plant's
`energy/#` topics on a plain (non-shared) persistent subscription and writes them in the order the
plant sent them; with two or more workers each writes every revision, in order, so the last one
written is the plant's last. The derived series are small (a few messages per plant per cycle).
The limit grades (`energy/compliance/grade/<product>`, gateway/compliance/wire.py) are revised
like a month's KPI (each check of the plant re-sends each product's month), so they come the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ferrogate.gateway.compliance.wire import grade_payload_lines
from ferrogate.gateway.config import InfluxConfig, MqttConfig
from ferrogate.gateway.energy.wire_lines import DerivedPayloadError, derived_lines
from ferrogate.gateway.influx_setup import DERIVED_POLICY
from ferrogate.gateway.ingest import Ack, IngestWorker
from ferrogate.gateway.payload import PayloadError, check_size
from ferrogate.gateway.rejections import Rejections

log = logging.getLogger(__name__)

DERIVED_SPOOL = "derived_outbox"
GRADES = "compliance/"  # under a plant's `energy/`: the limit grades (schema ferrogate-compliance/1)


def derived_filter(root: str, site: str) -> str:
    return f"{root}/{site}/energy/#"


class DerivedIngest(IngestWorker):
    """The plants' books (energy_kpi, production_record, energy_interval, energy_balance) and limit
    grades (compliance_grade) into the center's database, retention policy `long`, exactly as each
    plant wrote them."""

    client_role = "derived"

    def __init__(self, mqtt: MqttConfig, influx: InfluxConfig, sites: Sequence[str], worker_id: str = "1") -> None:
        derived = influx.model_copy(update={"retention_policy": DERIVED_POLICY})
        super().__init__(mqtt, derived, sites, worker_id, spool_name=DERIVED_SPOOL)
        self.rejections = Rejections("derived")

    def subscriptions(self) -> list[str]:
        return [derived_filter(self.mqtt.topic_root, site) for site in self.sites]

    def mark_filters(self) -> list[str]:
        return []  # the books' series come from the plants' energy role, not from a collector's spool

    def handle(self, topic: str, payload: bytes, ack: Ack | None = None) -> None:
        lines: list[str] = []
        try:
            check_size(payload, self.mqtt.max_message_bytes)
            parts = topic[len(self._root_prefix) :].split("/", 2) if topic.startswith(self._root_prefix) else []
            if len(parts) != 3 or parts[0] not in self._known_sites or parts[1] != "energy":
                raise PayloadError("not a derived-series topic of a plant of this group")
            site, lines = (grade_payload_lines if parts[2].startswith(GRADES) else derived_lines)(payload)
            if site != parts[0]:
                lines = []
                raise PayloadError(f"payload is for site {site!r} but came on the topic of {parts[0]!r}")
            self.messages += 1
        except (PayloadError, DerivedPayloadError) as exc:
            self.rejections.add(topic, str(exc))
        self.writer.add(lines, ack)

"""The alarm journal in InfluxDB: every raise, clear and acknowledgement of the api role's alarm book
as a row of `alarm_event` (retention policy `long`, beside the books), so the monthly report and an
auditor see a month's alarms after a restart.

A row holds the alarm as it stood after the event; an alarm is known by (kind, source, raised), and
its latest row is its state. Rows InfluxDB does not take stay queued and go with the next write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from ferrogate.gateway.alarms import Alarm, AlarmBook, Kind, Severity
from ferrogate.gateway.influx import InfluxError, InfluxV1Client, influxql_string
from ferrogate.gateway.influx_setup import DERIVED_POLICY
from ferrogate.gateway.lineprotocol import escape_tag, quote_field

log = logging.getLogger(__name__)

MEASUREMENT = "alarm_event"
WRITE_EVERY_S = 1.0
MAX_QUEUED = 50_000  # lines kept while InfluxDB is away (the book's journal is bounded too)


def event_line(site: str, event: str, t_ns: int, alarm: Alarm) -> str:
    tags = f"site={escape_tag(site)},kind={escape_tag(alarm.kind.value)},source={escape_tag(alarm.source)}"
    fields = [
        f"event={quote_field(event)}",
        f"severity={quote_field(alarm.severity.value)}",
        f"message={quote_field(alarm.message)}",
        f"raised_ns={alarm.raised_ns}i",
    ]
    if alarm.value is not None:
        fields.append(f"value={float(alarm.value)!r}")
    if alarm.unit is not None:
        fields.append(f"unit={quote_field(alarm.unit)}")
    if alarm.cleared_ns is not None:
        fields.append(f"cleared_ns={alarm.cleared_ns}i")
    if alarm.acked_by is not None and alarm.acked_ns is not None:
        fields += [f"acked_by={quote_field(alarm.acked_by)}", f"acked_ns={alarm.acked_ns}i"]
    return f"{MEASUREMENT},{tags} {','.join(fields)} {t_ns}"


async def write_journal(book: AlarmBook, influx: InfluxV1Client, site: str, every_s: float = WRITE_EVERY_S) -> None:
    """Drain the book's journal into InfluxDB for as long as the role runs."""
    queued: list[str] = []
    failing = False
    while True:
        await asyncio.sleep(every_s)
        while book.journal:
            queued.append(event_line(site, *book.journal.popleft()))
        if not queued:
            continue
        try:
            await influx.write(queued, retention_policy=DERIVED_POLICY)
        except InfluxError as exc:
            if not failing:
                log.warning("alarm journal: InfluxDB took none of %d rows (%s); kept", len(queued), exc)
            failing = True
            del queued[:-MAX_QUEUED]
            continue
        failing = False
        queued.clear()


def alarm_from_row(tags: Mapping[str, str], row: Mapping[str, Any]) -> Alarm:
    """An alarm as its journal row recorded it (ids are per process: 0 here)."""
    return Alarm(
        0,
        Kind(tags["kind"]),
        tags["source"],
        Severity(row["severity"]),
        row["message"],
        int(row["raised_ns"]),
        int(row["time"]),
        row.get("value"),
        row.get("unit"),
        int(row["cleared_ns"]) if row.get("cleared_ns") is not None else None,
        row.get("acked_by"),
        int(row["acked_ns"]) if row.get("acked_ns") is not None else None,
    )


async def read_journal(influx: InfluxV1Client, site: str, start_ns: int, end_ns: int) -> list[Alarm]:
    """Each alarm's latest state among the journal rows in [start_ns, end_ns), oldest raise first."""
    series = await influx.query(
        f'SELECT * FROM "{DERIVED_POLICY}"."{MEASUREMENT}" WHERE site={influxql_string(site)} '
        f"AND time >= {start_ns} AND time < {end_ns} GROUP BY kind, source"
    )
    latest: dict[tuple[str, str, int], Alarm] = {}
    for s in series:
        for row in s.rows():  # in time order: a later row replaces the alarm's earlier state
            alarm = alarm_from_row(s.tags, row)
            latest[(alarm.kind.value, alarm.source, alarm.raised_ns)] = alarm
    return sorted(latest.values(), key=lambda a: a.raised_ns)


def merge(journaled: Iterable[Alarm], in_memory: Iterable[Alarm]) -> list[Alarm]:
    """The journal's alarms with the book's own (newer: not yet written, or written since), one per alarm."""
    out = {(a.kind.value, a.source, a.raised_ns): a for a in journaled}
    out.update({(a.kind.value, a.source, a.raised_ns): a for a in in_memory})
    return sorted(out.values(), key=lambda a: a.raised_ns)

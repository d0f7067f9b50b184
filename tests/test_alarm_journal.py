"""The alarm journal against a real InfluxDB: raises, acknowledgements and clears of the alarm book
become `alarm_event` rows, read back as each alarm's latest state, and merged with the book's own;
the line protocol keeps sources and messages with spaces, commas and quotes intact."""

from __future__ import annotations

import asyncio

from ferrogate.gateway.alarm_journal import merge, read_journal, write_journal
from ferrogate.gateway.alarms import AlarmBook, Kind, Severity
from ferrogate.gateway.config import InfluxConfig
from ferrogate.gateway.influx import InfluxV1Client
from ferrogate.gateway.influx_setup import ensure_policies
from ferrogate.gateway.services import InfluxDB
from tests.waiting import eventually

S = 1_000_000_000
T0 = 1_767_571_200 * S


async def test_alarms_outlive_the_book_in_the_journal(influxdb: InfluxDB, fresh_database: str) -> None:
    influx = InfluxV1Client(InfluxConfig(url=influxdb.url, database=fresh_database))
    await influx.prepare()
    await ensure_policies(influx, fresh_database)
    book = AlarmBook()
    writer = asyncio.create_task(write_journal(book, influx, "plant 1", every_s=0.05))
    try:
        odd = 'oil "temp", tr1'
        book.raise_(Kind.limit_exceeded, odd, Severity.warning, "above 85 °C", T0, 91.5, "°C")
        book.raise_(Kind.limit_exceeded, odd, Severity.critical, 'above 95 °C, "high"', T0 + S, 96.5, "°C")  # update
        book.acknowledge(1, "shift-operator", T0 + 2 * S)
        book.clear(Kind.limit_exceeded, odd, T0 + 3 * S)
        book.raise_(Kind.device_offline, "eaf1_meter", Severity.critical, "no answer", T0 + 4 * S)

        async def written() -> bool:
            return not book.journal and len(await read_journal(influx, "plant 1", T0, T0 + 10 * S)) == 2

        await eventually(written, "the journal in InfluxDB")
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
    oil, offline = await read_journal(influx, "plant 1", T0, T0 + 10 * S)
    # the latest row is the alarm's state: acknowledged, then cleared; raised as first raised
    assert (oil.source, oil.raised_ns, oil.cleared_ns, oil.acked_by, oil.acked_ns) == (
        odd,
        T0,
        T0 + 3 * S,
        "shift-operator",
        T0 + 2 * S,
    )
    # an update is not an event of its own; the next event's row carries it
    assert (oil.severity, oil.message, oil.value, oil.unit) == (Severity.critical, 'above 95 °C, "high"', 96.5, "°C")
    assert offline.kind is Kind.device_offline and offline.cleared_ns is None and offline.value is None
    assert await read_journal(influx, "other site", T0, T0 + 10 * S) == []
    # the book's own alarms win over their journal rows (newer), one per alarm
    merged = merge([oil, offline], book.listing())
    assert [(a.source, a.id) for a in merged] == [(odd, 1), ("eaf1_meter", 2)]
    await influx.aclose()

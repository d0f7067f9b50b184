"""The InfluxDB writer's batching against the real InfluxDB: a write goes out when `batch_size` lines
are waiting, when `max_pending` messages wait for their ack (the broker's Receive Maximum), when
`flush_interval_s` has passed, or `flush_idle_s` after the last message; whole messages per write,
acks in order after the write."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio

from ferrogate.gateway.config import InfluxConfig
from ferrogate.gateway.influx import InfluxV1Client
from ferrogate.gateway.ingest import InfluxWriter
from ferrogate.gateway.lineprotocol import batch_lines
from ferrogate.gateway.services import InfluxDB
from tests.test_ingest_messages import batch
from tests.waiting import eventually

SLOW = 60.0  # a flush interval no test waits for: only the other triggers can write in time


@pytest_asyncio.fixture
async def database(influxdb: InfluxDB, fresh_database: str) -> AsyncIterator[InfluxConfig]:
    config = InfluxConfig(url=influxdb.url, database=fresh_database)
    client = InfluxV1Client(config)
    await client.ensure_database()
    await client.aclose()
    yield config


async def run_writer(config: InfluxConfig, max_pending: int = 1000) -> tuple[InfluxWriter, asyncio.Task]:
    writer = InfluxWriter(config, InfluxV1Client(config), max_pending=max_pending)
    return writer, asyncio.create_task(writer.run())


async def stop_writer(writer: InfluxWriter, task: asyncio.Task) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await writer.sink.aclose()
    writer.close()


def messages(count: int) -> list[list[str]]:
    """`count` messages of 2 lines each (one telemetry batch each)."""
    return [batch_lines(batch("batching", "m1", seq)) for seq in range(count)]


async def test_batch_size_triggers_writes_of_whole_messages(database: InfluxConfig) -> None:
    config = database.model_copy(update={"batch_size": 4, "flush_interval_s": SLOW, "flush_idle_s": 0})
    writer, task = await run_writer(config)
    acked: list[int] = []
    try:
        for i, lines in enumerate(messages(4)):  # 8 lines: two writes of two whole messages
            writer.add(lines, lambda i=i: acked.append(i))

        async def written() -> bool:
            return writer.written_batches == 2

        await eventually(written, "two writes of 4 lines")
        assert writer.written_lines == 8 and acked == [0, 1, 2, 3] and writer.pending == 0
    finally:
        await stop_writer(writer, task)


async def test_messages_waiting_for_their_ack_trigger_a_write(database: InfluxConfig) -> None:
    config = database.model_copy(update={"batch_size": 1000, "flush_interval_s": SLOW, "flush_idle_s": 0})
    writer, task = await run_writer(config, max_pending=3)
    try:
        for lines in messages(3):
            writer.add(lines)

        async def written() -> bool:
            return writer.pending == 0

        await eventually(written, "a write once 3 messages wait")
        assert (writer.written_batches, writer.written_lines) == (1, 6)
    finally:
        await stop_writer(writer, task)


async def test_the_flush_interval_writes_what_waits(database: InfluxConfig) -> None:
    config = database.model_copy(update={"batch_size": 1000, "flush_interval_s": 0.2, "flush_idle_s": 0})
    writer, task = await run_writer(config)
    try:
        writer.add(messages(1)[0])
        await asyncio.wait_for(writer.flush(), 30)
        assert (writer.written_batches, writer.written_lines, writer.pending) == (1, 2, 0)
    finally:
        await stop_writer(writer, task)


async def test_a_burst_is_written_once_it_is_over(database: InfluxConfig) -> None:
    """No full batch and an interval no test waits for: the idle flush writes the burst, whole."""
    config = database.model_copy(update={"batch_size": 1000, "flush_interval_s": SLOW, "flush_idle_s": 0.05})
    writer, task = await run_writer(config)
    try:
        for _ in range(3):  # the writer's task runs up to its wait: nothing waits to be written yet
            await asyncio.sleep(0)
        for lines in messages(3):  # then one burst, handed over before the writer runs again
            writer.add(lines)

        async def written() -> bool:  # not writer.flush(): that wakes the writer itself
            return writer.pending == 0

        await eventually(written, "the burst written without a full batch or the interval", within_s=SLOW / 4)
        assert (writer.written_batches, writer.written_lines, writer.pending) == (1, 6, 0)
    finally:
        await stop_writer(writer, task)

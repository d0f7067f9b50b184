"""Rows caught half written, against a real InfluxDB. InfluxDB 1.x commits a point's fields one at a
time (influxdata/influxdb#7262, #8546), so a query beside a write can return a point with some of its
fields: a production record with `duration_s` but no `id` or `start_ns` (full run 26 of issue 14:
`TypeError` in `record_from_row` while the books check read beside the energy role's rewrite), a
reading with its value but no quality. The readers read such a row again until it is whole, and
say so when it stays torn. Here the rest of the point is written between two reads, by the client
itself: the order is fixed, no timing decides it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from bench.accounting_e2e import cell_lines_plant
from ferrogate.gateway import influx
from ferrogate.gateway.accounting_service import AccountingService, read_derived
from ferrogate.gateway.config import InfluxConfig, MqttConfig
from ferrogate.gateway.config_loader import parse_plant
from ferrogate.gateway.energy import wire
from ferrogate.gateway.energy.model import resolve
from ferrogate.gateway.energy.production import ProductionRecord
from ferrogate.gateway.influx import InfluxError, InfluxV1Client, Series
from ferrogate.gateway.influx_setup import DERIVED_POLICY, ensure_policies
from ferrogate.gateway.reading import Quality
from ferrogate.gateway.services import InfluxDB

S = 1_000_000_000
UNITS = {"coke": "t"}


class WriterFinishing(InfluxV1Client):
    """A real client that, once `finish` has given it the rest of a point (what a concurrent writer
    was still writing), writes it right after the next query: that query saw the point torn."""

    def __init__(self, config: InfluxConfig) -> None:
        super().__init__(config)
        self.rest: list[str] = []
        self.retention_policy: str | None = None
        self.queries = 0

    def finish(self, rest: list[str], retention_policy: str | None = None) -> None:
        self.rest, self.retention_policy, self.queries = rest, retention_policy, 0

    async def query(self, q: str, *, epoch: str | None = "ns", db: bool = True) -> list[Series]:
        answer = await super().query(q, epoch=epoch, db=db)
        self.queries += 1
        if self.rest:
            rest, self.rest = self.rest, []
            await self.write(rest, retention_policy=self.retention_policy)
        return answer


def record(end_ns: int) -> ProductionRecord:
    rec = ProductionRecord("line1", "SiMn", "continuous", "line1/7", end_ns - 60 * S, end_ns, 1.25)
    rec.electricity_kwh = 3_900.0
    rec.consumables["coke"] = 0.6
    rec.flags = {"partial_coverage"}
    return rec


def split_line(line: str, first: set[str]) -> tuple[str, str]:
    """A line as two lines of the same point: the fields named in `first`, then the others (the
    tags hold no space, no string field a comma)."""
    head, rest = line.split(" ", 1)
    fields, t = rest.rsplit(" ", 1)
    parts = fields.split(",")
    a = ",".join(f for f in parts if f.split("=", 1)[0] in first)
    b = ",".join(f for f in parts if f.split("=", 1)[0] not in first)
    return f"{head} {a} {t}", f"{head} {b} {t}"


async def test_a_record_read_half_written_is_read_again_whole(influxdb: InfluxDB, fresh_database: str) -> None:
    config = InfluxConfig(url=influxdb.url, database=fresh_database)
    end = (int(time.time()) - 3600) * S
    rec = record(end)
    first, rest = split_line(wire.record_line("s1", rec, UNITS), {"duration_s", "tonnes_t"})
    client = WriterFinishing(config)
    try:
        await client.ensure_database()
        await ensure_policies(client, fresh_database)
        await client.write([first], retention_policy=DERIVED_POLICY)
        torn = await client.query(f'SELECT * FROM "{DERIVED_POLICY}".{wire.RECORD}')
        assert [row.get("start_ns") for s in torn for row in s.rows()] == [None]  # what the old reader failed on
        client.finish([rest], DERIVED_POLICY)
        records, _ = await read_derived(client, "s1", end - 3600 * S, end + S, UNITS, 900 * S)
    finally:
        await client.aclose()
    assert client.queries == 3  # the torn read, the whole one, the buckets
    (back,) = records
    assert (back.id, back.start_ns, back.end_ns, back.tonnes) == (rec.id, rec.start_ns, rec.end_ns, rec.tonnes)
    assert (back.electricity_kwh, back.consumables, back.flags) == (3_900.0, {"coke": 0.6}, {"partial_coverage"})


async def test_a_record_that_stays_torn_is_an_error_that_says_so(
    influxdb: InfluxDB, fresh_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(influx, "WHOLE_READ_PAUSE_S", 0.001)  # the reads, not the pauses, are tested
    config = InfluxConfig(url=influxdb.url, database=fresh_database)
    end = (int(time.time()) - 3600) * S
    first, _ = split_line(wire.record_line("s1", record(end), UNITS), {"duration_s"})
    client = InfluxV1Client(config)
    try:
        await client.ensure_database()
        await ensure_policies(client, fresh_database)
        await client.write([first], retention_policy=DERIVED_POLICY)
        with pytest.raises(InfluxError, match="1 rows lack fields their writer always writes, in 9 reads") as raised:
            await read_derived(client, "s1", end - 3600 * S, end + S, UNITS, 900 * S)
    finally:
        await client.aclose()
    assert not raised.value.retryable


async def test_a_reading_read_without_its_quality_is_read_again(
    influxdb: InfluxDB, fresh_database: str, tmp_path: Path
) -> None:
    """A good reading caught with its value but not yet its quality was read as bad before."""
    plant = parse_plant(
        yaml.safe_dump(cell_lines_plant("rc", ["cells1"], influxdb.url, fresh_database)), tmp_path / "plant.yaml"
    )
    model, problems = resolve(plant, plant.accounting)
    assert model is not None, problems
    base = (int(time.time()) - 7200) * S
    series = "reading,site=rc,device=meters,point=incomer,unit=kWh"
    whole = [f'{series} value={100.0 + i},quality="good" {base + 60 * i * S}' for i in range(5)]
    bad = f'{series} quality="bad" {base + 300 * S}'
    torn = f"{series} value=106.0 {base + 360 * S}"
    rest = f'{series} quality="good" {base + 360 * S}'
    config = InfluxConfig(url=influxdb.url, database=fresh_database)
    service = AccountingService(model, MqttConfig(), config)
    await service.influx.aclose()
    service.influx = client = WriterFinishing(config)
    try:
        await client.ensure_database()
        await client.write([*whole, bad, torn])
        client.finish([rest])
        store = await service.read_raw(base, base + 420 * S, keys=[("meters", "incomer")])
    finally:
        await client.aclose()
    read = store[("meters", "incomer")]
    assert client.queries == 2  # only the torn row was read again (the bad one has no value by design)
    assert read.values == [100.0, 101.0, 102.0, 103.0, 104.0, None, 106.0]
    assert read.qualities == [Quality.GOOD] * 5 + [Quality.BAD, Quality.GOOD]

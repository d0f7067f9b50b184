"""The `energy` role: the accounting engine on the live MQTT stream, and recomputation of any past
period from InfluxDB. Derived series go to InfluxDB and MQTT (docs/accounting.md §6).

Live: readings of the accounting meters are kept for a window (`tap_lookback_h` x 2) in memory;
on a session the broker did not resume (the first one, a broker restarted without its persistence
file) the books read back from InfluxDB what was published before they subscribed, once ingest has
stored it (gateway/energy/session_gaps.py);
every cycle the books are re-derived from the earliest reading that arrived since the last cycle
(so a late or replayed reading corrects the figures), and the KPIs of every period touched are
re-summed from the records and buckets kept since the start of the previous month. Readings older
than the window trigger a recompute from InfluxDB instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ferrogate.gateway.config import InfluxConfig, MqttConfig
from ferrogate.gateway.energy import wire
from ferrogate.gateway.energy.aggregate import Period, PeriodKind
from ferrogate.gateway.energy.allocation import Windowed
from ferrogate.gateway.energy.books import ALL_PERIODS, BalanceRow, Books, Derived, IntervalRow, Kpi
from ferrogate.gateway.energy.model import AccountingModel, resolve
from ferrogate.gateway.energy.production import NO_PREVIOUS_TAP, ProductionRecord
from ferrogate.gateway.energy.series import Series
from ferrogate.gateway.energy.session_gaps import Gap, SessionGaps
from ferrogate.gateway.influx import InfluxError, InfluxV1Client
from ferrogate.gateway.influx_setup import DERIVED_POLICY
from ferrogate.gateway.lineprotocol import reading_whole
from ferrogate.gateway.mqtt import Backoff, Message, Outbox, follow_telemetry
from ferrogate.gateway.plant_file import PlantFile
from ferrogate.gateway.reading import Quality, ScanBatch
from ferrogate.gateway.rejections import Rejections
from ferrogate.gateway.timeutil import GATEWAY_CLOCK

log = logging.getLogger(__name__)

NS_PER_H = 3_600_000_000_000
# raw readings are read back a day per query (fewer queries: about a quarter less influxd CPU than an
# hour per query, measured on 1-second readings), streamed in pieces of this many rows per series
RAW_QUERY_SPAN_NS = 24 * NS_PER_H
RAW_QUERY_CHUNK_ROWS = 10_000
_QUALITY = {q.value: q for q in Quality}  # a reading's quality field, looked up (not an Enum call per row)
# scan batches held while the books load their state at start (InfluxDB may be slow or away);
# beyond this the oldest are dropped, counted and logged (a recompute re-reads them from InfluxDB)
EARLY_BATCHES_MAX = 20_000


# InfluxDB lines and MQTT messages an extension adds to a cycle's output
Output = tuple[list[str], list[Message]]


@dataclass(frozen=True, slots=True)
class PeriodSums:
    """A period the books have just re-summed, with their KPIs of it."""

    period: Period
    complete: bool
    current: bool  # the newest period of its kind (its MQTT messages are retained)
    kpis: list[Kpi]


class BooksExtension(Protocol):
    """Figures derived further from the books (e.g. electricity cost, gateway/cost_service.py). It is
    told which records the books took over (with each unit's electricity curve) and which periods
    they re-summed; what it returns is written and published with the books' own output."""

    measurements: tuple[str, ...]  # its per-record measurements (time = record end), deleted on recompute

    def on_records(self, records: list[ProductionRecord], electricity: Mapping[str, Windowed]) -> Output: ...

    def on_periods(self, periods: list[PeriodSums], intervals: list[IntervalRow]) -> Output: ...

    def forget(self, start_ns: int, end_ns: int) -> None:
        """Rows ending in (start_ns, end_ns] are about to be re-derived from InfluxDB (a record's
        row is stamped with its end, and a record ending at a day's end belongs to that day)."""

    def prune(self, keep_from_ns: int) -> None: ...

    async def load(self, influx: InfluxV1Client, where: str) -> None:
        """Its rows written before (InfluxQL condition on site and time), for whole period sums."""


class AccountingService:
    def __init__(
        self,
        model: AccountingModel,
        mqtt: MqttConfig,
        influx: InfluxConfig,
        gateway_id: str = "1",
        cycle_s: float = 2.0,
    ) -> None:
        self.model = model
        self.books = Books(model)
        self.mqtt = mqtt
        self.influx = InfluxV1Client(influx)
        self.gateway_id = gateway_id
        self.cycle_s = cycle_s
        self.site = model.site
        self.material_units = {m: mat.unit for m, mat in model.materials.items()}
        self.store: dict[tuple[str, str], Series] = {m.key: Series() for m in model.meters()}
        self.window_ns = int(model.config.tap_lookback_h * 2 * NS_PER_H)
        # derived state kept for period sums: record id -> record, (asset, role, start) -> bucket
        self.records: dict[str, ProductionRecord] = {}
        self.intervals: dict[tuple[str, str, int], IntervalRow] = {}
        # the latest figure per (scope, subject, period kind): what the API shows
        self.latest: dict[tuple[str, str, str], Kpi] = {}
        self.latest_balances: dict[tuple[str, str], BalanceRow] = {}
        self.horizon_ns = 0
        self.cycles = 0
        self.readings = 0
        self.pending_lines: list[str] = []  # derived lines InfluxDB has not accepted yet
        self.rejected_lines = 0
        self.cycle_errors = 0
        self.batches = 0
        self.rejections = Rejections("energy")  # messages of the stream the books could not take
        self.early_dropped = 0  # batches beyond EARLY_BATCHES_MAX while loading state
        self.max_ahead_ns = int(model.config.max_clock_ahead_s * 1e9)
        self.ahead_of_clock = 0  # readings left out: their source time was ahead of the gateway clock
        self._ahead_devices: set[str] = set()
        # batches held while loading state; None marks where a new (not resumed) MQTT session began
        self._early: deque[ScanBatch | None] | None = None
        self.gaps = SessionGaps(d for d, _ in self.store)
        self.read_back = 0  # readings read back from InfluxDB for spans a new session missed
        self.subscribed = asyncio.Event()
        self.database_ready = asyncio.Event()
        self._dirty_from: int | None = None
        self._outbox = Outbox(mqtt, f"{mqtt.client_id_prefix}-energy-out-{gateway_id}")
        self._cycle_done = asyncio.Condition()
        self.extensions: list[BooksExtension] = []

    # --- live input (hot path) -------------------------------------------------------------------

    def handle(self, batch: ScanBatch) -> None:
        """Keep the readings of accounting meters; everything else is ignored at a dict lookup."""
        if self._early is not None:  # still loading state at start: keep the batch for afterwards
            if len(self._early) == self._early.maxlen:
                self.early_dropped += 1
            self._early.append(batch)
            return
        store = self.store
        device = batch.device
        earliest = self._dirty_from
        kept = 0
        # against the gateway's clock, not the wall clock: a step of the wall clock back an hour would
        # otherwise make every device that keeps good time look an hour ahead, and leave it out
        ahead_limit = GATEWAY_CLOCK.now_ns() + self.max_ahead_ns
        awaiting = self.gaps.awaiting
        if awaiting and device in awaiting:  # a new session's first batch of the device: where its stream began
            self.gaps.first_live(batch, store)
        for r in batch.readings:
            series = store.get((device, r.point))
            if series is None:
                continue
            if r.source_time_ns > ahead_limit:
                self._ahead_of_clock(device, r.source_time_ns - ahead_limit + self.max_ahead_ns)
                continue
            changed_from = series.add(r.source_time_ns, r.value, r.quality)
            kept += 1
            if earliest is None or changed_from < earliest:
                earliest = changed_from
        self.readings += kept
        self.batches += 1
        self._dirty_from = earliest

    def _ahead_of_clock(self, device: str, ahead_ns: int) -> None:
        """A reading from a device clock ahead of ours (a PLC clock set wrong): the books cannot place
        it, and as their newest reading it would make every other meter look silent and push the
        live window past their readings. Counted; logged once per device."""
        self.ahead_of_clock += 1
        if device not in self._ahead_devices:
            self._ahead_devices.add(device)
            log.warning(
                "energy: %s sends readings %.0f s ahead of the gateway clock; the books leave them out "
                "(check the device clock)",
                device,
                ahead_ns / 1e9,
            )

    # --- running -----------------------------------------------------------------------------------

    async def run(self) -> None:
        # subscribe before loading state from InfluxDB: on a first start there is no persistent
        # session yet, and scans published meanwhile would never reach the books; they wait in
        # `_early` and are taken in once the state is loaded
        self._early = deque(maxlen=EARLY_BATCHES_MAX)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._consume(), name="energy-mqtt-in")
            await self._load_state()
            early, self._early = self._early, None
            if self.early_dropped:
                log.warning(
                    "energy: %d scan batches dropped while loading state; POST /api/v1/admin/recompute "
                    "re-derives their span from InfluxDB",
                    self.early_dropped,
                )
            for batch in early:
                if batch is None:
                    self.gaps.new_session()
                else:
                    self.handle(batch)
            tg.create_task(self._outbox.run(), name="energy-mqtt-out")
            tg.create_task(self._loop(), name="energy-books")

    async def _load_state(self) -> None:
        await self._ensure_database()
        now = time.time_ns()
        await self.load_derived(self._keep_from(now), now + NS_PER_H)
        # the readings of the last tap lookback, so the first cycles re-derive with context and
        # do not replace whole buckets and heats written before a restart with partial ones
        lookback = int(self.model.config.tap_lookback_h * NS_PER_H)
        try:
            self.store = await self.read_raw(now - lookback, now + NS_PER_H)
        except InfluxError as exc:
            log.warning("energy: could not read back recent readings (%s); starting from live data", exc)
            return
        self._dirty_from = self._underived_from()

    def _underived_from(self) -> int | None:
        """Where the readings loaded at start run past what the books derived from them: on a first
        start, or after the role was down while the collector and ingest went on, InfluxDB holds
        readings no bucket was made of, and no live reading may ever touch them again. The first
        cycle derives from there (the last derived bucket of the asset furthest behind, again)."""
        first = min((s.times[0] for s in self.store.values() if s.times), default=None)
        if first is None:
            return None
        newest_end: dict[str, int] = {}
        for row in self.intervals.values():
            newest_end[row.asset] = max(newest_end.get(row.asset, row.end_ns), row.end_ns)
        if not newest_end:
            return first
        return max(first, min(newest_end.values()) - self.books.interval_ns)

    async def aclose(self) -> None:
        await self.influx.aclose()

    async def _ensure_database(self) -> None:
        backoff = Backoff(first=0.5, limit=30.0)
        while True:
            try:
                # a least-privilege user may not create it: then `ferrogate db-init` has
                created = await self.influx.prepare()
            except InfluxError as exc:
                if not exc.retryable:
                    raise
                await asyncio.sleep(backoff.next_delay())
            else:
                if not created:
                    database = self.influx.config.database
                    log.info("energy books: database %s is not created by the gateway (db-init)", database)
                self.database_ready.set()
                return

    async def _consume(self) -> None:
        # a plain (non-shared) subscription: the books need every scan, whoever else listens
        ident = f"{self.mqtt.client_id_prefix}-energy-{self.gateway_id}"
        await follow_telemetry(
            self.mqtt,
            self.site,
            ident,
            self.handle,
            self.subscribed,
            qos=1,
            rejections=self.rejections,
            on_session=self.on_session,
        )

    def on_session(self, resumed: bool) -> None:
        """Each MQTT connection, before its messages: a session the broker did not resume had no
        queue for the books, so what was published before it is read back (`_read_back`)."""
        if resumed:
            return
        log.info("energy: new MQTT session (no queue kept for the books): reading back what it missed")
        if self._early is not None:
            self._early.append(None)  # in order with the batches held while loading state
        else:
            self.gaps.new_session()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.cycle_s)
            try:
                await self.cycle()
            except InfluxError as exc:
                log.warning("energy cycle could not write to InfluxDB (%s); retrying next cycle", exc)
            except Exception:  # a fault in one cycle must not stop the books: it is counted and logged
                self.cycle_errors += 1
                log.exception("energy cycle failed")
            async with self._cycle_done:
                self._cycle_done.notify_all()

    async def wait_cycle(self) -> None:
        """Wait until the next cycle of the running loop has ended (tests and shutdown)."""
        async with self._cycle_done:
            await self._cycle_done.wait()

    # --- one live cycle ------------------------------------------------------------------------------

    async def cycle(self) -> None:
        if self.pending_lines:
            await self._write([])
        if self.gaps.ready:  # only after a new MQTT session: no query on an ordinary cycle
            await self._read_back()
        dirty = self._dirty_from
        if dirty is not None:
            self._dirty_from = None
            newest = max((t for s in self.store.values() if (t := s.last_usable_ns) is not None), default=dirty)
            dirty = min(dirty, newest)  # bad readings past every usable one change nothing to re-derive
            keep_from = newest - self.window_ns
            lookback = int(self.model.config.tap_lookback_h * NS_PER_H)
            if dirty < keep_from + lookback:
                # older than the live window can re-derive: recompute that part from InfluxDB
                await self.recompute(dirty, keep_from + lookback)
                dirty = keep_from + lookback
            step = self.books.interval_ns
            start = dirty - dirty % step - step
            derived = self.books.derive(self.store, start, newest + 1, self._since(start, keep_from))
            self.horizon_ns = max(self.horizon_ns, derived.horizon_ns)
            await self._apply(derived.records, derived.intervals, start, derived.horizon_ns, derived.electricity)
            for series in self.store.values():
                series.prune_before(keep_from)
        self.cycles += 1

    async def _read_back(self) -> None:
        """Take in, from InfluxDB, the readings a new session missed, for every device whose span
        InfluxDB now holds whole: it holds the span's marker (ingest stores a device's batches in the
        order they were published). One query per device with a span open, only after a new session."""
        site = _q(self.site)
        for device, gap in list(self.gaps.ready.items()):
            marker = await self.influx.query(
                f"SELECT count(quality) FROM reading WHERE site='{site}' AND device='{_q(device)}' "
                f"AND point='{_q(gap.point)}' AND time = {gap.marker_ns}"
            )
            if any(s.values and s.values[0][1] for s in marker):
                await self._take_back(device, gap)  # InfluxError: the span stays open for the next cycle
                self.gaps.take(device)

    async def _take_back(self, device: str, gap: Gap) -> None:
        """The device's readings from the span's start to the newest one the books hold of it (those
        after the marker came live too: the same reading again is an overwrite); each re-derives what
        it touches, as a late one does."""
        now = GATEWAY_CLOCK.now_ns()
        lookback = int(self.model.config.tap_lookback_h * NS_PER_H)
        start = gap.start_ns if gap.start_ns is not None else min(gap.marker_ns, now) - lookback
        keys = [key for key in self.store if key[0] == device]
        # what was published before the marker is no newer than what came after it (a device's clock
        # runs forward); the marker itself may be a bad reading stamped by the gateway's clock
        newest = max([gap.marker_ns, *(self.store[k].times[-1] for k in keys if self.store[k].times)])
        end = min(newest + 1, now + self.max_ahead_ns)
        earliest = self._dirty_from
        taken = 0
        for key, found in (await self.read_raw(start, end, keys)).items():
            series = self.store[key]
            for t, value, quality in zip(found.times, found.values, found.qualities, strict=True):
                changed_from = series.add(t, value, quality)
                earliest = changed_from if earliest is None else min(earliest, changed_from)
                taken += 1
        self._dirty_from = earliest
        self.read_back += taken
        log.info("energy: read back %d readings of %s from InfluxDB (the span a new session missed)", taken, device)

    def _since(self, start_ns: int, floor_ns: int) -> int:
        """Readings needed to re-derive from `start_ns`: back to each unit's tap before it (known
        from the records), else the whole tap lookback."""
        lookback = start_ns - int(self.model.config.tap_lookback_h * NS_PER_H)
        previous: dict[str, int] = {}
        for rec in self.records.values():
            if rec.end_ns < start_ns and rec.end_ns > previous.get(rec.unit, lookback):
                previous[rec.unit] = rec.end_ns
        tapping = [u.asset for u in self.model.units if u.tap_counter is not None]
        since = min((previous.get(u, lookback) for u in tapping), default=start_ns)
        # one scan before the tap, so the counter step of that tap is seen again
        return max(floor_ns, since - int(self.model.config.max_wait_s * 1e9))

    async def _apply(
        self,
        records: list[ProductionRecord],
        intervals: list[IntervalRow],
        start_ns: int,
        end_ns: int,
        electricity: Mapping[str, Windowed],
    ) -> None:
        """Take over re-derived rows for [start_ns, end_ns), write and publish what changed, and
        re-sum every period the span touches."""
        root = self.mqtt.topic_root
        lines: list[str] = []
        changed_records = []
        taken = []
        for rec in records:
            old = self.records.get(rec.id)
            if old is not None and _partial(rec.flags) and not _partial(old.flags):
                continue  # a whole record is not replaced by a partial one
            taken.append(rec)
            if old != rec:
                self.records[rec.id] = rec
                changed_records.append(rec)
        changed_rows: dict[str, list[IntervalRow]] = {}
        for row in intervals:
            old_row = self.intervals.get(row.key)
            if old_row != row and not (old_row is not None and _partial(row.flags) and not _partial(old_row.flags)):
                self.intervals[row.key] = row
                changed_rows.setdefault(row.asset, []).append(row)
        for rec in changed_records:
            lines.append(wire.record_line(self.site, rec, self.material_units))
            self._outbox.put(
                Message(
                    wire.record_topic(root, self.site, rec.unit),
                    wire.record_payload(self.site, rec, self.material_units),
                )
            )
        for asset, rows in changed_rows.items():
            lines.extend(wire.interval_line(self.site, r) for r in rows)
            self._outbox.put(
                Message(wire.interval_topic(root, self.site, asset), wire.intervals_payload(self.site, asset, rows))
            )
        extended = False
        for ext in self.extensions:
            more_lines, messages = ext.on_records(taken, electricity)
            extended = extended or bool(more_lines)
            lines.extend(more_lines)
            for message in messages:
                self._outbox.put(message)
        if changed_records or changed_rows or extended:
            lines.extend(self._period_lines(self._periods(start_ns, max(end_ns, start_ns + 1)), end_ns))
        self._prune(end_ns)
        await self._write(lines)

    def _periods(self, start_ns: int, end_ns: int) -> list[Period]:
        return [p for kind in ALL_PERIODS for p in self.model.calendar.periods(kind, start_ns, end_ns)]

    def _period_lines(self, periods: Iterable[Period], horizon_ns: int) -> list[str]:
        root = self.mqtt.topic_root
        records, intervals = list(self.records.values()), list(self.intervals.values())
        lines: list[str] = []
        newest: dict[PeriodKind, int] = {}
        for p in periods:
            newest[p.kind] = max(newest.get(p.kind, p.start_ns), p.start_ns)
        summed: list[PeriodSums] = []
        for period in periods:
            complete = period.end_ns <= horizon_ns
            current = newest[period.kind] == period.start_ns
            kpis = self.books.kpis(period, complete, records, intervals)
            summed.append(PeriodSums(period, complete, current, kpis))
            for kpi in kpis:
                lines.append(wire.kpi_line(self.site, kpi))
                key = (kpi.scope, kpi.subject, period.kind.value)
                if current and (key not in self.latest or self.latest[key].period.start_ns <= period.start_ns):
                    self.latest[key] = kpi
                topic = wire.kpi_topic(root, self.site, kpi)
                self._outbox.put(Message(topic, wire.kpi_payload(self.site, kpi), retain=current))
            for row in self.books.balances(period, complete, intervals):
                lines.append(wire.balance_line(self.site, row))
                if current:
                    self.latest_balances[(row.balance.group, period.kind.value)] = row
                topic = wire.balance_topic(root, self.site, row)
                self._outbox.put(Message(topic, wire.balance_payload(self.site, row), retain=current))
        for ext in self.extensions:
            more_lines, messages = ext.on_periods(summed, intervals)
            lines.extend(more_lines)
            for message in messages:
                self._outbox.put(message)
        return lines

    def _keep_from(self, now_ns: int) -> int:
        """Derived rows are kept from the start of the previous month (month sums need them)."""
        month = self.model.calendar.period_of(PeriodKind.month, now_ns)
        return self.model.calendar.period_of(PeriodKind.month, month.start_ns - 1).start_ns

    def _prune(self, now_ns: int) -> None:
        keep = self._keep_from(now_ns)
        for rid in [rid for rid, r in self.records.items() if r.end_ns < keep]:
            del self.records[rid]
        for key in [k for k in self.intervals if k[2] < keep]:
            del self.intervals[key]
        for ext in self.extensions:
            ext.prune(keep)

    async def _write(self, lines: list[str]) -> None:
        """Write derived lines; what InfluxDB does not take now stays pending for the next cycle
        (the rows are already in memory and would not be re-sent otherwise)."""
        self.pending_lines.extend(lines)
        while self.pending_lines:
            chunk = self.pending_lines[:5000]
            try:
                await self.influx.write(chunk, retention_policy=DERIVED_POLICY)
            except InfluxError as exc:
                if exc.retryable:
                    raise
                # rejected for good (bad lines): keep the reason and the lines visible, then move on
                self.rejected_lines += len(chunk)
                log.error("InfluxDB rejected %d derived lines: %s; first line: %s", len(chunk), exc, chunk[0])
            del self.pending_lines[: len(chunk)]

    # --- recompute from InfluxDB ---------------------------------------------------------------------

    async def read_raw(
        self,
        start_ns: int,
        end_ns: int,
        keys: Iterable[tuple[str, str]] | None = None,
        into: dict[tuple[str, str], Series] | None = None,
    ) -> dict[tuple[str, str], Series]:
        """The accounting meters' readings (or those of `keys`, or of `into`'s series, which they
        are added to) in [start_ns, end_ns) from measurement `reading`."""
        wanted = self.store if keys is None else keys
        store = into if into is not None else {key: Series() for key in wanted}
        if not store:
            return store
        match = " OR ".join(f"(device='{_q(d)}' AND point='{_q(p)}')" for d, p in store)
        t = start_ns
        while t < end_ns:
            t1 = min(end_ns, t + RAW_QUERY_SPAN_NS)
            q = (
                f"SELECT value, quality FROM reading WHERE site='{_q(self.site)}' AND ({match}) "
                f"AND time >= {t} AND time < {t1} GROUP BY device, point"
            )
            async for chunk in self.influx.query_chunks(q, RAW_QUERY_CHUNK_ROWS):
                for s in chunk:
                    key = (s.tags["device"], s.tags["point"])
                    rows = s.values  # [time, value, quality], in time order
                    values, qualities = [row[1] for row in rows], [row[2] for row in rows]
                    if None in qualities or None in values:  # scans at C speed; rows with a None checked
                        await self._reread_torn(key, rows, values, qualities)
                    store[key].extend(
                        [int(row[0]) for row in rows],
                        [None if v is None else float(v) for v in values],
                        [_QUALITY.get(q) or Quality(q or "bad") for q in qualities],
                    )
            t = t1
        return store

    async def _reread_torn(
        self, key: tuple[str, str], rows: list[list[Any]], values: list[Any], qualities: list[Any]
    ) -> None:
        """Reads again, one by one, the rows of a series caught half written (InfluxDB 1.x commits a
        point's fields one at a time: a read beside ingest's write can see a value without its
        quality), in place; InfluxError if one stays torn (gateway/influx.py)."""
        device, point = key
        for i, row in enumerate(rows):
            if reading_whole(values[i], qualities[i]):
                continue
            q = (
                f"SELECT value, quality FROM reading WHERE site='{_q(self.site)}' AND device='{_q(device)}' "
                f"AND point='{_q(point)}' AND time = {int(row[0])}"
            )
            found = [r for s in await self.influx.query_whole(q, _reading_row_whole) for r in s.rows()]
            values[i], qualities[i] = (found[0]["value"], found[0]["quality"]) if found else (None, None)

    @property
    def bracket_ns(self) -> int:
        """How far past a span its readings are read to derive it: the books' horizon is where every
        reporting meter has readings, so a meter whose next reading lies past the span's end (one that
        reports by exception, or late) must be seen reading on, or the horizon falls back to its last
        reading inside the span and the records ending after it are not made. The books wait
        `max_wait_s` for a late meter, so readings up to that far past the end are what they saw."""
        return int(self.model.config.max_wait_s * 1e9)

    async def derive_stored(self, start_ns: int, end_ns: int, since_ns: int) -> Derived:
        """The books of (start_ns, end_ns] derived afresh from the readings in InfluxDB since
        `since_ns` (read on past the end, `bracket_ns`), changing nothing: what a recompute would
        make of the span, for checking the books against their readings."""
        store = await self.read_raw(since_ns, end_ns + self.bracket_ns)
        return await asyncio.to_thread(self.books.derive, store, start_ns, end_ns, since_ns)

    async def recompute(self, start_ns: int, end_ns: int) -> None:
        """Re-derive [start_ns, end_ns) from the raw readings in InfluxDB (replacing what was
        derived there before) and re-sum every period it touches. A day at a time, each from the
        readings since `tap_lookback_h` before it: those of the day before are kept, not read again,
        so memory holds a day and its lookback whatever the span."""
        lookback = int(self.model.config.tap_lookback_h * NS_PER_H)
        beyond = self.bracket_ns  # readings past each day's end too, so the horizon reaches it
        step = self.books.interval_ns
        start_ns -= start_ns % step
        day_ns = 24 * NS_PER_H
        store = {key: Series() for key in self.store}
        read_to = start_ns - lookback
        t = start_ns
        while t < end_ns:
            t1 = min(end_ns, t + day_ns)
            for series in store.values():
                series.drop_before(t - lookback)  # what reading [t - lookback, t1 + beyond) would give
            await self.read_raw(max(read_to, t - lookback), t1 + beyond, into=store)
            read_to = t1 + beyond
            # pure and seconds long for a day of 1-second readings: in a thread, so the event loop
            # (MQTT keepalives, the API) is not held that long; the books are changed only below
            derived = await asyncio.to_thread(self.books.derive, store, t, t1)
            # what derive makes for the day is replaced: buckets starting in [t, t1), records ending
            # in (t, t1] (a record ending at t1 is the day's own, not the next day's to drop)
            await self._delete_derived(t, t1)
            for rid in [rid for rid, r in self.records.items() if t < r.end_ns <= t1]:
                del self.records[rid]
            for key in [k for k in self.intervals if t <= k[2] < t1]:
                del self.intervals[key]
            for ext in self.extensions:
                ext.forget(t, t1)
            await self._apply(derived.records, derived.intervals, t, min(t1, derived.horizon_ns), derived.electricity)
            del derived  # its curves are a day's worth: not kept while the next day is derived
            t = t1
        # periods reaching outside what is kept in memory: sum them from what InfluxDB holds
        keep = self._keep_from(time.time_ns())
        if start_ns < keep:
            await self.load_derived(self.model.calendar.period_of(PeriodKind.month, start_ns).start_ns, keep)
            await self._write(self._period_lines(self._periods(start_ns, end_ns), self.horizon_ns or end_ns))

    async def _delete_derived(self, start_ns: int, end_ns: int) -> None:
        """Buckets (time = start) in [start_ns, end_ns); records and the extensions' per-record rows
        (time = end) in (start_ns, end_ns]."""
        by_end = (wire.RECORD, *(m for ext in self.extensions for m in ext.measurements))
        spans = [(wire.INTERVAL, f"time >= {start_ns} AND time < {end_ns}")]
        spans += [(m, f"time > {start_ns} AND time <= {end_ns}") for m in by_end]
        for measurement, span in spans:
            await self.influx.query(f"DELETE FROM {measurement} WHERE site='{_q(self.site)}' AND {span}", epoch=None)

    async def load_derived(self, start_ns: int, end_ns: int) -> None:
        """Records and buckets written before (e.g. by a previous run), so period sums are whole."""
        where = f"site='{_q(self.site)}' AND time >= {start_ns} AND time < {end_ns}"
        try:
            records, rows = await read_derived(
                self.influx, self.site, start_ns, end_ns, self.material_units, self.books.interval_ns
            )
        except InfluxError as exc:
            log.warning("energy: could not load derived rows (%s); period sums start from live data", exc)
            return
        for rec in records:
            self.records.setdefault(rec.id, rec)
        for iv in rows:
            self.intervals.setdefault(iv.key, iv)
        for ext in self.extensions:
            try:
                await ext.load(self.influx, where)
            except InfluxError as exc:
                log.warning("energy: an extension could not load its rows (%s); its sums start from live data", exc)


async def read_derived(
    influx: InfluxV1Client,
    site: str,
    start_ns: int,
    end_ns: int,
    material_units: Mapping[str, str],
    interval_ns: int,
) -> tuple[list[ProductionRecord], list[IntervalRow]]:
    """The books' records (by end) and buckets (by start) stored in [start_ns, end_ns); InfluxError if unreadable."""
    where = f"site='{_q(site)}' AND time >= {start_ns} AND time < {end_ns}"
    records = await influx.query_whole(
        f'SELECT * FROM "{DERIVED_POLICY}".{wire.RECORD} WHERE {where} GROUP BY asset, product, kind',
        wire.RECORD_WHOLE,
    )
    rows = await influx.query_whole(
        f'SELECT * FROM "{DERIVED_POLICY}".{wire.INTERVAL} WHERE {where} GROUP BY asset, role, source, unit',
        wire.INTERVAL_WHOLE,
    )
    return (
        [wire.record_from_row(s.tags, row, material_units) for s in records for row in s.rows()],
        [wire.interval_from_row(s.tags, row, interval_ns) for s in rows for row in s.rows()],
    )


def _reading_row_whole(row: Mapping[str, Any]) -> bool:
    return reading_whole(row.get("value"), row.get("quality"))


def _partial(flags: Iterable[str]) -> bool:
    """Rows derived from readings that did not cover their whole window (e.g. just after a restart)."""
    return any(f in ("partial_coverage", NO_PREVIOUS_TAP) for f in flags)


def _q(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def start_accounting(plant: PlantFile, gateway_id: str) -> AccountingService:
    """The energy role's service for a plant file with an `accounting` section (already checked
    when the file was loaded, so resolving cannot fail here unless the file was bypassed)."""
    model, problems = resolve(plant, plant.accounting)
    if model is None or plant.mqtt is None or plant.influxdb is None:
        reasons = "; ".join(msg for _, msg in problems) or "the energy role needs 'mqtt' and 'influxdb' sections"
        raise ValueError(f"cannot start the energy role: {reasons}")
    return AccountingService(model, plant.mqtt, plant.influxdb, gateway_id)

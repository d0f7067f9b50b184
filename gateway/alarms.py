"""Alarms for the energy center: device offline, stale data, configured limits, and alarms other
parts raise (counter reset, meter balance, KPI worse than baseline). Pure bookkeeping: callers feed
it scan batches and the clock; the API lists and acknowledges.

An alarm is keyed by (kind, source); raising an active one again only updates it, clearing moves it
to the bounded history. Acknowledging records who and when; it does not clear the condition.
Raising, clearing and acknowledging each leave a copy of the alarm in `journal`, which the api role
writes to InfluxDB (gateway/alarm_journal.py) so the month's alarms outlive the process.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ferrogate.gateway.reading import COMM_ERROR, Quality, ScanBatch


class Severity(StrEnum):
    info = "info"
    warning = "warning"
    critical = "critical"


class Kind(StrEnum):
    device_offline = "device_offline"
    stale_data = "stale_data"
    limit_exceeded = "limit_exceeded"
    counter_reset = "counter_reset"
    balance_out_of_tolerance = "balance_out_of_tolerance"
    kpi_worse_than_baseline = "kpi_worse_than_baseline"
    emission_limit_exceeded = "emission_limit_exceeded"  # a stack's hourly average above its limit
    emission_data_flagged = "emission_data_flagged"  # a stack's hour without valid data (too few values, a flag)
    energy_limit_exceeded = "energy_limit_exceeded"  # rolling 12 months above a mandatory limit (GB 213xx)
    energy_limit_grade_worse = "energy_limit_grade_worse"  # rolling 12 months fell to a worse grade
    demand_forecast_high = "demand_forecast_high"  # 15-minute demand forecast near the maximum (docs/cost.md)


class LimitRule(BaseModel):
    """A configured limit on one point, e.g. transformer oil temperature or a pollutant concentration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    point: str = Field(pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$", description="device_id.point_id")
    name: str
    high: float | None = None
    low: float | None = None
    severity: Severity = Severity.warning

    @model_validator(mode="after")
    def _one_bound(self) -> LimitRule:
        if self.high is None and self.low is None:
            raise ValueError("give 'high', 'low' or both")
        if self.high is not None and self.low is not None and self.low >= self.high:
            raise ValueError("'low' must be below 'high'")
        return self


class AlarmsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    limits: list[LimitRule] = Field(default_factory=list)
    history: int = Field(1000, ge=10, le=1_000_000, description="cleared alarms kept for the API")

    def reference_errors(self, point_ids: Mapping[str, set[str]]) -> list[tuple[tuple[str | int, ...], str]]:
        """Each limit's point must exist (`point_ids`: device id -> its point ids)."""
        errors: list[tuple[tuple[str | int, ...], str]] = []
        for index, rule in enumerate(self.limits):
            device, _, point = rule.point.partition(".")
            if point not in point_ids.get(device, ()):
                errors.append((("alarms", "limits", index, "point"), f"no point {rule.point!r} in devices"))
        return errors


@dataclass
class Alarm:
    id: int
    kind: Kind
    source: str  # device, device.point, asset or product the alarm is about
    severity: Severity
    message: str
    raised_ns: int
    updated_ns: int
    value: float | None = None
    unit: str | None = None
    cleared_ns: int | None = None
    acked_by: str | None = None
    acked_ns: int | None = None

    @property
    def active(self) -> bool:
        return self.cleared_ns is None


JOURNAL_MAX = 10_000


@dataclass
class AlarmBook:
    history_size: int = 1000
    active: dict[tuple[Kind, str], Alarm] = field(default_factory=dict)
    history: deque[Alarm] = field(default_factory=deque)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    # (event, its time, the alarm as it stood then), drained by the journal writer; bounded so a
    # process without a database keeps only the newest
    journal: deque[tuple[str, int, Alarm]] = field(default_factory=lambda: deque(maxlen=JOURNAL_MAX))

    def _log(self, event: str, now_ns: int, alarm: Alarm) -> None:
        self.journal.append((event, now_ns, dataclasses.replace(alarm)))

    def raise_(
        self,
        kind: Kind,
        source: str,
        severity: Severity,
        message: str,
        now_ns: int,
        value: float | None = None,
        unit: str | None = None,
    ) -> Alarm:
        alarm = self.active.get((kind, source))
        if alarm is None:
            alarm = Alarm(next(self._ids), kind, source, severity, message, now_ns, now_ns, value, unit)
            self.active[(kind, source)] = alarm
            self._log("raised", now_ns, alarm)
        else:
            alarm.message, alarm.severity, alarm.updated_ns, alarm.value = message, severity, now_ns, value
        return alarm

    def clear(self, kind: Kind, source: str, now_ns: int) -> None:
        alarm = self.active.pop((kind, source), None)
        if alarm is not None:
            alarm.cleared_ns = now_ns
            self._log("cleared", now_ns, alarm)
            self.history.appendleft(alarm)
            while len(self.history) > self.history_size:
                self.history.pop()

    def acknowledge(self, alarm_id: int, who: str, now_ns: int) -> Alarm | None:
        for alarm in self.active.values():
            if alarm.id == alarm_id:
                alarm.acked_by, alarm.acked_ns = who, now_ns
                self._log("acknowledged", now_ns, alarm)
                return alarm
        return None

    def listing(self) -> list[Alarm]:
        """Active alarms (newest first), then recent cleared ones."""
        return sorted(self.active.values(), key=lambda a: -a.raised_ns) + list(self.history)


class AlarmEvaluator:
    """Raises and clears device, staleness and limit alarms from the telemetry stream."""

    def __init__(
        self, book: AlarmBook, limits: list[LimitRule], scan_interval_s: dict[str, float], stale_after_scans: float
    ) -> None:
        self.book = book
        self.scan_interval_s = scan_interval_s
        self.stale_after_scans = stale_after_scans
        self.limits: dict[tuple[str, str], LimitRule] = {}
        self.set_limits(limits)
        self.last_scan_ns: dict[str, int] = {}

    def set_limits(self, limits: list[LimitRule]) -> None:
        self.limits = {}
        for rule in limits:
            device, _, point = rule.point.partition(".")
            self.limits[(device, point)] = rule

    def on_batch(self, batch: ScanBatch, now_ns: int) -> None:
        device = batch.device
        self.last_scan_ns[device] = now_ns
        self.book.clear(Kind.stale_data, device, now_ns)
        readings = batch.readings
        if readings and all(r.quality is Quality.BAD and (r.reason or "").startswith(COMM_ERROR) for r in readings):
            self.book.raise_(
                Kind.device_offline,
                device,
                Severity.critical,
                f"device {device} does not answer: {readings[0].reason}",
                now_ns,
            )
        else:
            self.book.clear(Kind.device_offline, device, now_ns)
        if not self.limits:
            return
        for r in readings:
            rule = self.limits.get((device, r.point))
            if rule is None or r.value is None:
                continue
            source = f"{device}.{r.point}"
            if rule.high is not None and r.value > rule.high:
                self.book.raise_(
                    Kind.limit_exceeded,
                    source,
                    rule.severity,
                    f"{rule.name}: {r.value:g} {r.unit} above {rule.high:g}",
                    now_ns,
                    r.value,
                    r.unit,
                )
            elif rule.low is not None and r.value < rule.low:
                self.book.raise_(
                    Kind.limit_exceeded,
                    source,
                    rule.severity,
                    f"{rule.name}: {r.value:g} {r.unit} below {rule.low:g}",
                    now_ns,
                    r.value,
                    r.unit,
                )
            else:
                self.book.clear(Kind.limit_exceeded, source, now_ns)

    def check_stale(self, now_ns: int) -> None:
        """Call periodically: a device with no scan for `stale_after_scans` intervals is stale."""
        for device, interval in self.scan_interval_s.items():
            last = self.last_scan_ns.get(device)
            if last is not None and (now_ns - last) / 1e9 > self.stale_after_scans * interval:
                age = (now_ns - last) / 1e9
                self.book.raise_(
                    Kind.stale_data, device, Severity.warning, f"no data from {device} for {age:.0f} s", now_ns
                )

"""Emission limits as alarms: each stack limit is checked on the logger's hourly average of its
pollutant (or the O2-corrected one) as it arrives. An hour above its limit raises
`emission_limit_exceeded` (critical by default), a valid hour within it clears it; an hour without
valid data raises `emission_data_flagged` (info) with the reason and is never compared."""

from __future__ import annotations

from ferrogate.gateway.alarms import AlarmBook, Kind, Severity
from ferrogate.gateway.pollution.config import EmissionLimit, PollutionConfig
from ferrogate.gateway.reading import Quality, ScanBatch
from ferrogate.gateway.timeutil import iso_utc


class EmissionLimitEvaluator:
    def __init__(self, book: AlarmBook, config: PollutionConfig) -> None:
        self.book = book
        # (device, point) -> [(stack id, limit)]
        self.rules: dict[tuple[str, str], list[tuple[str, EmissionLimit]]] = {}
        for stack in config.stacks:
            for limit in stack.limits:
                ref = stack.limit_point(limit)
                if ref is not None:
                    device, _, point = ref.partition(".")
                    self.rules.setdefault((device, point), []).append((stack.id, limit))

    def on_batch(self, batch: ScanBatch, now_ns: int) -> None:
        if not self.rules:
            return
        for r in batch.readings:
            rules = self.rules.get((batch.device, r.point))
            if rules is None:
                continue
            hour = iso_utc(r.source_time_ns)
            for stack, limit in rules:
                source = f"{stack}.{limit.pollutant}"
                if r.quality is not Quality.GOOD or r.value is None:
                    self.book.raise_(
                        Kind.emission_data_flagged,
                        source,
                        Severity.info,
                        f"{stack} {limit.pollutant} hour {hour}: no valid average ({r.reason or r.quality.value})",
                        now_ns,
                    )
                    continue
                self.book.clear(Kind.emission_data_flagged, source, now_ns)
                factor = limit.factor()
                if r.value > factor.value:
                    what = "corrected " if limit.corrected else ""
                    self.book.raise_(
                        Kind.emission_limit_exceeded,
                        source,
                        Severity(limit.severity),
                        f"{stack} {limit.pollutant} {what}hourly average {r.value:g} {r.unit} above its limit "
                        f"{factor.value:g} {factor.unit} ({factor.source}{'' if factor.verified else ', UNVERIFIED'}) "
                        f"in the hour from {hour}",
                        now_ns,
                        r.value,
                        r.unit,
                    )
                else:
                    self.book.clear(Kind.emission_limit_exceeded, source, now_ns)

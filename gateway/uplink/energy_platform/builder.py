"""One platform period's message from the books (pure): the books' own period sums (`Books.kpis`,
the same code the API's figures come from) over the platform's period, scaled into the mapping's
units, with the completeness of the meter buckets and the quality rules' verdict.

The values are the books' figures: comprehensive energy consumption by GB/T 2589-2020 with the
coefficients the accounting section resolved (electricity at its equivalent value unless
configured otherwise), energy by carrier, output and unit consumption per product.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import reduce
from typing import Any
from zoneinfo import ZoneInfo

from ferrogate.gateway.compliance.model import build as build_compliance
from ferrogate.gateway.config import PlantConfig
from ferrogate.gateway.energy.aggregate import Period, PeriodKind
from ferrogate.gateway.energy.books import EXPORT, IMPORT, Books, IntervalRow, Kpi
from ferrogate.gateway.energy.counters import worst
from ferrogate.gateway.energy.model import AccountingModel
from ferrogate.gateway.energy.production import ProductionRecord
from ferrogate.gateway.reading import Quality
from ferrogate.gateway.timeutil import ns_to_datetime
from ferrogate.gateway.uplink.energy_platform import quality
from ferrogate.gateway.uplink.energy_platform.mapping import Item, PlatformMapping
from ferrogate.gateway.uplink.energy_platform.periods import PlatformPeriod, misaligned, parts

FORMAT = "ferrogate-energy-platform/1"
PART_NAMES = {"day": "quarter-hours", "month": "days"}


def limit_standards(plant: PlantConfig, model: AccountingModel) -> dict[str, str | None]:
    """Product -> the code of the limit standard the compliance books grade it by (None: none)."""
    compliance = build_compliance(plant, getattr(plant, "compliance", None), model)[0]
    if compliance is None:
        return {}
    return {pid: (lim.entry.standard.code if lim.entry is not None else None) for pid, lim in compliance.limits.items()}


def expected_series(model: AccountingModel) -> list[tuple[str, str]]:
    """(asset, meter role) of every bucket series the books derive (books.Books.derive)."""
    out = [(a, IMPORT) for a in model.consumers] + [(a, EXPORT) for a in model.generators]
    if model.incomer_export is not None and model.config.incomer is not None:
        out.append((model.config.incomer, EXPORT))
    out += [(asset, role) for asset, role, _ in model.water]
    for unit in model.units:
        out += [(unit.asset, role) for role in unit.metered_roles.values()]
        if unit.product_counter is not None:
            out.append((unit.asset, "product_counter"))
    return sorted(set(out))


@dataclass
class Built:
    message: dict[str, Any]
    failures: list[quality.Failure]
    sums: dict[str, float]  # additive code -> value as sent (for the parent period's parts rule)
    passed: bool = field(init=False)

    def __post_init__(self) -> None:
        self.passed = not self.failures


class MessageBuilder:
    def __init__(
        self,
        model: AccountingModel,
        mapping: PlatformMapping,
        zone: ZoneInfo,
        standards: Mapping[str, str | None] | None = None,
    ) -> None:
        self.model, self.mapping, self.zone = model, mapping, zone
        self.standards = dict(standards or {})  # product -> the limit standard grading it (compliance books)
        self.books = Books(model)
        self.series = expected_series(model)

    def message_id(self, p: PlatformPeriod, code: str | None = None) -> str:
        """Stable across rebuilds and resends: the platform de-duplicates by it."""
        base = f"{self.mapping.enterprise_code}:{p.kind}:{p.label}"
        return base if code is None else f"{base}:{code}"

    def build(
        self,
        p: PlatformPeriod,
        records: Iterable[ProductionRecord],
        intervals: Iterable[IntervalRow],
        sent_parts: Mapping[str, tuple[float, int]],
    ) -> Built:
        inside: list[IntervalRow] = []
        stray: list[str] = []  # buckets that overlap the period but cross its boundary
        for r in intervals:
            if r.start_ns < p.end_ns and r.end_ns > p.start_ns:
                if p.start_ns <= r.start_ns and r.end_ns <= p.end_ns:
                    inside.append(r)
                else:
                    stray.append(f"{r.asset}/{r.role}@{_local_iso(r.start_ns, self.zone)}")
        complete_pct = self.completeness(p, inside)
        # the books' period sums over the platform's window (a quarter counts as a day for the
        # reference data's year and edition: Period.local_date reads the label's date)
        books_period = Period(
            PeriodKind.month if p.kind == "month" else PeriodKind.day, p.start_ns, p.end_ns, p.label[:10]
        )
        kpis = self.books.kpis(books_period, True, list(records), inside)
        plant = next(k for k in kpis if k.scope == "plant")
        products = {k.subject: k for k in kpis if k.scope == "product"}
        items = self.mapping.items_for(p.kind)
        cover = self.electricity_cover(p, inside)
        values = {item.code: self._value(item, plant, products, complete_pct, cover) for item in items}
        failures = quality.completeness(complete_pct)
        failures += quality.alignment(misaligned(p, self.zone), stray)
        additive = {i.code: values[i.code][0] for i in items if i.additive}
        if p.kind != "quarter":
            expected = len(parts(p, self.zone))
            # only items also sent for the finer period can be checked against their parts
            finer = "quarter" if p.kind == "day" else "day"
            checked = {c: v for c, v in additive.items() if finer in self._item(c).periods}
            failures += quality.parts(checked, sent_parts, expected, PART_NAMES[p.kind])
        by_code: dict[str, list[str]] = {}
        for f in failures:
            by_code.setdefault(f.code, []).append(f.rule)
        docs = []
        for item in items:
            value, q, flags = values[item.code]
            doc: dict[str, Any] = {
                "id": self.message_id(p, item.code),
                "code": item.code,
                "value": value,
                "unit": item.unit,
                "quality": q,
                "flags": sorted({*flags, *by_code.get(item.code, []), *by_code.get("", [])}),
            }
            if item.indicator in ("output", "unit_consumption"):
                doc["product"] = item.subject
                doc["limit_standard"] = self.standards.get(item.subject)
            docs.append(doc)
        message = {
            "format": FORMAT,
            "message_id": self.message_id(p),
            "enterprise_code": self.mapping.enterprise_code,
            "period": {
                "type": p.kind,
                "label": p.label,
                "start": _local_iso(p.start_ns, self.zone),
                "end": _local_iso(p.end_ns, self.zone),
            },
            "completeness_percent": round(complete_pct, 2),
            "quality": {"passed": not failures, "failures": [f.doc() for f in failures]},
            "items": docs,
        }
        sums = {code: v for code, v in additive.items() if v is not None}
        return Built(message, failures, sums)

    def completeness(self, p: PlatformPeriod, inside: list[IntervalRow]) -> float:
        """Good buckets of the expected series as a share of all the period should hold, percent."""
        if not self.series:
            return 100.0
        per_series = math.ceil((p.end_ns - p.start_ns) / self.books.interval_ns)
        wanted = set(self.series)
        good = sum(
            1
            for r in inside
            if (r.asset, r.role) in wanted and r.quality is Quality.GOOD and "partial_coverage" not in r.flags
        )
        return min(100.0, good / (per_series * len(wanted)) * 100.0)

    def electricity_cover(self, p: PlatformPeriod, inside: list[IntervalRow]) -> float:
        """Share of the buckets present of the meters the plant's electricity is summed from (the
        incomer, else the units' own meters), 0..1."""
        incomer = self.model.config.incomer
        assets = {incomer} if incomer is not None else {a for u in self.model.units for a in u.electricity}
        if not assets:
            return 1.0
        per_series = math.ceil((p.end_ns - p.start_ns) / self.books.interval_ns)
        present = sum(1 for r in inside if r.role == IMPORT and r.asset in assets)
        return min(1.0, present / (per_series * len(assets)))

    def _item(self, code: str) -> Item:
        return next(i for i in self.mapping.items if i.code == code)

    def _value(
        self, item: Item, plant: Kpi, products: Mapping[str, Kpi], complete_pct: float, electricity_cover: float
    ) -> tuple[float | None, str, list[str]]:
        """(value in the platform's unit or None, quality, flags) of one item."""
        if item.indicator == "completeness":
            return self._round(complete_pct * item.scale), "good", []
        if complete_pct == 0.0:  # not one good bucket: the books' sums would say 0, the truth is unknown
            return None, Quality.BAD.value, [*plant.flags, "no_data"]
        if item.indicator == "comprehensive":
            return self._scaled(plant.fields.get("comprehensive_kgce"), item), plant.quality.value, list(plant.flags)
        if item.indicator == "electricity":
            value = self._scaled(plant.fields.get(f"{item.basis}_kwh"), item)
            if electricity_cover == 0.0:  # the books count a meter without buckets as 0 kWh: no figure, not 0
                return None, Quality.BAD.value, [*plant.flags, "no_data"]
            if electricity_cover < 1.0:
                return value, Quality.UNCERTAIN.value, [*plant.flags, "partial_data"]
            return value, plant.quality.value, list(plant.flags)
        if item.indicator == "material":
            unit = self.model.materials[item.subject].unit
            total = sum(float(k.fields.get(f"{item.subject}_{unit}") or 0.0) for k in products.values())
            q = reduce(worst, (k.quality for k in products.values()), Quality.GOOD)
            return self._scaled(total, item), q.value, sorted({f for k in products.values() for f in k.flags})
        kpi = products.get(item.subject)
        if kpi is None:  # a product no unit makes: nothing was made
            return self._scaled(0.0 if item.indicator == "output" else None, item), "bad", ["no_unit_makes_it"]
        if item.indicator == "output":
            return self._scaled(kpi.fields.get("tonnes_t"), item), kpi.quality.value, list(kpi.flags)
        name = "kwh_per_t" if item.basis == "kwh_per_t" else "kgce_per_t"
        value = kpi.fields.get(name)
        flags = list(kpi.flags) if value is not None else [*kpi.flags, "no_output"]
        return self._scaled(value, item), kpi.quality.value if value is not None else "bad", flags

    def _scaled(self, value: Any, item: Item) -> float | None:
        if value is None or not math.isfinite(float(value)):
            return None
        return self._round(float(value) * item.scale)

    def _round(self, value: float) -> float:
        out = round(value, self.mapping.decimals)
        return 0.0 if out == 0 else out  # no "-0.0" on the wire


def _local_iso(t_ns: int, zone: ZoneInfo) -> str:
    return ns_to_datetime(t_ns).astimezone(zone).isoformat(timespec="seconds")

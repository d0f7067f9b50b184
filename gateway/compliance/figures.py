"""What the books say a unit or product used and made: the quantities the compliance layer starts
from, read from the accounting engine's month KPIs and heat/tap records (docs/accounting.md §6).

Field names follow the derived series: `tonnes_t`, `electricity_kwh`, `waste_heat_kwh`, a consumed
material as `<material>_<unit>` and its standard coal as `<material>_kgce`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Figures:
    subject: str
    tonnes: float = 0.0
    electricity_kwh: float = 0.0
    waste_heat_kwh: float = 0.0
    consumables: dict[str, float] = field(default_factory=dict)  # material -> quantity in its unit
    carriers_kgce: dict[str, float] = field(default_factory=dict)  # energy-carrier material -> kgce
    tco2_direct: float = 0.0  # as the books computed it (reference factors)
    tco2_indirect: float = 0.0  # location-based, as the books computed it
    records: int = 0
    quality: str = "good"
    complete: bool = True
    flags: tuple[str, ...] = ()

    @property
    def net_electricity_kwh(self) -> float:
        return self.electricity_kwh - self.waste_heat_kwh

    @classmethod
    def from_row(cls, subject: str, row: Mapping[str, Any], material_units: Mapping[str, str]) -> Figures:
        """A month KPI row or a heat/tap record row of the derived series."""

        def number(name: str) -> float:
            value = row.get(name)
            return float(value) if value is not None else 0.0

        consumables = {m: float(row[f"{m}_{u}"]) for m, u in material_units.items() if row.get(f"{m}_{u}") is not None}
        carriers = {m: float(row[f"{m}_kgce"]) for m in material_units if row.get(f"{m}_kgce") is not None}
        flags = row.get("flags") or ""
        return cls(
            subject,
            number("tonnes_t"),
            number("electricity_kwh"),
            number("waste_heat_kwh"),
            consumables,
            carriers,
            number("tco2_direct"),
            number("tco2_indirect"),
            int(row.get("records") or 0),
            str(row.get("quality") or "good"),
            bool(row.get("complete", True)),
            tuple(f for f in flags.split(",") if f) if isinstance(flags, str) else tuple(flags),
        )


_QUALITY_ORDER = {"good": 0, "uncertain": 1, "bad": 2}


def total(subject: str, parts: Iterable[Figures]) -> Figures:
    """Sums over units or months: sums of quantities, the worst quality, every flag."""
    parts = list(parts)
    consumables: dict[str, float] = {}
    carriers: dict[str, float] = {}
    for p in parts:
        for m, q in p.consumables.items():
            consumables[m] = consumables.get(m, 0.0) + q
        for m, q in p.carriers_kgce.items():
            carriers[m] = carriers.get(m, 0.0) + q
    quality = max((p.quality for p in parts), key=lambda q: _QUALITY_ORDER.get(q, 2), default="good")
    return Figures(
        subject,
        sum(p.tonnes for p in parts),
        sum(p.electricity_kwh for p in parts),
        sum(p.waste_heat_kwh for p in parts),
        consumables,
        carriers,
        sum(p.tco2_direct for p in parts),
        sum(p.tco2_indirect for p in parts),
        sum(p.records for p in parts),
        quality,
        all(p.complete for p in parts),
        tuple(sorted({f for p in parts for f in p.flags})),
    )


@dataclass(frozen=True, slots=True)
class MonthBooks:
    """One month of the books: figures per accounting unit and per product."""

    label: str  # YYYY-MM
    units: dict[str, Figures] = field(default_factory=dict)
    products: dict[str, Figures] = field(default_factory=dict)

    def unit(self, asset: str) -> Figures:
        return self.units.get(asset) or Figures(asset)

    def product(self, product: str) -> Figures:
        return self.products.get(product) or Figures(product)

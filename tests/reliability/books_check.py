"""The books equal a recompute, for the delivery fault tests: what the energy role wrote to InfluxDB
(its per-interval energy rows and per-interval production records) against the same books derived
again, by the pure accounting code, from the readings InfluxDB holds.

The meters' plant gets a small accounting section for this (`add_books`): one unit, `line1`, charged
with meter1's energy counter and making product counted by meter2 (an extra point `output`, in
tonnes, reading meter2's counter register again), with one-minute buckets so a short run closes some.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import pytest

from ferrogate.gateway.accounting_service import AccountingService, read_derived
from ferrogate.gateway.config import InfluxConfig, MqttConfig
from ferrogate.gateway.energy.books import IntervalRow
from ferrogate.gateway.energy.model import AccountingModel, resolve
from ferrogate.gateway.energy.production import ProductionRecord
from ferrogate.gateway.plant_file import PlantFile
from tests.waiting import eventually

INTERVAL_S = 60  # the smallest bucket the books allow: a run of a minute or two closes one or two
# a stored row and its recompute agree when within this (kWh or t): the same float sums, in any order
AGREE = 1e-6
OUTPUT_POINT = "output"  # meter2's counter register read again as the product counter (t)


def add_books(doc: dict[str, Any]) -> dict[str, Any]:
    """The meters' plant file (tests/meters.py plant_doc, two meters) with an accounting section."""
    meter2 = doc["devices"][1]
    energy = next(p for p in meter2["points"] if p["id"] == "energy")
    meter2["points"].append({**energy, "id": OUTPUT_POINT, "unit": "t"})
    doc["assets"] = [
        {
            "id": "line1",
            "type": "auxiliary",
            "name": "line 1",
            "product": "SiMn",
            "meters": {
                "electricity_import": "meter1.energy",
                "active_power": "meter1.power",
                "product_counter": f"meter2.{OUTPUT_POINT}",
            },
        }
    ]
    doc["accounting"] = {
        "interval_s": INTERVAL_S,
        "products": [{"id": "SiMn"}],
        "units": [{"asset": "line1", "production": "product_counter"}],
    }
    return doc


@dataclass
class BooksCompared:
    rows: int = 0  # interval rows and records compared
    missing: list[str] = field(default_factory=list)  # in the recompute, not in the books
    extra: list[str] = field(default_factory=list)  # in the books, not in the recompute
    differ: list[str] = field(default_factory=list)
    max_difference: float = 0.0  # largest |books - recompute| of a value (kWh or t)

    @property
    def equal(self) -> bool:
        return self.rows > 0 and not (self.missing or self.extra or self.differ)

    def figures(self) -> dict[str, object]:
        return {
            "books_rows_compared": self.rows,
            "books_missing": len(self.missing),
            "books_extra": len(self.extra),
            "books_differing": len(self.differ),
            "books_max_difference": f"{self.max_difference:.3g}",
        }

    def differences(self) -> str:
        """What differs, for the failure message (empty when equal)."""
        return "; ".join(
            f"{what}: {items[:4]}"
            for what, items in (("missing", self.missing), ("extra", self.extra), ("differ", self.differ))
            if items
        )


def _compare(books: dict[str, tuple[float, str]], again: dict[str, tuple[float, str]], out: BooksCompared) -> None:
    """Rows by key: (value, quality and flags)."""
    out.missing += sorted(set(again) - set(books))
    out.extra += sorted(set(books) - set(again))
    for key in set(books) & set(again):
        (value, label), (value_again, label_again) = books[key], again[key]
        difference = abs(value - value_again)
        out.rows += 1
        out.max_difference = max(out.max_difference, difference)
        if difference > AGREE or label != label_again:
            out.differ.append(f"{key}: books {value} {label}, recompute {value_again} {label_again}")


async def compare_books(model: AccountingModel, influx: InfluxConfig, span: tuple[int, int]) -> BooksCompared:
    """The energy role's stored books against a recompute from the stored readings: the buckets and
    records inside `span` ([start, end) ns: the meters' first bucket to the end of the last whole
    bucket they were read in). The bucket the meters stopped in is left out: after it come only
    their gateway-stamped bad readings (paused meters), which the live books see arrive one scan at a
    time, so where the books stop there moves with the moment of asking."""
    start_ns, end_ns = span
    bucket_ns = int(model.config.interval_s * 1e9)
    # derived as the energy role does (from a bucket before the first reading it has), and read on to a
    # reading after the last bucket compared, which brackets it
    derive_from, read_until = start_ns - bucket_ns, end_ns + 2 * bucket_ns
    service = AccountingService(model, MqttConfig(), influx)  # only its reads of InfluxDB are used
    try:
        store = await service.read_raw(derive_from, read_until)
        derived = service.books.derive(store, derive_from, read_until, since_ns=derive_from)
        records, rows = await read_derived(
            service.influx, model.site, derive_from, read_until, service.material_units, service.books.interval_ns
        )
    finally:
        await service.aclose()
    out = BooksCompared()

    def label(quality: Any, flags: Any) -> str:
        return f"{quality.value}:{','.join(sorted(flags))}"

    def inside(r: IntervalRow | ProductionRecord) -> bool:
        return start_ns <= r.start_ns and r.end_ns <= end_ns

    _compare(
        {f"{r.asset}/{r.role}/{r.start_ns}": (r.value, label(r.quality, r.flags)) for r in rows if inside(r)},
        {
            f"{r.asset}/{r.role}/{r.start_ns}": (r.value, label(r.quality, r.flags))
            for r in derived.intervals
            if inside(r)
        },
        out,
    )
    _compare(
        {r.id: (r.electricity_kwh, label(r.quality, r.flags)) for r in records if inside(r)},
        {r.id: (r.electricity_kwh, label(r.quality, r.flags)) for r in derived.records if inside(r)},
        out,
    )
    return out


async def books_equal_recompute(
    plant: PlantFile, influx: InfluxConfig, span: tuple[int, int], within_s: float
) -> BooksCompared:
    """Wait (up to `within_s`: the energy role derives every couple of seconds) until the books equal
    a recompute; the comparison either way."""
    model, problems = resolve(plant, plant.accounting)
    assert model is not None, problems
    compared = BooksCompared()

    async def equal() -> bool:
        nonlocal compared
        compared = await compare_books(model, influx, span)
        return compared.equal

    with contextlib.suppress(pytest.fail.Exception):  # the caller asserts, with the differences
        await eventually(equal, "the energy role's books to equal a recompute from InfluxDB", within_s)
    return compared

"""How fast the accounting engine is on this machine: the live hot path (keeping the accounting
meters' readings out of the telemetry stream) and re-deriving a day of 1-second readings.

    .venv/bin/python bench/energy_books.py

Prints figures; asserts nothing (speed targets are read, not unit-tested).
"""

from __future__ import annotations

import time
from pathlib import Path

from ferrogate.gateway.accounting_service import AccountingService
from ferrogate.gateway.config import InfluxConfig, MqttConfig
from ferrogate.gateway.config_loader import load_plant
from ferrogate.gateway.energy.books import Books
from ferrogate.gateway.energy.model import resolve
from ferrogate.gateway.energy.series import Series
from ferrogate.gateway.reading import Quality, Reading, ScanBatch

PLANT = (
    Path(__file__).resolve().parent.parent / "tests" / "testcases" / "accounting" / "saf_rollover_reset" / "plant.yaml"
)
S = 1_000_000_000


def main() -> None:
    plant = load_plant(PLANT)
    model, problems = resolve(plant, plant.accounting)
    assert model is not None, problems

    # 1. hot path: batches of 50 readings, 4 of them accounting meters
    service = AccountingService(model, MqttConfig(), InfluxConfig())
    n_batches = 20_000
    batches = []
    for i in range(n_batches):
        t = 1_772_000_000 * S + i * S
        readings = [Reading(f"other_{k}", float(k), "kW", t) for k in range(46)]
        readings += [Reading(p, float(i), "kWh", t) for p in ("energy", "power")]
        batches.append(ScanBatch("golden", "saf1_meter", i, t, readings))
    started = time.perf_counter()
    for b in batches:
        service.handle(b)
    elapsed = time.perf_counter() - started
    points = n_batches * 48
    print(f"live hot path: {points / elapsed:,.0f} readings/s ({elapsed / points * 1e6:.2f} us per reading)")

    # 2. re-deriving one day of 1-second readings (SAF + WHG, 7 points) into buckets and taps
    store: dict[tuple[str, str], Series] = {m.key: Series() for m in model.meters()}
    t0 = 1_772_400_000 * S
    taps = 0
    for k in range(86_400 + 1):
        t = t0 + k * S
        if k and k % 9000 == 0:
            taps += 1
        for key, value in (
            (("saf1_meter", "energy"), k * 24_000 / 3600),
            (("saf1_meter", "power"), 24_000.0),
            (("saf1_plc", "taps"), float(taps)),
            (("saf1_plc", "tap_weight"), 16.0),
            (("saf1_plc", "tap_time"), float((t0 // S) + (k // 9000) * 9000)),
            (("saf1_plc", "electrode"), k * 0.04),
            (("whg1_plc", "export"), k * 1.0),
        ):
            store[key].add(t, value, Quality.GOOD)
    books = Books(model)
    started = time.perf_counter()
    derived = books.derive(store, t0 + 3600 * S, t0 + 86_400 * S, since_ns=t0)
    elapsed = time.perf_counter() - started
    readings = sum(len(s) for s in store.values())
    print(
        f"derive one day: {readings:,} readings -> {len(derived.intervals)} buckets, {len(derived.records)} records "
        f"in {elapsed:.2f} s ({readings / elapsed:,.0f} readings/s)"
    )


if __name__ == "__main__":
    main()

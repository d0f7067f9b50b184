"""Production events and records: taps from the furnace's tap counter, tap weight and tap time;
one record per heat/tap (energy from the previous tap to this tap, divided by this tap's tonnes);
fixed-interval records for continuous units with a product counter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ferrogate.gateway.energy.events import Amount
from ferrogate.gateway.energy.series import Series
from ferrogate.gateway.reading import Quality

TAP_TIME_OUTSIDE_SCAN = "tap_time_outside_scan"
TAP_TIME_FROM_SCAN = "tap_time_from_scan"
MISSED_TAPS = "missed_taps"
NO_TAP_WEIGHT = "no_tap_weight"
TAP_COUNTER_RESET = "tap_counter_reset"
NO_PREVIOUS_TAP = "no_previous_tap"


@dataclass(frozen=True, slots=True)
class Tap:
    t_ns: int
    number: int  # the tap counter after this tap
    tonnes: float | None
    quality: Quality
    flags: tuple[str, ...] = ()


def detect_taps(
    counter: Series,
    weight: Series,
    tap_time: Series | None,
    tonnes_per_unit: float = 1.0,
    ns_per_time_unit: float = 1e9,
) -> list[Tap]:
    """A tap is a step of the tap counter between two usable readings.

    Its time is the device's tap-time register read in the same scan (checked to lie between the
    two counter readings), else the scan time, flagged. Its tonnes are the tap-weight register of
    that scan. A step of more than one means taps were missed (e.g. a long outage): the record is
    kept, BAD, with the count.
    """
    taps: list[Tap] = []
    prev_t: int | None = None
    prev_n: float | None = None
    for t, v, q in zip(counter.times, counter.values, counter.qualities, strict=True):
        if v is None or q is Quality.BAD:
            continue
        if prev_n is not None and prev_t is not None and v != prev_n:
            flags: list[str] = []
            quality = q
            if v < prev_n:
                flags.append(TAP_COUNTER_RESET)  # a PLC restart: new baseline, no tap
                prev_t, prev_n = t, v
                continue
            steps = round(v - prev_n)
            if steps > 1:
                flags.append(f"{MISSED_TAPS}:{steps - 1}")
                quality = Quality.BAD
            when = t
            stamp = tap_time.latest_at(t) if tap_time is not None else None
            if stamp is None:
                flags.append(TAP_TIME_FROM_SCAN)
                quality = _worse(quality, Quality.UNCERTAIN)
            else:
                device_time = int(stamp[1] * ns_per_time_unit)
                if prev_t < device_time <= t:
                    when = device_time
                else:
                    when = min(max(device_time, prev_t + 1), t)
                    flags.append(TAP_TIME_OUTSIDE_SCAN)
                    quality = _worse(quality, Quality.UNCERTAIN)
            w = weight.latest_at(t)
            tonnes = None if w is None else w[1] * tonnes_per_unit
            if tonnes is None:
                flags.append(NO_TAP_WEIGHT)
                quality = Quality.BAD
            elif w is not None and w[2] is not Quality.GOOD:
                quality = _worse(quality, w[2])
            taps.append(Tap(when, round(v), tonnes, quality, tuple(flags)))
        prev_t, prev_n = t, v
    return taps


def _worse(a: Quality, b: Quality) -> Quality:
    order = (Quality.GOOD, Quality.UNCERTAIN, Quality.BAD)
    return a if order.index(a) >= order.index(b) else b


@dataclass(slots=True)
class ProductionRecord:
    """One heat, tap or continuous interval with everything the unit was charged with."""

    unit: str
    product: str
    kind: str  # eaf_heat, saf_tap, tap, continuous
    id: str
    start_ns: int
    end_ns: int
    tonnes: float | None
    electricity_kwh: float = 0.0
    waste_heat_kwh: float = 0.0
    # material id -> quantity in the material's unit (metered or per tonne)
    consumables: dict[str, float] = field(default_factory=dict)
    quality: Quality = Quality.GOOD
    flags: set[str] = field(default_factory=set)

    @property
    def kwh_per_t(self) -> float | None:
        return self.electricity_kwh / self.tonnes if self.tonnes else None

    def charge(self, amount: Amount) -> float:
        """Take over an amount's quality and flags; returns its value."""
        self.quality = _worse(self.quality, amount.quality)
        self.flags |= amount.flags
        if not amount.covered:
            self.quality = _worse(self.quality, Quality.UNCERTAIN)
            self.flags.add("partial_coverage")
        return amount.value


Window = Callable[[int, int], Amount]


@dataclass(frozen=True, slots=True)
class UnitSources:
    """How one unit's quantities are integrated over any window."""

    electricity: list[Window]
    waste_heat: list[Window]
    metered: Mapping[str, Window]  # material -> window of its counter
    per_tonne: Mapping[str, float]  # material -> quantity per t of product


def fill(record: ProductionRecord, sources: UnitSources) -> ProductionRecord:
    t0, t1 = record.start_ns, record.end_ns
    record.electricity_kwh = sum(record.charge(w(t0, t1)) for w in sources.electricity)
    record.waste_heat_kwh = sum(record.charge(w(t0, t1)) for w in sources.waste_heat)
    for material, window in sources.metered.items():
        record.consumables[material] = record.charge(window(t0, t1))
    for material, per_t in sources.per_tonne.items():
        if record.tonnes is not None:
            record.consumables[material] = per_t * record.tonnes
    return record


def tap_records(
    unit: str, product: str, kind: str, taps: list[Tap], sources: UnitSources, data_start_ns: int | None
) -> list[ProductionRecord]:
    """Records from consecutive taps. The first tap has no known previous tap: its record starts
    at `data_start_ns` (the first reading) and is flagged `no_previous_tap`, Uncertain."""
    records = []
    for i, tap in enumerate(taps):
        if i == 0:
            if data_start_ns is None or data_start_ns >= tap.t_ns:
                continue
            start, quality, flags = data_start_ns, Quality.UNCERTAIN, {NO_PREVIOUS_TAP}
        else:
            start, quality, flags = taps[i - 1].t_ns, Quality.GOOD, set()
        rec = ProductionRecord(
            unit, product, kind, f"{unit}/{tap.number}", start, tap.t_ns, tap.tonnes, quality=quality, flags=flags
        )
        rec.quality = _worse(rec.quality, tap.quality)
        rec.flags.update(tap.flags)
        records.append(fill(rec, sources))
    return records


def continuous_records(
    unit: str, product: str, product_window: Window, sources: UnitSources, start_ns: int, end_ns: int, step_ns: int
) -> list[ProductionRecord]:
    """Fixed-interval records of a continuous unit: tonnes from its product counter."""
    records = []
    t = start_ns - start_ns % step_ns
    while t + step_ns <= end_ns:
        rec = ProductionRecord(unit, product, "continuous", f"{unit}/{t // 1_000_000_000}", t, t + step_ns, None)
        rec.tonnes = rec.charge(product_window(t, t + step_ns))
        records.append(fill(rec, sources))
        t += step_ns
    return records

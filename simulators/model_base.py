"""What every equipment model shares: state stepped on a one-second simulated grid, counters that are
exact integrals of their rates, and the ground-truth records a model produces.

A model's rates (power, kg/h, t/h) are constant for one step [t, t + 1 s): `begin(t)` sets them (and
handles events at t, such as a tap), `integrate(dt)` adds rate x dt to each counter. A counter read
inside a step is the counter at the step start plus rate x elapsed, so counter deltas always equal the
integral of the modelled rate, and the state at whole seconds does not depend on when it is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ferrogate.gateway.timeutil import iso_utc

STEP_S = 1  # simulated seconds per model step
CLOCK_SIGNAL = "clock_ms"  # the device clock every simulated device can serve (Unix ms, simulated)


@dataclass(frozen=True)
class TruthRecord:
    """One line of the ground-truth ledger (docs/simulators.md, "Ground truth")."""

    kind: str  # eaf_heat | saf_tap | generation | cells_product
    asset: str
    id: str
    start: int  # simulated Unix seconds
    end: int
    energy_kwh: float
    tonnes: float | None = None
    exported_kwh: float | None = None
    product: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "asset": self.asset,
            "id": self.id,
            "start": iso_utc(self.start * 1_000_000_000),
            "end": iso_utc(self.end * 1_000_000_000),
            "energy_kwh": self.energy_kwh,
            "tonnes": self.tonnes,
            "exported_kwh": self.exported_kwh,
            "product": self.product,
        }


class Equipment:
    """Base of the models. Subclasses declare the signals they serve and their counters."""

    kind: ClassVar[str]
    SIGNALS: ClassVar[frozenset[str]]
    COUNTERS: ClassVar[dict[str, str]] = {}  # counter signal -> its rate attribute (units per hour)

    def __init__(self, equipment_id: str, t0: int) -> None:
        self.id = equipment_id
        self.t0 = t0
        self.records: list[TruthRecord] = []  # drained by the plant into the ledger
        self.depends_on: tuple[Equipment, ...] = ()

    def begin(self, t: int) -> None:
        """Events at t, then the rates of the step [t, t + STEP_S)."""
        raise NotImplementedError

    def integrate(self, dt: float) -> None:
        for counter, rate in self.COUNTERS.items():
            setattr(self, counter, getattr(self, counter) + getattr(self, rate) * dt / 3600.0)

    def signal(self, name: str, elapsed_s: float = 0.0) -> float:
        """Value of a signal `elapsed_s` into the current step."""
        value = getattr(self, name)
        rate = self.COUNTERS.get(name)
        if rate is not None and elapsed_s:
            return value + getattr(self, rate) * elapsed_s / 3600.0
        return value


class HourlyLedger:
    """Ground truth per whole simulated hour, for continuous equipment (generators, cell lines)."""

    def __init__(self) -> None:
        self.hour_start: int | None = None
        self.at_start: tuple[float, ...] = ()

    def due(self, t: int) -> bool:
        """True at each whole hour after the first one began (call with the counters at t)."""
        return t % 3600 == 0 and self.hour_start is not None

    def restart(self, t: int, counters: tuple[float, ...]) -> None:
        if t % 3600 == 0:
            self.hour_start, self.at_start = t, counters


def hour_id(equipment_id: str, start: int) -> str:
    return f"{equipment_id}-{iso_utc(start * 1_000_000_000)[:13].replace('-', '')}"

"""The Modbus workloads every contender (ferrogate, the featureless floor, the peers) is measured on.

- `units`: `devices` unit ids behind ONE TCP port (a serial gateway), each with `points` holding
  registers of one type from address 0, read over one connection;
- `plant`: `devices` devices on their own ports, each with `points` mixed uint16 / uint32 (low word
  first) / float32 points in four blocks separated by gaps of unmapped registers (the simulator
  answers exception 2 for them, so every contender must read the blocks separately).

The register maps come from the project's simulator types (simulators/registers.py); the requests
are planned the way the gateway plans them (drivers/modbus/plan.py, default max_gap 8), so every
contender sends the same requests.
"""

from __future__ import annotations

from dataclasses import dataclass

from ferrogate.drivers.modbus.config import ModbusPoint
from ferrogate.drivers.modbus.plan import plan_requests
from ferrogate.simulators.registers import Register, RegisterMap

BLOCKS = 4  # plant layout: point blocks per device
GAP = 10  # unmapped registers between blocks: more than the planner's default max_gap (8)
MIXED_TYPES = ("uint16", "uint32", "float32")


@dataclass(frozen=True)
class Workload:
    name: str
    layout: str  # "units" | "plant"
    devices: int
    points: int
    type: str = "mixed"  # units layout: one register type for every point

    def register_map(self) -> RegisterMap:
        registers: list[Register] = []
        if self.layout == "units":
            for i in range(self.points):
                probe = Register(0, self.type, "x", "1")
                registers.append(Register(i * probe.count, self.type, f"p{i:03d}", "1"))
            return RegisterMap(self.name, tuple(registers))
        address = 0
        per_block = -(-self.points // BLOCKS)
        for i in range(self.points):
            if i and i % per_block == 0:
                address += GAP
            type_ = MIXED_TYPES[i % len(MIXED_TYPES)]
            reg = Register(address, type_, f"p{i:03d}", "1", word_order="little" if type_ == "uint32" else "big")
            registers.append(reg)
            address += reg.count
        return RegisterMap(self.name, tuple(registers))

    def plant_points(self) -> list[dict[str, object]]:
        return [
            {"id": r.signal, "address": r.address, "type": r.type, "word_order": r.word_order, "unit": r.unit}
            for r in self.register_map().registers
        ]

    def requests(self) -> list[dict[str, object]]:
        """The reads of one device scan, as the gateway plans them: start, count and each point's
        (offset in the read, type, word order)."""
        points = [ModbusPoint.model_validate(p) for p in self.plant_points()]
        return [
            {
                "start": r.start,
                "count": r.count,
                "points": [[p.address - r.start, p.type.value, p.word_order.value] for p in _points_of(r, points)],
            }
            for r in plan_requests(points, max_gap=8)
        ]

    @property
    def total_points(self) -> int:
        return self.devices * self.points


def _points_of(request: object, points: list[ModbusPoint]) -> list[ModbusPoint]:
    start, count = request.start, request.count  # type: ignore[attr-defined]
    return [p for p in points if start <= p.address < start + count]


def workloads(profile: str) -> list[Workload]:
    if profile == "smoke":
        # big enough that a 3 s window holds some CPU clock ticks (10 ms each)
        return [Workload("units10x100", "units", 10, 100, "uint16"), Workload("plant10x100", "plant", 10, 100)]
    return [
        Workload("units20x100", "units", 20, 100, "uint16"),
        Workload("units20x100f", "units", 20, 100, "float32"),
        Workload("plant100x100", "plant", 100, 100),
    ]


def find(name: str, profile: str = "quick") -> Workload:
    for w in workloads("smoke") + workloads(profile):
        if w.name == name:
            return w
    raise KeyError(name)

"""Many simulated Modbus devices in one process, for load tests and benchmarks: the gateway under
test runs in another process, so what it measures is the gateway.

    python -m tests.modbus_farm --devices 50 --points 40

Prints one JSON line {"ports": [...], "points": [...]} (the point list every device serves, in
plant-file form) once every server listens, then serves until stdin closes or SIGTERM.
Each device: half float32 (power-like, big-endian words) in registers 0..., half integer
counters (uint32 little-endian words, int16, uint16) from register 100; a request advances a
counter so values change from scan to scan.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

from ferrogate.simulators.registers import Register, RegisterMap
from tests.field_devices import start_modbus

INTEGER_TYPES = ("uint32", "int16", "uint16")


def farm_map(points: int) -> RegisterMap:
    registers: list[Register] = []
    address = 0
    for i in range(points // 2):
        registers.append(Register(address, "float32", f"f{i}", "kW"))
        address += 2
    address = 100
    for i in range(points - points // 2):
        type_ = INTEGER_TYPES[i % len(INTEGER_TYPES)]
        reg = Register(address, type_, f"n{i}", "1", word_order="little" if type_ == "uint32" else "big")
        registers.append(reg)
        address += reg.count
    return RegisterMap("farm", tuple(registers))


def plant_points(register_map: RegisterMap) -> list[dict[str, object]]:
    return [
        {"id": r.signal, "address": r.address, "type": r.type, "word_order": r.word_order, "unit": r.unit}
        for r in register_map.registers
    ]


async def serve(devices: int, points: int) -> None:
    register_map = farm_map(points)
    servers = []
    for d in range(devices):
        values = {r.signal: float(d * 1000 + n) for n, r in enumerate(register_map.registers)}

        def advance(values: dict[str, float] = values) -> None:
            values["n0"] += 1  # a counter that moves with every request

        servers.append(await start_modbus(register_map, values, sample=advance))
    print(json.dumps({"ports": [s.port for s in servers], "points": plant_points(register_map)}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.readline() else None)
    await stop.wait()
    for sim in servers:
        await sim.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--points", type=int, default=40)
    args = parser.parse_args()
    asyncio.run(serve(args.devices, args.points))


if __name__ == "__main__":
    main()

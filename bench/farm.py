"""The simulated devices of a workload, in their own process (the contenders run in others).

    python -m bench.farm WORKLOAD [--profile quick] [--clock-point P --clock-period S]

Serves the project's simulated Modbus devices (simulators/modbus_server.py): the `units` layout puts
every unit id behind one port, the `plant` layout gives each device its own port. Values move with
every request (a counter per device). Prints one JSON line {"endpoints": [[port, unit], ...]} once
everything listens; then each line read on stdin is answered with {"requests": N} (reads served so
far, all devices); stdin closing or SIGTERM stops it.

With `--clock-point`, that point of every device (a uint32) changes every `--clock-period` seconds,
each device at its own phase, and its value is the wall-clock time of its last change in ms modulo
2**32 (`change_time_ms`): whoever reads it downstream knows when the simulator changed it (the
latency bench, bench/latency_e2e.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from pymodbus.server import ModbusTcpServer

from bench.harness import answer_until_stopped
from bench.workloads import find
from ferrogate.gateway.ports import LOOPBACK, free_port
from ferrogate.simulators.modbus_server import SimulatedModbusDevice
from ferrogate.simulators.registers import RegisterMap

PHASE_STEP = (math.sqrt(5) - 1) / 2  # devices' change phases spread evenly over the period (golden ratio)


@dataclass(frozen=True)
class Clock:
    """A point whose value is the wall-clock time (ms mod 2**32) of its last change."""

    point: str
    period_s: float

    def value(self, index: int, now: float) -> int:
        phase = (index * PHASE_STEP) % 1.0 * self.period_s
        changed = phase + math.floor((now - phase) / self.period_s) * self.period_s
        return round(changed * 1000) % 2**32


def change_time_ms(value: float, now_ms: int) -> int:
    """The change time a clock point's value stands for: the latest time <= now with that value mod 2**32."""
    return now_ms - (now_ms - int(value)) % 2**32


def _device(
    register_map: RegisterMap, port: int, unit: int, base: float, clock: Clock | None, index: int
) -> SimulatedModbusDevice:
    values = {name: base + n for n, name in enumerate(register_map.signals)}
    first = register_map.signals[0]

    def advance() -> None:
        values[first] += 1  # a value that moves with every request

    read: Callable[[str], float] = values.__getitem__
    if clock is not None:

        def read(name: str) -> float:
            return clock.value(index, time.time()) if name == clock.point else values[name]

    # served_log=1: the simulator's record of what it served is for tests; here it would only grow
    return SimulatedModbusDevice(register_map, LOOPBACK, port, unit, advance, read, served_log=1)


async def _listening(
    register_map: RegisterMap, units: list[int], base: float, clock: Clock | None, first_index: int
) -> tuple[ModbusTcpServer, int, list[SimulatedModbusDevice]]:
    """A server for `units` on a free port; another process may take the port first: try another."""
    for attempt in range(5):
        port = free_port()
        group = [
            _device(register_map, port, unit, base + unit * 100_000.0, clock, first_index + k)
            for k, unit in enumerate(units)
        ]
        server = ModbusTcpServer([d.sim_device() for d in group], address=(LOOPBACK, port))
        try:
            await server.serve_forever(background=True)
            return server, port, group
        except (RuntimeError, OSError):
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


async def serve(workload_name: str, profile: str, clock: Clock | None = None) -> None:
    workload = find(workload_name, profile)
    register_map = workload.register_map()
    devices: list[SimulatedModbusDevice] = []
    servers: list[ModbusTcpServer] = []
    endpoints: list[tuple[int, int]] = []
    groups = (
        [list(range(1, workload.devices + 1))]  # every unit behind one port
        if workload.layout == "units"
        else [[1] for _ in range(workload.devices)]  # a port each
    )
    for n, units in enumerate(groups):
        server, port, group = await _listening(register_map, units, n * 1000.0, clock, len(devices))
        servers.append(server)
        devices += group
        endpoints += [(port, d.unit) for d in group]
    print(json.dumps({"endpoints": endpoints}), flush=True)
    await answer_until_stopped(lambda: {"requests": sum(d.requests for d in devices)})
    for server in servers:
        await server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--clock-point", help="a uint32 point whose value is the time of its last change (ms)")
    parser.add_argument("--clock-period", type=float, default=1.3, help="seconds between its changes")
    args = parser.parse_args()
    clock = Clock(args.clock_point, args.clock_period) if args.clock_point else None
    asyncio.run(serve(args.workload, args.profile, clock))


if __name__ == "__main__":
    main()

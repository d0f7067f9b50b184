"""The simulated devices of a workload, in their own process (the contenders run in others).

    python -m bench.farm WORKLOAD [--profile quick]

Serves the project's simulated Modbus devices (simulators/modbus_server.py): the `units` layout puts
every unit id behind one port, the `plant` layout gives each device its own port. Values move with
every request (a counter per device). Prints one JSON line {"endpoints": [[port, unit], ...]} once
everything listens; then each line read on stdin is answered with {"requests": N} (reads served so
far, all devices); stdin closing or SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from pymodbus.server import ModbusTcpServer

from bench.harness import answer_until_stopped
from bench.workloads import find
from ferrogate.gateway.ports import LOOPBACK, free_port
from ferrogate.simulators.modbus_server import SimulatedModbusDevice
from ferrogate.simulators.registers import RegisterMap


def _device(register_map: RegisterMap, port: int, unit: int, base: float) -> SimulatedModbusDevice:
    values = {name: base + n for n, name in enumerate(register_map.signals)}
    first = register_map.signals[0]

    def advance() -> None:
        values[first] += 1  # a value that moves with every request

    # served_log=1: the simulator's record of what it served is for tests; here it would only grow
    return SimulatedModbusDevice(register_map, LOOPBACK, port, unit, advance, values.__getitem__, served_log=1)


async def _listening(
    register_map: RegisterMap, units: list[int], base: float
) -> tuple[ModbusTcpServer, int, list[SimulatedModbusDevice]]:
    """A server for `units` on a free port; another process may take the port first: try another."""
    for attempt in range(5):
        port = free_port()
        group = [_device(register_map, port, unit, base + unit * 100_000.0) for unit in units]
        server = ModbusTcpServer([d.sim_device() for d in group], address=(LOOPBACK, port))
        try:
            await server.serve_forever(background=True)
            return server, port, group
        except (RuntimeError, OSError):
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


async def serve(workload_name: str, profile: str) -> None:
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
        server, port, group = await _listening(register_map, units, base=n * 1000.0)
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
    args = parser.parse_args()
    asyncio.run(serve(args.workload, args.profile))


if __name__ == "__main__":
    main()

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
import signal
import sys

from pymodbus.server import ModbusTcpServer

from bench.workloads import find
from ferrogate.gateway.services import LOOPBACK, free_port
from ferrogate.simulators.modbus_server import SimulatedModbusDevice


def _device(register_map, port: int, unit: int, base: float) -> SimulatedModbusDevice:
    values = {name: base + n for n, name in enumerate(register_map.signals)}
    first = register_map.signals[0]

    def advance() -> None:
        values[first] += 1  # a value that moves with every request

    # served_log=1: the simulator's record of what it served is for tests; here it would only grow
    return SimulatedModbusDevice(register_map, LOOPBACK, port, unit, advance, values.__getitem__, served_log=1)


async def serve(workload_name: str, profile: str) -> None:
    workload = find(workload_name, profile)
    register_map = workload.register_map()
    devices: list[SimulatedModbusDevice] = []
    servers: list[ModbusTcpServer] = []
    endpoints: list[tuple[int, int]] = []
    if workload.layout == "units":
        port = free_port()
        devices = [_device(register_map, port, unit, unit * 1000.0) for unit in range(1, workload.devices + 1)]
        servers.append(ModbusTcpServer([d.sim_device() for d in devices], address=(LOOPBACK, port)))
        endpoints = [(port, d.unit) for d in devices]
    else:
        for i in range(workload.devices):
            port = free_port()
            device = _device(register_map, port, 1, i * 1000.0)
            devices.append(device)
            servers.append(ModbusTcpServer(device.sim_device(), address=(LOOPBACK, port)))
            endpoints.append((port, 1))
    for server in servers:
        await server.serve_forever(background=True)
    print(json.dumps({"endpoints": endpoints}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    def on_line() -> None:
        if not sys.stdin.readline():
            stop.set()
            return
        print(json.dumps({"requests": sum(d.requests for d in devices)}), flush=True)

    loop.add_reader(sys.stdin.fileno(), on_line)
    await stop.wait()
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

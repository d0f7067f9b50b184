"""Simulated OPC UA servers for the OPC UA bench, in a process of their own (the contenders run in others).

    python -m bench.opcua_farm NODES [--first N] [--folder-size 100]

Serves NODES Double variables on the project's simulated OPC UA device (simulators/opcua_server.py:
an asyncua server), in folders of `--folder-size` (`F0000.v000`, ...). Every variable changes once a
second, all of them written at half past each wall-clock second (half a scan away from the
collectors' scans at the full second, so a scan never races a write). The value tells which change
it is: `second * 100_000 + index` (Unix second of the write, the node's index over all servers:
`--first` + its position), exact in a Double, so a subscriber can count distinct changes and the
ones lost without asking anyone.

Prints one JSON line {"endpoint": ..., "nodes": [node id, ...]} once it listens; then each line read
on stdin is answered with the writing's own figures {"cycles", "skipped", "late", "max_write_s",
"cpu_s", "seconds": [Unix seconds written]}, so the bench can tell whether the server kept up;
stdin closing or SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from asyncua.server.monitored_item_service import MonitoredItemValues

from bench.harness import answer_until_stopped
from ferrogate.gateway.ports import LOOPBACK, free_port
from ferrogate.simulators.address_spaces import NAMESPACE_URI, AddressSpace, Variable
from ferrogate.simulators.opcua_server import SimulatedOpcUaDevice

INDEX_BASE = 100_000  # value = second * INDEX_BASE + node index: at most this many nodes
WRITE_PHASE_S = 0.5  # writes at half past the second; collectors scan at the full second


def _keep_without_copy(self: MonitoredItemValues, value: object) -> None:
    """asyncua's server deep-copies every written DataValue for every monitored item (over half its
    CPU at 10,000 changes/s); the writer here never alters a DataValue it wrote, so keeping it is safe."""
    self.old_dvalue = self.current_dvalue
    self.current_dvalue = value


def change_value(second: int, index: int) -> float:
    return float(second * INDEX_BASE + index)


def which_change(value: float) -> tuple[int, int]:
    """(node index, Unix second of the write) of a value written by this farm."""
    second, index = divmod(round(value), INDEX_BASE)
    return index, second


class Writer:
    """Writes every variable once a second; counts the cycles and the ones it could not keep."""

    def __init__(self, first: int, nodes: int) -> None:
        self.device: SimulatedOpcUaDevice | None = None
        self.index = {f"s{first + n}": first + n for n in range(nodes)}
        self.second = 0
        self.cycles = 0
        self.skipped = 0  # slots passed while a write ran over
        self.late = 0  # writes that finished after the next full second (a scan may miss them)
        self.max_write_s = 0.0
        self.seconds: list[int] = []

    def value(self, signal_name: str) -> float:
        return change_value(self.second, self.index[signal_name])

    async def run(self) -> None:
        slot = int(time.time()) + 1
        while True:
            await asyncio.sleep(max(0.0, slot + WRITE_PHASE_S - time.time()))
            self.second = slot
            started = time.time()
            assert self.device is not None
            await self.device.publish(time.time_ns())
            finished = time.time()
            self.cycles += 1
            self.seconds.append(slot)
            self.max_write_s = max(self.max_write_s, finished - started)
            if finished >= slot + 1:
                self.late += 1
            following = max(slot + 1, int(finished - WRITE_PHASE_S) + 1)
            self.skipped += following - slot - 1
            slot = following

    def figures(self) -> dict[str, object]:
        cpu = time.process_time()
        seconds, self.seconds = self.seconds, []
        return {
            "cycles": self.cycles,
            "skipped": self.skipped,
            "late": self.late,
            "max_write_s": round(self.max_write_s, 4),
            "cpu_s": cpu,
            "seconds": seconds,
        }


def address_space(nodes: int, first: int, folder_size: int) -> list[tuple[str, AddressSpace]]:
    """Folders of `folder_size` Double variables; signal `s<index>` is the node's global index."""
    folders = []
    for start in range(0, nodes, folder_size):
        count = min(folder_size, nodes - start)
        variables = tuple(Variable(f"v{n:03d}", f"s{first + start + n}", "kW", "Double") for n in range(count))
        folders.append((f"F{(first + start) // folder_size:04d}", AddressSpace(f"bench{start}", variables)))
    return folders


async def _listening(nodes: int, first: int, folder_size: int) -> tuple[SimulatedOpcUaDevice, Writer]:
    """A started server on a free port; another process may take the port first: try another."""
    folders = address_space(nodes, first, folder_size)
    for attempt in range(5):
        (name, space), *rest = folders
        endpoint = f"opc.tcp://{LOOPBACK}:{free_port()}/ferrogate/bench"
        writer = Writer(first, nodes)
        # served_log=1: the simulator's record of what it served is for tests; here it would only cost
        device = SimulatedOpcUaDevice(space, endpoint, name, writer.value, served_log=1)
        for folder, more in rest:
            device.add_folder(more, folder, writer.value)
        writer.device = device
        try:
            await device.start()
            return device, writer
        except RuntimeError:
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


async def serve(nodes: int, first: int, folder_size: int) -> None:
    device, writer = await _listening(nodes, first, folder_size)
    node_ids = [f"nsu={NAMESPACE_URI};s={n}" for n in device.node_ids()]
    print(json.dumps({"endpoint": device.endpoint, "nodes": node_ids}), flush=True)
    writing = asyncio.create_task(writer.run())
    await answer_until_stopped(writer.figures)
    writing.cancel()
    await asyncio.gather(writing, return_exceptions=True)
    await device.stop()


def main() -> None:
    MonitoredItemValues.set_current_datavalue = _keep_without_copy  # this process only
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("nodes", type=int)
    parser.add_argument("--first", type=int, default=0, help="index of the first node over all servers")
    parser.add_argument("--folder-size", type=int, default=100)
    args = parser.parse_args()
    if args.first + args.nodes > INDEX_BASE:
        parser.error(f"at most {INDEX_BASE} nodes over all servers")
    asyncio.run(serve(args.nodes, args.first, args.folder_size))


if __name__ == "__main__":
    main()

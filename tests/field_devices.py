"""Field devices for driver and collector tests: the project's simulator servers (real pymodbus and
asyncua servers on loopback sockets) serving values the test sets, and plant files pointing at them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ferrogate.gateway.config import PlantConfig
from ferrogate.gateway.services import free_port
from ferrogate.simulators.faults import DeviceFaults
from ferrogate.simulators.modbus_server import SimulatedModbusDevice
from ferrogate.simulators.opcua_server import AddressSpace, SimulatedOpcUaDevice
from ferrogate.simulators.registers import RegisterMap

BIND_ATTEMPTS = 5  # a free port can be taken between choosing and binding it
Device = TypeVar("Device", SimulatedModbusDevice, SimulatedOpcUaDevice)


async def start_modbus(
    register_map: RegisterMap,
    values: dict[str, float],
    unit: int = 1,
    port: int | None = None,
    faults: DeviceFaults | None = None,
    sample: Callable[[], None] = lambda: None,
) -> SimulatedModbusDevice:
    """A Modbus TCP server for `register_map`; `values` (signal -> value) can change while it runs;
    `faults` (latency, exception answers...) can be set while it runs; `sample` runs before each
    answer (the simulator's model hook)."""

    async def build(free: int) -> SimulatedModbusDevice:
        return SimulatedModbusDevice(
            register_map, "127.0.0.1", free, unit, sample=sample, signals=values.__getitem__, faults=faults
        )

    return await _started(build, port)


async def start_opcua(
    space: AddressSpace,
    values: dict[str, float],
    folder: str = "DEV",
    port: int | None = None,
    configure: Callable[[SimulatedOpcUaDevice], Awaitable[None]] | None = None,
) -> SimulatedOpcUaDevice:
    """An OPC UA server for `space` under folder `folder`; `configure` may set security before start."""

    async def build(free: int) -> SimulatedOpcUaDevice:
        device = SimulatedOpcUaDevice(
            space, f"opc.tcp://127.0.0.1:{free}/ferrogate/test", folder, signals=values.__getitem__
        )
        if configure is not None:
            await configure(device)
        return device

    return await _started(build, port)


async def _started(build: Callable[[int], Awaitable[Device]], port: int | None) -> Device:
    """The server `build` makes for `port`, started; without a port, on a free one, chosen again
    when someone else took it before the server could bind it."""
    for attempt in range(BIND_ATTEMPTS):
        device = await build(port or free_port())
        try:
            await device.start()
            return device
        except RuntimeError:
            if port is not None or attempt == BIND_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def plant(*devices: dict[str, Any]) -> PlantConfig:
    """A validated plant file holding only `devices` (as the YAML would give them)."""
    return PlantConfig.model_validate({"site": {"id": "test", "name": "test site"}, "devices": list(devices)})


def modbus_device(device_id: str, port: int, points: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
    return {"id": device_id, "protocol": "modbus", "host": "127.0.0.1", "port": port, "points": points, **options}


def opcua_device(device_id: str, endpoint: str, points: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
    return {"id": device_id, "protocol": "opcua", "endpoint": endpoint, "points": points, **options}


def node(folder: str, name: str) -> str:
    """Node id of a simulator variable, by namespace URI."""
    return f"nsu=urn:ferrogate:simulator;s={folder}.{name}"

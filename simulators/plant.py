"""A simulated plant: equipment models on one simulated clock, served over Modbus TCP and OPC UA
exactly where the plant file's devices expect them."""

from __future__ import annotations

import asyncio
import logging
import random

from ferrogate.gateway.config import ModbusDevice, OpcUaDevice, PlantConfig, SimulatedEquipment
from ferrogate.simulators.clock import SimClock
from ferrogate.simulators.equipment import EafModel, WasteHeatGeneratorModel
from ferrogate.simulators.modbus_server import SimulatedModbusDevice
from ferrogate.simulators.opcua_server import ADDRESS_SPACES, SimulatedOpcUaDevice
from ferrogate.simulators.registers import REGISTER_MAPS

log = logging.getLogger(__name__)

Model = EafModel | WasteHeatGeneratorModel


class SimulationConfigError(ValueError):
    pass


def _param(eq: SimulatedEquipment, name: str, default: float | str | None = None) -> float | str:
    value = eq.params.get(name, default)
    if value is None:
        raise SimulationConfigError(f"simulation.equipment {eq.id}: parameter {name!r} is required")
    return value


def build_models(plant: PlantConfig, clock: SimClock) -> dict[str, Model]:
    sim = plant.simulation
    assert sim is not None
    t0 = clock.now()
    models: dict[str, Model] = {}
    # furnaces first: generators refer to them
    for eq in sorted(sim.equipment, key=lambda e: e.kind != "eaf"):
        rng = random.Random(f"{sim.seed}:{eq.id}")
        if eq.kind == "eaf":
            models[eq.id] = EafModel(eq.id, float(_param(eq, "rated_kw")), float(_param(eq, "nominal_t")), rng, t0)
        else:
            furnace = models.get(str(_param(eq, "furnace")))
            if not isinstance(furnace, EafModel):
                raise SimulationConfigError(f"simulation.equipment {eq.id}: 'furnace' must name an eaf")
            models[eq.id] = WasteHeatGeneratorModel(
                eq.id, furnace, float(_param(eq, "efficiency", 0.15)), float(_param(eq, "lag_s", 300.0)), t0
            )
    return models


class SimulatedPlant:
    def __init__(self, plant: PlantConfig, speed: float = 1.0, history_s: float = 0.0, tick_s: float = 0.1) -> None:
        if plant.simulation is None:
            raise SimulationConfigError("the plant file has no 'simulation' section")
        self.clock = SimClock(speed, history_s)
        self.models = build_models(plant, self.clock)
        self.tick_s = tick_s
        self.modbus: dict[str, SimulatedModbusDevice] = {}
        self.opcua: dict[str, SimulatedOpcUaDevice] = {}
        for sd in plant.simulation.devices:
            device = plant.device(sd.device)
            model = self.models[sd.equipment]
            if isinstance(device, ModbusDevice):
                if sd.model not in REGISTER_MAPS:
                    raise SimulationConfigError(f"simulation.devices {sd.device}: unknown register map {sd.model!r}")
                self.modbus[device.id] = SimulatedModbusDevice(
                    REGISTER_MAPS[sd.model],
                    device.host,
                    device.port,
                    device.unit,
                    sample=lambda m=model: m.advance(self.clock.now()),
                    signals=lambda name, m=model: _signal(m, name),
                )
            elif isinstance(device, OpcUaDevice):
                if sd.model not in ADDRESS_SPACES:
                    raise SimulationConfigError(f"simulation.devices {sd.device}: unknown address space {sd.model!r}")
                self.opcua[device.id] = SimulatedOpcUaDevice(
                    ADDRESS_SPACES[sd.model],
                    device.endpoint,
                    sd.equipment.upper(),
                    signals=lambda name, m=model: _signal(m, name),
                )
        self._task: asyncio.Task | None = None

    def endpoints(self) -> list[str]:
        out = [f"modbus tcp://{d.host}:{d.port} unit {d.unit} ({d.map.name})" for d in self.modbus.values()]
        out += [f"opcua {d.endpoint} ({d.space.name})" for d in self.opcua.values()]
        return out

    def advance(self) -> float:
        now = self.clock.now()
        for model in self.models.values():
            model.advance(now)
        return now

    async def start(self) -> None:
        for dev in self.modbus.values():
            await dev.start()
        for odev in self.opcua.values():
            await odev.start()
        await self._publish()
        self._task = asyncio.create_task(self._run(), name="simulated-plant")

    async def _publish(self) -> None:
        now = self.advance()
        for odev in self.opcua.values():
            await odev.publish(int(now * 1e9))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            await self._publish()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for dev in self.modbus.values():
            await dev.stop()
        for odev in self.opcua.values():
            await odev.stop()


def _signal(model: Model, name: str) -> float:
    if name == "clock_ms":
        return int(model.t * 1000)
    return float(getattr(model, name))

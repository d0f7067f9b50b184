"""A simulated plant: equipment models on one simulated clock, served over Modbus TCP and OPC UA
exactly where the plant file's devices expect them, with the fault script applied and the ground
truth written as it happens."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from ferrogate.drivers.hj212.config import Hj212Device
from ferrogate.drivers.modbus.config import ModbusDevice
from ferrogate.gateway.config import PlantConfig
from ferrogate.gateway.ports import PORT_ATTEMPTS, address_in_use, free_port
from ferrogate.simulators.address_spaces import ADDRESS_SPACES
from ferrogate.simulators.cems_logger import CemsLogger
from ferrogate.simulators.clock import SimClock
from ferrogate.simulators.config import CemsLoggerSim, FaultBase, Simulation
from ferrogate.simulators.engine import Engine
from ferrogate.simulators.equipment import build_models
from ferrogate.simulators.faults import FaultController, Key
from ferrogate.simulators.modbus_server import SimulatedModbusDevice
from ferrogate.simulators.opcua_server import SimulatedOpcUaDevice
from ferrogate.simulators.register_maps import REGISTER_MAPS
from ferrogate.simulators.stack import StackModel

log = logging.getLogger(__name__)
SERVED_LOG = 10_000  # Modbus reads each device remembers serving (for tests; a read logs every signal)


PlantT = TypeVar("PlantT", bound=PlantConfig)


class SimulationConfigError(ValueError):
    pass


class Clock(Protocol):
    def now(self) -> float: ...


class SimulatedPlant:
    def __init__(
        self,
        plant: PlantConfig,
        simulation: Simulation | None,
        speed: float = 1.0,
        history_s: float = 0.0,
        tick_s: float = 0.1,
        truth: Path | None = None,
        clock: Clock | None = None,
        move_taken_ports: bool = False,
    ) -> None:
        """`simulation`: the plant file's `simulation:` section, serving `plant`'s devices.
        `truth`: the ground-truth ledger file (JSON lines), rewritten from the start.
        `clock`: simulated time source (default: SimClock(speed, history_s)).
        `move_taken_ports`: for ports a harness chose with `free_port()` (tests, the demo on free
        ports): a Modbus or OPC UA port another process took before the simulator bound it is replaced
        by a new free one, listed in `moved`; give the gateway `bound(plant)`. Off: a configured port
        that is taken fails the start, as it must."""
        self.move_taken_ports = move_taken_ports
        self.moved: dict[str, int] = {}  # device id -> the port it listens on instead of the plant file's
        sim = simulation
        if sim is None:
            raise SimulationConfigError("the plant file has no 'simulation' section")
        self.config = sim
        self._device_configs = list(plant.devices)
        self.clock: Clock = clock if clock is not None else SimClock(speed, history_s)
        t0 = int(self.clock.now())
        self.t0 = t0  # simulated Unix seconds the models start at (just after a tap)
        self.models = build_models(sim, t0)
        self.tick_s = tick_s
        self.truth_path = truth
        self.truth: list[dict[str, Any]] = []  # every ledger line so far
        self._truth_file: IO[str] | None = None
        # the loggers sample their stacks from the first step on: made before the engine takes it
        self.loggers = {lg.device: self._logger(plant, lg, t0) for lg in sim.loggers}
        self.engine = Engine(self.models, t0)
        self.modbus: dict[str, SimulatedModbusDevice] = {}
        self.opcua: dict[str, SimulatedOpcUaDevice] = {}
        served = {d: sim.served_signals(d) for d in {sd.device for sd in sim.devices}}
        self.faults = FaultController(
            sim.faults,
            served,
            {eq_id: model.COUNTERS for eq_id, model in self.models.items()},
            {d: self._float_outputs(d) for d in served},
            true_value=self.engine.signal,
            sim_start=t0,
        )
        for sd in sim.devices:
            device = plant.device(sd.device)
            signals = self._signals_of(sd.equipment)
            faults = self.faults.devices[device.id]
            if isinstance(device, ModbusDevice):
                self.modbus[device.id] = SimulatedModbusDevice(
                    REGISTER_MAPS[sd.model],
                    device.host,
                    device.port,
                    device.unit,
                    sample=self.advance,
                    signals=signals,
                    served_log=SERVED_LOG,
                    faults=faults,
                    equipment=sd.equipment,
                )
            elif device.id in self.opcua:
                self.opcua[device.id].add_folder(ADDRESS_SPACES[sd.model], sd.folder_name, signals, sd.equipment)
            else:
                self.opcua[device.id] = SimulatedOpcUaDevice(
                    ADDRESS_SPACES[sd.model],
                    device.endpoint,
                    sd.folder_name,
                    signals,
                    faults=faults,
                    equipment=sd.equipment,
                )
        self._task: asyncio.Task | None = None

    def _logger(self, plant: PlantConfig, config: CemsLoggerSim, t0: int) -> CemsLogger:
        """The CEMS data logger of `config.stack`, reporting to its device's listen address."""
        device = plant.device(config.device)
        stack = self.models[config.stack]
        assert isinstance(device, Hj212Device) and isinstance(stack, StackModel)  # reference_errors checked
        try:
            password = device.resolve_password() or ""
        except (LookupError, OSError) as exc:
            log.error("simulated logger %s: cannot read its password (%s); it sends an empty PW", device.id, exc)
            password = ""
        return CemsLogger(
            config,
            stack,
            mn=device.mn,
            password=password,
            host="127.0.0.1" if device.listen_host in ("0.0.0.0", "::") else device.listen_host,
            port=device.listen_port,
            zone=ZoneInfo(device.timezone or plant.site.timezone),
            clock=self.clock.now,
            sim_start=t0,
            record=self._write_truth,
        )

    def _signals_of(self, equipment: str):
        engine = self.engine
        return lambda name: engine.signal(equipment, name)

    def _float_outputs(self, device_id: str) -> set[Key]:
        out: set[Key] = set()
        for sd in self.config.devices:
            if sd.device == device_id:
                if sd.model in REGISTER_MAPS:
                    out |= {(sd.equipment, r.signal) for r in REGISTER_MAPS[sd.model].registers if r.is_float}
                else:
                    out |= {(sd.equipment, v.signal) for v in ADDRESS_SPACES[sd.model].variables if v.is_float}
        return out

    def endpoints(self) -> list[str]:
        sims = {sd.device: sd for sd in self.config.devices}
        out = [
            f"{i}: modbus tcp://{d.host}:{d.port} unit {d.unit} (map {d.map.name}, equipment {sims[i].equipment})"
            for i, d in self.modbus.items()
        ]
        out += [
            f"{i}: opcua {d.endpoint} ({', '.join(f'folder {f.name}: {f.space.name}' for f in d.folders)})"
            for i, d in self.opcua.items()
        ]
        out += [
            f"{i}: hj212 CEMS data logger MN {lg.mn} -> tcp://{lg.host}:{lg.port} (stack {lg.config.stack})"
            for i, lg in self.loggers.items()
        ]
        return out

    def advance(self) -> float:
        """Bring the models, the faults and the ledger to the clock's time; returns that time."""
        now = self.clock.now()
        self.engine.advance(now)
        self.faults.update(self.engine.now)
        records = self.engine.drain_records()
        if records:
            self._write_truth([r.to_json() for r in records])
        return now

    def _write_truth(self, lines: list[dict[str, Any]]) -> None:
        self.truth += lines
        if self._truth_file is not None:
            for line in lines:
                self._truth_file.write(json.dumps(line, ensure_ascii=False) + "\n")
            self._truth_file.flush()

    async def start(self) -> None:
        if self.truth_path is not None:
            self.truth_path.parent.mkdir(parents=True, exist_ok=True)
            self._truth_file = self.truth_path.open("w", encoding="utf-8")
        for device_id, dev in {**self.modbus, **self.opcua}.items():
            await self._listen(device_id, dev)
        await self.step()
        for logger in self.loggers.values():
            await logger.start()
        self._task = asyncio.create_task(self._run(), name="simulated-plant")

    async def _listen(self, device_id: str, dev: SimulatedModbusDevice | SimulatedOpcUaDevice) -> None:
        for attempt in range(PORT_ATTEMPTS):
            try:
                await dev.start()
                return
            except RuntimeError as exc:
                if not self.move_taken_ports or not address_in_use(exc) or attempt == PORT_ATTEMPTS - 1:
                    raise
                port = free_port()
                log.warning("simulator %s: its port was taken (%s); listening on %d instead", device_id, exc, port)
                dev.move(port)
                self.moved[device_id] = port

    def bound(self, plant: PlantT) -> PlantT:
        """`plant` with the devices the simulator moved (`moved`) at the ports it listens on."""
        if not self.moved:
            return plant
        devices = []
        for device in plant.devices:
            if device.id in self.moved and isinstance(device, ModbusDevice):
                device = device.model_copy(update={"port": self.moved[device.id]})
            elif device.id in self.opcua and device.id in self.moved:
                device = device.model_copy(update={"endpoint": self.opcua[device.id].endpoint})
            devices.append(device)
        return plant.model_copy(update={"devices": devices})

    async def step(self) -> None:
        """Advance, apply connection faults and publish the OPC UA values (the periodic tick)."""
        now = self.advance()
        await self._apply_connection_faults()
        for odev in self.opcua.values():
            await odev.publish(int(now * 1e9))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                await self.step()
            except Exception:
                log.exception("simulator tick failed")

    async def _apply_connection_faults(self) -> None:
        devices: Mapping[str, SimulatedModbusDevice | SimulatedOpcUaDevice] = {**self.modbus, **self.opcua}
        for device_id, dev in devices.items():
            wanted = self.faults.devices[device_id].refusing
            if wanted and not dev.refusing:
                log.info("simulator %s: refusing connections (injected fault)", device_id)
                await dev.refuse()
            elif not wanted and dev.refusing:
                log.info("simulator %s: accepting connections again", device_id)
                await dev.accept()

    async def inject(self, spec: Mapping[str, Any] | FaultBase) -> FaultBase:
        """Add a fault now (a mapping without 'at' starts at once); raises ValueError if it does not fit the plant."""
        fault = self.faults.parse(spec, self.engine.now)
        checked = self.config.model_copy(update={"faults": [fault]})
        problems = [msg for loc, msg in checked.reference_errors(self._device_configs) if loc[1] == "faults"]
        if problems:
            raise ValueError(f"fault {fault.fault} on {fault.device}: {'; '.join(problems)}")
        self.faults.add(fault)
        await self.step()
        return fault

    async def clear_faults(self, device: str | None = None) -> None:
        self.faults.clear(device)
        await self.step()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for dev in self.modbus.values():
            await dev.stop()
        for odev in self.opcua.values():
            await odev.stop()
        for logger in self.loggers.values():
            await logger.stop()
        if self._truth_file is not None:
            self._truth_file.close()
            self._truth_file = None

"""Fault injection: which faults are in force on each simulated device, from the plant file's
`simulation.faults` script and from faults injected while running (tests, `ferrogate simulate
--fault`). Deterministic: a fault is in force while the simulated (or wall) time since the
simulation start lies in [at, at + duration).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import TypeAdapter

from ferrogate.simulators.config import (
    BadStatusFault,
    ClockOffsetFault,
    CounterResetFault,
    ExceptionFault,
    Fault,
    FaultBase,
    FreezeFault,
    LatencyFault,
    NanFault,
    OutOfRangeFault,
    RefuseConnections,
    SignalFault,
)
from ferrogate.simulators.model_base import CLOCK_SIGNAL

Key = tuple[str, str]  # (equipment id, signal)
FAULT_ADAPTER: TypeAdapter[Any] = TypeAdapter(Fault)


class DeviceFaults:
    """The faults in force on one device now; read on every request and publish, so the common case
    (nothing in force) costs one attribute test."""

    def __init__(self) -> None:
        self.exception_code: int | None = None
        self.latency_s = 0.0
        self.refusing = False
        self.bad_status: dict[Key, tuple[int, bool]] = {}  # key -> (status code, value sent with it)
        self.frozen: dict[Key, float | None] = {}  # None until the first value is held
        self.replaced: dict[Key, float] = {}
        self.offsets: dict[Key, float] = {}  # counter resets (meter replaced): permanent
        self.clock_offset_ms = 0.0  # the device clock's error (clock register, OPC UA source times)
        self.altered = False

    def value(self, key: Key, value: float) -> float:
        """What the device serves for `key` whose true value is `value`."""
        if not self.altered:
            return value
        if key[1] == CLOCK_SIGNAL:
            return value + self.clock_offset_ms
        offset = self.offsets.get(key)
        if offset is not None:
            value -= offset
        if key in self.replaced:
            return self.replaced[key]
        if key in self.frozen:
            held = self.frozen[key]
            if held is None:
                self.frozen[key] = value
                return value
            return held
        return value

    def status(self, key: Key) -> tuple[int, bool] | None:
        """A Bad or Uncertain OPC UA status code for `key`, if one is in force, and whether the
        server sends the value beside a Bad one."""
        return self.bad_status.get(key) if self.bad_status else None

    def _reset(self) -> None:
        """Forget the duration faults (counter offsets stay: the meter was replaced)."""
        self.exception_code = None
        self.latency_s = 0.0
        self.refusing = False
        self.bad_status = {}
        self.replaced = {}
        self.frozen = {}
        self.clock_offset_ms = 0.0

    def _finish(self) -> None:
        self.altered = bool(self.frozen or self.replaced or self.offsets or self.clock_offset_ms)


class FaultController:
    """Evaluates the fault script against the clocks and keeps each device's DeviceFaults current."""

    def __init__(
        self,
        scripted: Iterable[FaultBase],
        served: Mapping[str, Mapping[str, set[str]]],
        counters: Mapping[str, Iterable[str]],
        float_outputs: Mapping[str, set[Key]],
        true_value: Callable[[str, str], float],
        sim_start: float,
        wall: Callable[[], float] = time.monotonic,
    ) -> None:
        """`served`: device -> equipment -> signals it serves; `counters`: equipment -> counter
        signals; `float_outputs`: device -> keys served as floating point (NaN is possible)."""
        self.faults: list[FaultBase] = list(scripted)
        self.served = served
        self.counters = {eq: set(names) for eq, names in counters.items()}
        self.float_outputs = float_outputs
        self._true_value = true_value
        self.sim_start = sim_start
        self._wall = wall
        self.wall_start = wall()
        self.devices: dict[str, DeviceFaults] = {d: DeviceFaults() for d in served}
        self._active: frozenset[int] = frozenset()
        self._resets_done: set[int] = set()

    def elapsed(self, fault: FaultBase, sim_now: float) -> float:
        return sim_now - self.sim_start if fault.clock == "sim" else self._wall() - self.wall_start

    def parse(self, spec: Mapping[str, Any] | FaultBase, sim_now: float) -> FaultBase:
        """A fault from a mapping; without 'at' it starts now (in its own clock)."""
        if isinstance(spec, FaultBase):
            return spec
        data = dict(spec)
        if "at" not in data:
            clock = data.get("clock", "sim")
            data["at"] = sim_now - self.sim_start if clock == "sim" else self._wall() - self.wall_start
        return FAULT_ADAPTER.validate_python(data)

    def add(self, fault: FaultBase) -> None:
        self.faults.append(fault)

    def clear(self, device: str | None = None) -> None:
        """End every fault (of one device); counter resets already done stay done (the meter was replaced)."""
        self.faults = [f for f in self.faults if device is not None and f.device != device]
        self._active = frozenset({-1})  # force a rebuild

    def update(self, sim_now: float) -> None:
        faults = self.faults
        if not faults and not self._active:
            return
        active = []
        for index, fault in enumerate(faults):
            start, end = fault.window()
            elapsed = self.elapsed(fault, sim_now)
            if isinstance(fault, CounterResetFault):
                if elapsed >= start and id(fault) not in self._resets_done:
                    self._resets_done.add(id(fault))
                    self._reset_counters(fault)
            elif start <= elapsed < end:
                active.append(index)
        key = frozenset(id(faults[i]) for i in active)
        if key != self._active:
            self._active = key
            self._rebuild([faults[i] for i in active])

    def _targets(self, fault: FaultBase, counters_only: bool = False) -> list[Key]:
        served = self.served[fault.device]
        equipment = [fault.equipment] if fault.equipment else list(served)
        signals = fault.signals if isinstance(fault, SignalFault) else None
        keys = []
        for eq in equipment:
            names = served.get(eq, set())
            if counters_only:
                names = names & self.counters.get(eq, set())
            for name in sorted(names):
                if name != CLOCK_SIGNAL and (signals is None or name in signals):
                    keys.append((eq, name))
        return keys

    def _reset_counters(self, fault: CounterResetFault) -> None:
        state = self.devices[fault.device]
        for eq, name in self._targets(fault, counters_only=True):
            state.offsets[(eq, name)] = self._true_value(eq, name)
        state._finish()

    def _rebuild(self, active: list[FaultBase]) -> None:
        for device, state in self.devices.items():
            held = dict(state.frozen)
            state._reset()
            for fault in (f for f in active if f.device == device):
                if isinstance(fault, RefuseConnections):
                    state.refusing = True
                elif isinstance(fault, ExceptionFault):
                    state.exception_code = fault.code
                elif isinstance(fault, ClockOffsetFault):
                    state.clock_offset_ms = fault.offset_s * 1000
                elif isinstance(fault, LatencyFault):
                    state.latency_s = max(state.latency_s, fault.delay_s)
                elif isinstance(fault, FreezeFault):
                    for key in self._targets(fault):
                        state.frozen[key] = held.get(key)
                elif isinstance(fault, NanFault):
                    floats = self.float_outputs.get(device, set())
                    for key in self._targets(fault):
                        state.replaced[key] = math.nan if key in floats else math.inf
                elif isinstance(fault, OutOfRangeFault):
                    for key in self._targets(fault):
                        state.replaced[key] = fault.value
                elif isinstance(fault, BadStatusFault):
                    from asyncua import ua

                    code = getattr(ua.StatusCodes, fault.status)
                    for key in self._targets(fault):
                        state.bad_status[key] = (code, fault.with_value)
            state._finish()

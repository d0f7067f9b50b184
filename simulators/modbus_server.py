"""A simulated Modbus TCP device: a pymodbus server whose registers are sampled from a model at
the moment each request arrives. Read-only: write requests get ILLEGAL_FUNCTION."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from ferrogate.simulators.registers import RegisterMap, served_value

READ_FUNCTIONS = frozenset({3, 4})


class SimulatedModbusDevice:
    """Serves `register_map` on host:port for one unit id; `signals(name)` gives the model's value
    at the current simulated time, `sample()` advances the model first."""

    def __init__(
        self,
        register_map: RegisterMap,
        host: str,
        port: int,
        unit: int,
        sample: Callable[[], None],
        signals: Callable[[str], float],
        served_log: int = 100_000,
    ) -> None:
        self.map = register_map
        self.host, self.port, self.unit = host, port, unit
        self._sample = sample
        self._signals = signals
        self.requests = 0
        # what each read served: (values by signal) as a correct client decodes them
        self.served: deque[dict[str, float]] = deque(maxlen=served_log)
        mapped = register_map.mapped()
        blocks = [
            SimData(address=a, values=0, datatype=DataType.REGISTERS if a in mapped else DataType.INVALID)
            for a in range(register_map.size)
        ]
        device = SimDevice(id=unit, simdata=blocks, action=self._on_access)
        self.server = ModbusTcpServer(device, address=(host, port))

    async def _on_access(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if set_values is not None or function_code not in READ_FUNCTIONS:
            return ExcCodes.ILLEGAL_FUNCTION
        self.requests += 1
        self._sample()
        image = self.map.image(self._signals)
        registers[0 : len(image)] = image
        self.served.append({r.signal: served_value(r, self._signals(r.signal)) for r in self.map.registers})
        return None

    async def start(self) -> None:
        try:
            await self.server.serve_forever(background=True)
        except (RuntimeError, OSError) as exc:
            raise RuntimeError(f"Modbus simulator cannot listen on {self.host}:{self.port}: {exc}") from exc

    async def stop(self) -> None:
        await self.server.shutdown()

"""A simulated Modbus TCP device: a pymodbus server whose registers and bits are sampled from a model
at the moment each request arrives. It serves all four tables of its register map (holding and input
registers, coils, discrete inputs); a read touching an unmapped address answers exception 2, writes
answer exception 1 (the simulators are read-only, like the gateway). Faults in force (exception
answers, latency, frozen/NaN/out-of-range values, counter resets, refused connections) come from a
DeviceFaults object."""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Callable

from pymodbus.constants import ExcCodes
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.pdu.bit_message import ReadCoilsRequest, ReadDiscreteInputsRequest
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from ferrogate.gateway.ports import bind_error
from ferrogate.simulators.faults import DeviceFaults
from ferrogate.simulators.registers import (
    BIT_TABLES,
    TABLE_OF_FUNCTION,
    Register,
    RegisterMap,
    served_value,
)


def _register_block(register_map: RegisterMap, table: str) -> list[SimData]:
    """Runs of mapped registers; the gaps between them are invalid (exception 2)."""
    mapped = sorted(register_map.mapped(table))
    if not mapped:
        return [SimData(address=0, datatype=DataType.INVALID)]
    runs: list[SimData] = []
    start = prev = mapped[0]
    for a in [*mapped[1:], None]:
        if a != prev + 1:
            runs.append(SimData(address=start, count=prev - start + 1, values=0, datatype=DataType.REGISTERS))
            if a is not None:
                start = a
        if a is not None:
            prev = a
    return runs


def _bit_block(register_map: RegisterMap, table: str) -> list[SimData]:
    size = max(16, -(-register_map.table_size(table) // 16) * 16)
    return [SimData(address=0, values=[False] * size, datatype=DataType.BITS)]


def _mapped_bits_only(base: type[ModbusPDU], mapped: frozenset[int]) -> type[ModbusPDU]:
    """A bit-read request class that answers exception 2 for unmapped bits (pymodbus keeps bits in
    16-bit groups and cannot mark single bits invalid)."""

    class MappedBitsRequest(base):  # type: ignore[misc, valid-type]
        async def datastore_update(self, context, device_id):
            if not all(a in mapped for a in range(self.address, self.address + self.count)):
                return ExceptionResponse(self.function_code, ExcCodes.ILLEGAL_ADDRESS)
            return await super().datastore_update(context, device_id)

    return MappedBitsRequest


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
        faults: DeviceFaults | None = None,
        equipment: str = "",
    ) -> None:
        self.map = register_map
        self.host, self.port, self.unit = host, port, unit
        self._sample = sample
        self._signals = signals
        self.faults = faults if faults is not None else DeviceFaults()
        self.equipment = equipment
        self.requests = 0
        # function code of every request PDU received, reads or not (the gateway must only read)
        self.function_codes: Counter[int] = Counter()
        self.refusing = False
        # what each read served: (values by signal) as a correct client decodes them
        self.served: deque[dict[str, float]] = deque(maxlen=served_log)
        # the register a signal's served value is decoded from (its first one in the map)
        self._first: dict[str, Register] = {}
        for reg in register_map.registers:
            self._first.setdefault(reg.signal, reg)
        self.server: ModbusTcpServer | None = None  # made by start(): pymodbus needs the running loop

    def _new_server(self) -> ModbusTcpServer:
        m = self.map
        device = SimDevice(
            id=self.unit,
            simdata=(
                _bit_block(m, "coil"),
                _bit_block(m, "discrete_input"),
                _register_block(m, "holding"),
                _register_block(m, "input"),
            ),
            action=self._on_access,
        )
        checked = [
            _mapped_bits_only(ReadCoilsRequest, frozenset(m.mapped("coil"))),
            _mapped_bits_only(ReadDiscreteInputsRequest, frozenset(m.mapped("discrete_input"))),
        ]
        return ModbusTcpServer(
            device, address=(self.host, self.port), custom_pdu=checked, trace_pdu=self._count_function_code
        )

    def _count_function_code(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if not sending:
            self.function_codes[pdu.function_code] += 1
        return pdu

    async def _on_access(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        table = TABLE_OF_FUNCTION.get(function_code)
        if set_values is not None or table is None:
            return ExcCodes.ILLEGAL_FUNCTION
        self._sample()  # the model, and the faults in force, at this request's simulated time
        faults = self.faults
        if faults.latency_s:
            await asyncio.sleep(faults.latency_s)
        if faults.exception_code is not None:
            return ExcCodes(faults.exception_code)
        self.requests += 1
        eq, signals = self.equipment, self._signals
        values = {name: faults.value((eq, name), signals(name)) for name in self._first}
        image = self.map.image(values, table)
        if table in BIT_TABLES:
            bits = image + [0] * (-len(image) % 16)
            registers[: len(bits) // 16] = [
                sum(bit << i for i, bit in enumerate(bits[k : k + 16])) for k in range(0, len(bits), 16)
            ]
        else:
            registers[: len(image) - start_address] = image[start_address:]
        self.served.append({name: served_value(reg, values[name]) for name, reg in self._first.items()})
        return None

    async def start(self) -> None:
        self.server = self._new_server()
        try:
            await self.server.serve_forever(background=True)
        except (RuntimeError, OSError) as exc:
            # pymodbus keeps the OSError to its log: ask the address why, so a taken port shows as EADDRINUSE
            reason = exc if isinstance(exc, OSError) else bind_error(self.host, self.port) or exc
            raise RuntimeError(f"Modbus simulator cannot listen on {self.host}:{self.port}: {reason}") from reason

    def move(self, port: int) -> None:
        """Listen on `port` instead, from the next `start` (after one that found the port taken)."""
        self.port = port

    async def refuse(self) -> None:
        """Drop every connection and stop listening (connection attempts are refused)."""
        if not self.refusing and self.server is not None:
            self.refusing = True
            await self.server.shutdown()

    async def accept(self) -> None:
        """Listen again after `refuse`."""
        if self.refusing:
            await self.start()
            self.refusing = False

    async def stop(self) -> None:
        if not self.refusing and self.server is not None:
            await self.server.shutdown()

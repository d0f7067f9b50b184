"""Modbus TCP driver (pymodbus async client): planned block reads, decoded per point. Read-only."""

from __future__ import annotations

import logging

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from ferrogate.drivers.base import bad_readings, now_ns
from ferrogate.drivers.modbus_plan import ReadRequest, plan_requests
from ferrogate.gateway.config import ModbusDevice, ModbusTable
from ferrogate.gateway.reading import (
    COMM_ERROR,
    DEVICE_EXCEPTION,
    NOT_FINITE,
    Quality,
    Reading,
)

log = logging.getLogger(__name__)

EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    10: "gateway path unavailable",
    11: "gateway target failed to respond",
}


class ModbusDriver:
    def __init__(self, device: ModbusDevice) -> None:
        self.device_id = device.id
        self.device = device
        self.requests: list[ReadRequest] = plan_requests(list(device.points), device.max_gap)
        self.clock_point = device.clock_point
        self._client = AsyncModbusTcpClient(
            device.host,
            port=device.port,
            timeout=device.timeout_s,
            retries=1,
            reconnect_delay=0.5,
            reconnect_delay_max=10.0,
            name=f"modbus:{device.id}",
        )

    async def connect(self) -> None:
        if not await self._client.connect():
            raise ConnectionError(f"cannot connect to {self.device.host}:{self.device.port}")

    async def close(self) -> None:
        self._client.close()

    async def _fetch(self, req: ReadRequest) -> list[int]:
        reader = (
            self._client.read_holding_registers
            if req.table is ModbusTable.holding
            else self._client.read_input_registers
        )
        rr = await reader(req.start, count=req.count, device_id=self.device.unit)
        if rr.isError():
            code = getattr(rr, "exception_code", 0)
            raise DeviceException(code)
        return rr.registers

    async def read(self) -> list[Reading]:
        readings: list[Reading] = []
        scan_time = now_ns()
        for index, req in enumerate(self.requests):
            try:
                regs = await self._fetch(req)
            except DeviceException as exc:
                readings += bad_readings([(d.point_id, d.unit) for d in req.decoders], str(exc), now_ns())
                continue
            except (ModbusException, ConnectionError, OSError) as exc:
                # the link is gone: the rest of this scan cannot succeed either
                reason = f"{COMM_ERROR}: {type(exc).__name__}: {exc}"
                pending = [(d.point_id, d.unit) for r in self.requests[index:] for d in r.decoders]
                readings += bad_readings(pending, reason, now_ns())
                break
            t = now_ns()
            for d in req.decoders:
                value = d.decode(regs)
                if value != value or value in (float("inf"), float("-inf")):
                    readings.append(Reading(d.point_id, None, d.unit, t, Quality.BAD, f"{NOT_FINITE}: {value}"))
                else:
                    readings.append(Reading(d.point_id, value, d.unit, t))
        if self.clock_point is not None:
            _stamp_with_device_clock(readings, self.clock_point, scan_time)
        return readings


class DeviceException(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"{DEVICE_EXCEPTION}: code {code} ({EXCEPTION_NAMES.get(code, 'unknown')})")
        self.code = code


def _stamp_with_device_clock(readings: list[Reading], clock_point: str, fallback_ns: int) -> None:
    """Use the device's own clock register (Unix ms) as source time for the whole scan."""
    for r in readings:
        if r.point == clock_point:
            if r.quality is Quality.GOOD and r.value is not None:
                t = int(r.value) * 1_000_000
                for other in readings:
                    other.source_time_ns = t
            return

"""Modbus TCP driver (pymodbus async client): planned block reads, decoded per point. Read-only.

Per request: the device's timeout and retries, its minimum interval between requests, and a
connection borrowed from the host's link (which limits concurrent requests per host:port).
An exception response marks that request's points BAD and the scan goes on; a timeout does the
same (and drops the connection, so a late answer cannot pass for the next request's), but after
two timeouts in a row the rest of the scan is skipped (a dead unit behind a serial gateway would
otherwise hold the shared line for every one of its requests); a lost connection makes the rest
of the scan BAD at once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import struct
import time
from collections.abc import Sequence
from itertools import repeat

from pymodbus.exceptions import ModbusException, ModbusIOException

from ferrogate.drivers.base import bad_readings, now_ns
from ferrogate.drivers.modbus.config import ModbusDevice, ModbusTable
from ferrogate.drivers.modbus.decode import sentinel_text
from ferrogate.drivers.modbus.link import LinkConnection, ModbusLink, ModbusLinks
from ferrogate.drivers.modbus.plan import ReadRequest, plan_requests
from ferrogate.gateway.metrics import DeviceMetrics
from ferrogate.gateway.reading import (
    COMM_ERROR,
    DEVICE_EXCEPTION,
    NOT_FINITE,
    SENTINEL,
    TIMEOUT,
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
TIMEOUTS_BEFORE_SKIP = 2
_REGISTER_STRUCTS: dict[int, struct.Struct] = {}


class DeviceException(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"{DEVICE_EXCEPTION}: code {code} ({EXCEPTION_NAMES.get(code, 'unknown')})")
        self.code = code


class ShortResponse(DeviceException):
    def __init__(self, text: str) -> None:
        Exception.__init__(self, text)
        self.code = 0


class RequestTimeout(Exception):
    pass


class ModbusDriver:
    def __init__(
        self, device: ModbusDevice, metrics: DeviceMetrics | None = None, links: ModbusLinks | None = None
    ) -> None:
        self.device_id = device.id
        self.device = device
        self.metrics = metrics if metrics is not None else DeviceMetrics(device.id, "modbus")
        self.link: ModbusLink = (links or ModbusLinks()).join(device)
        self._joined = True
        self._points = {p.id: p for p in device.points}
        self.clock_point = device.clock_point
        self.requests: list[ReadRequest] = self.group([p.id for p in device.points])
        self._retry_note = f"{device.retries + 1} tries" if device.retries else "1 try"

    def group(self, point_ids: Sequence[str]) -> list[ReadRequest]:
        """The reads that cover these points (plus the device clock, which stamps every scan)."""
        ids = list(point_ids)
        if self.clock_point is not None and self.clock_point not in ids:
            ids.append(self.clock_point)
        points = [self._points[pid] for pid in ids]
        return plan_requests(points, self.device.max_gap, self.device.max_registers_per_read)

    async def connect(self) -> None:
        if self.link.connected:
            return  # another unit (or scan class) keeps the link up; no need to queue for it
        async with self.link.borrow() as conn:
            await conn.ensure_connected(self.device.timeout_s)

    async def close(self) -> None:
        if self._joined:
            self._joined = False
            self.link.leave()

    async def _fetch(self, conn: LinkConnection, req: ReadRequest) -> bytes | list[bool]:
        client, device = conn.client, self.device
        table = req.table
        if table is ModbusTable.holding:
            call = client.read_holding_registers
        elif table is ModbusTable.input:
            call = client.read_input_registers
        elif table is ModbusTable.coil:
            call = client.read_coils
        else:
            call = client.read_discrete_inputs
        for _ in range(device.retries + 1):
            await conn.ensure_connected(device.timeout_s)
            await conn.pace(device.min_request_interval_s)
            self.metrics.requests += 1
            try:
                async with asyncio.timeout(device.timeout_s):
                    rr = await call(req.start, count=req.count, device_id=device.unit)
            except (TimeoutError, ModbusIOException):
                # a connection that died while we waited is a comm error, not a slow device
                if not client.connected:
                    raise ConnectionError("connection lost while waiting for an answer") from None
                # a late answer could be taken for the next request's (devices and gateways do
                # not all keep transaction ids straight): drop the connection, retry on a new one
                client.close()
                continue
            finally:
                conn.last_done = time.monotonic()
            if rr.isError():
                raise DeviceException(getattr(rr, "exception_code", 0))
            if table.is_bits:
                bits = rr.bits
                if len(bits) < req.count:
                    raise ShortResponse(f"{DEVICE_EXCEPTION}: short response ({len(bits)} of {req.count} values)")
                return bits
            raw = _register_bytes(rr)
            if len(raw) < 2 * req.count:
                raise ShortResponse(f"{DEVICE_EXCEPTION}: short response ({len(raw) // 2} of {req.count} values)")
            return raw
        raise RequestTimeout(f"{TIMEOUT}: no answer within {device.timeout_s:g} s ({self._retry_note})")

    async def read(self, group: list[ReadRequest] | None = None) -> list[Reading]:
        requests = self.requests if group is None else group
        readings: list[Reading] = []
        scan_time = now_ns()
        timeouts_in_a_row = 0
        async with self.link.borrow() as conn:
            for index, req in enumerate(requests):
                try:
                    data = await self._fetch(conn, req)
                except DeviceException as exc:
                    timeouts_in_a_row = 0
                    readings += bad_readings([(d.point_id, d.unit) for d in req.decoders], str(exc), now_ns())
                    continue
                except RequestTimeout as exc:
                    timeouts_in_a_row += 1
                    readings += bad_readings([(d.point_id, d.unit) for d in req.decoders], str(exc), now_ns())
                    if timeouts_in_a_row >= TIMEOUTS_BEFORE_SKIP:
                        rest = [(d.point_id, d.unit) for r in requests[index + 1 :] for d in r.decoders]
                        reason = f"{TIMEOUT}: skipped after {timeouts_in_a_row} timeouts in a row"
                        readings += bad_readings(rest, reason, now_ns())
                        break
                    continue
                except (ModbusException, ConnectionError, OSError) as exc:
                    # the link is gone: the rest of this scan cannot succeed either
                    reason = f"{COMM_ERROR}: {type(exc).__name__}: {exc}"
                    pending = [(d.point_id, d.unit) for r in requests[index:] for d in r.decoders]
                    readings += bad_readings(pending, reason, now_ns())
                    break
                timeouts_in_a_row = 0
                _decode_into(readings, req, data, now_ns())
        if self.clock_point is not None:
            _stamp_with_device_clock(readings, self.clock_point, scan_time)
        return readings


def _register_bytes(rr: object) -> bytes:
    """A register response's registers as big-endian bytes: as they came (drivers/modbus/pdu.py), or
    packed from pymodbus's list where a client has not been set up for that."""
    raw = getattr(rr, "raw", None)
    if raw is not None:
        return raw
    values = rr.registers  # type: ignore[attr-defined]
    fmt = _REGISTER_STRUCTS.get(len(values))
    if fmt is None:
        fmt = _REGISTER_STRUCTS[len(values)] = struct.Struct(f">{len(values)}H")
    return fmt.pack(*values)


def _decode_into(readings: list[Reading], req: ReadRequest, data: bytes | list[bool], t: int) -> None:
    append = readings.append
    if isinstance(data, list):
        for d in req.decoders:
            append(Reading(d.point_id, d.decode_bits(data), d.unit, t))
        return
    block = req.block
    assert block is not None  # register tables
    values = block.values(data)
    invalid = block.invalid_at(values)  # "not available" values: a mask after decoding, [] nearly always
    # the sum is finite when every value is (it may also overflow: then each one is checked)
    if not invalid and (not block.has_floats or math.isfinite(sum(values))):
        readings.extend(map(Reading, block.ids, values, block.units, repeat(t, len(values))))
        return
    for i, (d, value) in enumerate(zip(block.decoders, values, strict=True)):
        if i in invalid:
            append(Reading(d.point_id, None, d.unit, t, Quality.BAD, f"{SENTINEL}: {sentinel_text(d, value)}"))
        elif d.is_float and not math.isfinite(value):
            append(Reading(d.point_id, None, d.unit, t, Quality.BAD, f"{NOT_FINITE}: {value}"))
        else:
            append(Reading(d.point_id, value, d.unit, t))


def _stamp_with_device_clock(readings: list[Reading], clock_point: str, fallback_ns: int) -> None:
    """Use the device's own clock register (Unix ms) as source time for the whole scan."""
    for r in readings:
        if r.point == clock_point:
            if r.quality is Quality.GOOD and r.value is not None:
                t = int(r.value) * 1_000_000
                for other in readings:
                    other.source_time_ns = t
            return

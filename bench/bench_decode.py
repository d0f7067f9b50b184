"""Modbus decoding cost alone (no I/O): one planned read of 80 mixed points (float32, uint32 in
both word orders, int16, uint16) decoded into Readings, as the driver does for each response.

    .venv/bin/python bench/bench_decode.py

Prints nanoseconds per point and points per CPU-second (best of 5 runs). Not a test.
"""

from __future__ import annotations

import struct
import time

from ferrogate.drivers.modbus.config import ModbusPoint
from ferrogate.drivers.modbus.driver import _decode_into
from ferrogate.drivers.modbus.plan import plan_requests

TYPES = ("float32", "uint32", "int16", "uint16")


def main(points: int = 80, scans: int = 3000) -> None:
    plan, address = [], 0
    for i in range(points):
        type_ = TYPES[i % len(TYPES)]
        order = "little" if i % 8 == 1 else "big"
        point = ModbusPoint(id=f"p{i}", address=address, type=type_, unit="kW", word_order=order)
        plan.append(point)
        address += point.type.registers
    [request] = plan_requests(plan, max_gap=8)
    response = struct.pack(f">{request.count}H", *((i * 7919) % 65536 for i in range(request.count)))
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        for _ in range(scans):
            _decode_into([], request, response, 0)
        best = min(best, (time.process_time() - started) / (scans * points))
    print(
        f"decode: {points} points in one {request.count}-register read: {best * 1e9:.0f} ns per point "
        f"(decode + Reading), {1 / best:,.0f} points per CPU-second"
    )


if __name__ == "__main__":
    main()

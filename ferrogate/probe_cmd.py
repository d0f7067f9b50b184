"""`ferrogate probe --plant FILE --device ID [--json]`: read every point of one device once and print
value, unit, quality and timing; the commissioning tool for checking a register map or node list
on site. Read-only like the gateway. An HJ 212 logger pushes its data: the probe listens for its
next upload instead (`--wait`, ferrogate/probe_hj212.py). Exit status: 0 all points good, 2 some
point not good, 1 the device could not be reached (or the plant file / device id is wrong).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferrogate.drivers.modbus.config import ModbusDevice
from ferrogate.gateway.config import DeviceConfig, PlantConfig
from ferrogate.gateway.reading import Quality, Reading
from ferrogate.gateway.timeutil import iso_utc
from ferrogate.plant_file import load_or_exit


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("probe", help="read every point of one device once: value, unit, quality, timing")
    p.add_argument("--plant", type=Path, required=True)
    p.add_argument("--device", required=True, help="device id in the plant file")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    p.add_argument(
        "--wait", type=float, default=None, help="HJ 212: seconds to wait for an upload (default 3 x its interval)"
    )


@dataclass
class ProbeResult:
    device: str
    protocol: str
    endpoint: str
    connected: bool = False
    error: str | None = None
    connect_ms: float = 0.0
    read_ms: float = 0.0
    requests: int = 0
    plan: list[str] = field(default_factory=list)  # Modbus: the reads, e.g. "holding 0-7 (3 points)"
    decoded: list[str] = field(default_factory=list)  # HJ 212: what the upload said, line by line
    refused: list[str] = field(default_factory=list)  # HJ 212: frames refused meanwhile, by reason
    readings: list[Reading] = field(default_factory=list)

    @property
    def all_good(self) -> bool:
        return self.connected and all(r.quality is Quality.GOOD for r in self.readings)

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "protocol": self.protocol,
            "endpoint": self.endpoint,
            "connected": self.connected,
            "error": self.error,
            "connect_ms": round(self.connect_ms, 3),
            "read_ms": round(self.read_ms, 3),
            "requests": self.requests,
            "plan": self.plan,
            "decoded": self.decoded,
            "refused": self.refused,
            "readings": [
                {
                    "point": r.point,
                    "value": r.value,
                    "unit": r.unit,
                    "quality": r.quality.value,
                    "reason": r.reason,
                    "source_time": iso_utc(r.source_time_ns),
                    "source_time_ns": r.source_time_ns,
                }
                for r in self.readings
            ],
        }


def describe(device: DeviceConfig) -> str:
    if isinstance(device, ModbusDevice):
        return f"modbus tcp://{device.host}:{device.port} unit {device.unit}"
    security = "" if device.security_mode.value == "None" else f" {device.security_policy}/{device.security_mode}"
    return f"opcua {device.endpoint} mode {device.mode}{security}"


async def probe(plant: PlantConfig, device_id: str) -> ProbeResult:
    from ferrogate.gateway.collect import make_driver
    from ferrogate.gateway.metrics import DeviceMetrics

    device = plant.device(device_id)
    result = ProbeResult(device.id, device.protocol, describe(device))
    metrics = DeviceMetrics(device.id, device.protocol)
    driver = make_driver(plant, device.id, metrics)
    plan = getattr(driver, "requests", None)
    if isinstance(device, ModbusDevice) and plan is not None:
        result.plan = [r.describe() for r in plan]
    started = time.perf_counter()
    try:
        async with asyncio.timeout(device.timeout_s * 3):
            await driver.connect()
    except Exception as exc:  # any failure to connect is what the engineer needs to see
        result.connect_ms = (time.perf_counter() - started) * 1000
        result.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        await driver.close()
        return result
    result.connected = True
    result.connect_ms = (time.perf_counter() - started) * 1000
    before = metrics.requests
    started = time.perf_counter()
    try:
        result.readings = await driver.read()
    finally:
        result.read_ms = (time.perf_counter() - started) * 1000
        result.requests = metrics.requests - before
        await driver.close()
    return result


def render(result: ProbeResult) -> str:
    lines = [f"{result.device}  {result.endpoint}"]
    lines += [f"refused meanwhile: {r}" for r in result.refused]
    if not result.connected:
        what = "nothing received" if result.protocol == "hj212" else "cannot connect"
        lines.append(f"{what} after {result.connect_ms:.1f} ms: {result.error}")
        return "\n".join(lines)
    if result.protocol == "hj212":
        lines.append(f"upload after {result.connect_ms:.1f} ms ({result.requests} frame(s) received):")
    else:
        lines.append(
            f"connect {result.connect_ms:.1f} ms; read {len(result.readings)} values in "
            f"{result.requests} request(s), {result.read_ms:.1f} ms"
        )
    lines += [f"  read {step}" for step in result.plan]
    lines += [f"  {line}" for line in result.decoded]
    rows = [("point", "value", "unit", "quality", "source time (UTC)", "reason")]
    for r in result.readings:
        value = "-" if r.value is None else f"{r.value:.10g}"
        rows.append((r.point, value, r.unit, r.quality.value, iso_utc(r.source_time_ns), r.reason or ""))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row[:5], widths, strict=True)) + "  " + row[5])
    bad = sum(r.quality is not Quality.GOOD for r in result.readings)
    lines.append(f"{len(result.readings) - bad} good, {bad} not good")
    return "\n".join(line.rstrip() for line in lines)


def run(args: argparse.Namespace) -> int:
    plant = load_or_exit(args.plant)
    ids = [d.id for d in plant.devices]
    if args.device not in ids:
        print(f"no device {args.device!r} in {args.plant}; devices: {', '.join(ids)}", file=sys.stderr)
        return 1
    device = plant.device(args.device)
    if device.protocol == "hj212":
        from ferrogate.probe_hj212 import probe_hj212

        wait = args.wait if args.wait is not None else 3 * device.scan_interval_s
        result = asyncio.run(probe_hj212(device, plant.site.timezone, wait))
    else:
        result = asyncio.run(probe(plant, args.device))
    print(json.dumps(result.to_json(), ensure_ascii=False) if args.json else render(result))
    if not result.connected:
        return 1
    return 0 if result.all_good else 2

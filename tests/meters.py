"""Counting meters for the store-and-forward tests: real Modbus TCP simulator servers whose every read
has its own meter-clock timestamp, and an exact comparison of what they served with what InfluxDB holds.

Each read advances a meter by one step of its clock, so no two reads share a timestamp and a lost or
doubled reading cannot hide. `pause()` makes the meter answer every further read with a device
failure (nothing more is served), which freezes the set of readings the test expects.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ferrogate.gateway.config_loader import parse_plant
from ferrogate.gateway.influx import InfluxV1Client
from ferrogate.gateway.plant_file import PlantFile
from ferrogate.gateway.services import LOOPBACK, free_port
from ferrogate.simulators.modbus_server import SimulatedModbusDevice
from ferrogate.simulators.registers import Register, RegisterMap

METER_MAP = RegisterMap(
    "counting_meter",
    (
        Register(0, "uint32", "energy_kwh", "kWh"),
        Register(2, "float32", "power_kw", "kW"),
        Register(4, "uint64", "clock_ms", "ms"),
    ),
)
# point id in the plant file -> signal of the map, unit
POINTS = {"energy": ("energy_kwh", "kWh"), "power": ("power_kw", "kW"), "clock": ("clock_ms", "ms")}
# the meters' clocks start at 00:00 UTC yesterday: inside the database's retention (the default
# policy keeps 90 days) and far from a day's end, so a test's reads share one shard
START_MS = (time.time_ns() // 86_400_000_000_000 - 1) * 86_400_000
STEP_MS = 1000


class MeterPaused(RuntimeError):
    pass


@dataclass
class CountingMeter:
    device_id: str
    offset_ms: int
    reads: int = 0
    paused: bool = False
    step_ms: int = STEP_MS  # meter-clock time per read
    server: SimulatedModbusDevice | None = field(default=None, repr=False)

    def sample(self) -> None:
        if self.paused:
            # the simulator answers DEVICE_FAILURE and logs nothing as served
            raise MeterPaused(f"{self.device_id} paused by the test")
        self.reads += 1

    def signal(self, name: str) -> float:
        n = self.reads
        if name == "clock_ms":
            return START_MS + self.offset_ms + n * self.step_ms
        if name == "energy_kwh":
            return 1000 + 7 * n  # kWh counter
        return 500.0 + 0.25 * (n % 1000)  # kW, exact in float32

    def pause(self) -> None:
        self.paused = True


async def start_meters(count: int, step_ms: int = STEP_MS) -> list[CountingMeter]:
    meters = []
    for i in range(count):
        meter = CountingMeter(f"meter{i + 1}", offset_ms=i * 7, step_ms=step_ms)
        meter.server = SimulatedModbusDevice(METER_MAP, LOOPBACK, free_port(), 1, meter.sample, meter.signal)
        await meter.server.start()
        meters.append(meter)
    return meters


async def stop_meters(meters: list[CountingMeter]) -> None:
    for meter in meters:
        if meter.server is not None:
            await meter.server.stop()


def plant_doc(
    site: str,
    meters: list[CountingMeter],
    mqtt: dict[str, Any],
    influxdb: dict[str, Any],
    scan_interval_s: float = 0.1,
) -> dict[str, Any]:
    """A plant file (as a dict) reading `meters` every `scan_interval_s`."""
    devices = []
    for meter in meters:
        assert meter.server is not None
        devices.append(
            {
                "id": meter.device_id,
                "protocol": "modbus",
                "host": LOOPBACK,
                "port": meter.server.port,
                "unit": 1,
                "scan_interval_s": scan_interval_s,
                "timeout_s": 1,
                "clock_point": "clock",
                "points": [
                    {"id": point, "address": reg.address, "type": reg.type, "unit": unit}
                    for point, (signal, unit) in POINTS.items()
                    for reg in METER_MAP.registers
                    if reg.signal == signal
                ],
            }
        )
    return {"site": {"id": site, "name": f"test plant {site}"}, "mqtt": mqtt, "influxdb": influxdb, "devices": devices}


def plant_config(doc: dict[str, Any], file: Path) -> PlantFile:
    text = yaml.safe_dump(doc)
    file.write_text(text)
    return parse_plant(text, file)


Key = tuple[str, str, int]  # device, point, time (ns)


def served(meters: list[CountingMeter]) -> dict[Key, float]:
    """Every reading the meters served: (device, point, meter-clock time in ns) -> value."""
    out: dict[Key, float] = {}
    for meter in meters:
        assert meter.server is not None
        for values in meter.server.served:
            t = int(values["clock_ms"]) * 1_000_000
            for point, (signal, _) in POINTS.items():
                out[(meter.device_id, point, t)] = values[signal]
    return out


async def stored(client: InfluxV1Client, site: str) -> tuple[dict[Key, float], int]:
    """Good readings InfluxDB holds for `site` as (device, point, time) -> value, and the number of
    other rows (bad/uncertain readings, e.g. while a meter was paused)."""
    series = await client.query(f"SELECT value, quality, device, point FROM reading WHERE site='{site}'")
    good: dict[Key, float] = {}
    other = 0
    for s in series:
        for row in s.rows():
            if row["quality"] == "good":
                good[(row["device"], row["point"], row["time"])] = row["value"]
            else:
                other += 1
    return good, other


def differences(expected: dict[Key, float], actual: dict[Key, float]) -> str:
    """'' when both hold exactly the same readings with the same values, else what differs."""
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    changed = sorted(k for k in set(expected) & set(actual) if expected[k] != actual[k])
    if not (missing or extra or changed):
        return ""
    return (
        f"{len(missing)} missing (first {missing[:3]}), {len(extra)} never served (first {extra[:3]}), "
        f"{len(changed)} with another value (first {[(k, expected[k], actual[k]) for k in changed[:3]]})"
    )

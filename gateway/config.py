"""Plant configuration model: one YAML file per plant, validated with pydantic.

The model only describes and checks; loading from disk and error reporting live in
`config_loader`. Secrets never appear here as values: a connection names an environment
variable or a file that holds them (`Credentials`).
"""

from __future__ import annotations

import os
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ID_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
Identifier = Annotated[str, Field(pattern=ID_PATTERN)]
# Keys that would hold a secret if written into the YAML; rejected with a pointer to the _env/_file form.
SECRET_KEYS = frozenset({"password", "token", "secret", "api_key", "key_password"})


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_inline_secrets(cls, data: object) -> object:
        if isinstance(data, dict):
            for key in data:
                if key in SECRET_KEYS:
                    raise ValueError(
                        f"'{key}' must not be written in the plant file; use "
                        f"'{key}_env: VARIABLE' or '{key}_file: PATH' instead"
                    )
        return data


class Credentials(Strict):
    """Username plus a password taken from the environment or a file, never from the YAML."""

    username: str | None = None
    password_env: str | None = None
    password_file: Path | None = None

    @model_validator(mode="after")
    def _one_password_source(self) -> Credentials:
        if self.password_env is not None and self.password_file is not None:
            raise ValueError("give at most one of 'password_env' or 'password_file'")
        return self

    def resolve_password(self) -> str | None:
        if self.password_env is not None:
            value = os.environ.get(self.password_env)
            if value is None:
                raise LookupError(f"environment variable {self.password_env} is not set")
            return value
        if self.password_file is not None:
            return self.password_file.read_text(encoding="utf-8").splitlines()[0].strip()
        return None


class Site(Strict):
    id: Identifier
    name: str
    timezone: str = "Asia/Shanghai"
    province: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class MqttConfig(Credentials):
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    topic_root: str = "ferrogate/v1"
    client_id_prefix: str = "ferrogate"
    keepalive_s: int = Field(30, ge=5, le=3600)


class InfluxConfig(Credentials):
    url: str = "http://127.0.0.1:8086"
    database: str = "ferrogate"
    retention_policy: str | None = None
    batch_size: int = Field(5000, ge=1, le=100_000)
    flush_interval_s: float = Field(1.0, gt=0, le=60)
    timeout_s: float = Field(10.0, gt=0, le=300)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")


class ModbusTable(StrEnum):
    holding = "holding"
    input = "input"


class ModbusType(StrEnum):
    int16 = "int16"
    uint16 = "uint16"
    int32 = "int32"
    uint32 = "uint32"
    int64 = "int64"
    uint64 = "uint64"
    float32 = "float32"
    float64 = "float64"

    @property
    def registers(self) -> int:
        return {"16": 1, "32": 2, "64": 4}[self.value[-2:]]


class WordOrder(StrEnum):
    big = "big"  # most significant word first (ABCD)
    little = "little"  # least significant word first (CDAB)


class PointBase(Strict):
    id: Identifier
    unit: str = Field(min_length=1, description="engineering unit after scaling, e.g. kWh, kW, degC")
    description: str = ""
    scale: float = 1.0
    offset: float = 0.0


class ModbusPoint(PointBase):
    address: int = Field(ge=0, le=65535, description="protocol address, 0-based")
    table: ModbusTable = ModbusTable.holding
    type: ModbusType = ModbusType.uint16
    word_order: WordOrder = WordOrder.big

    @model_validator(mode="after")
    def _fits(self) -> ModbusPoint:
        if self.address + self.type.registers > 65536:
            raise ValueError("register range runs past address 65535")
        return self


class OpcUaPoint(PointBase):
    node: str = Field(description="node id, e.g. 'ns=2;s=WHG1.P_kW' or 'nsu=URI;s=WHG1.P_kW'")

    @field_validator("node")
    @classmethod
    def _node_syntax(cls, value: str) -> str:
        if not re.match(r"^(ns=\d+;|nsu=[^;]+;)?[isgb]=.+$", value):
            raise ValueError("not an OPC UA node id (expected e.g. 'ns=2;s=Name' or 'nsu=URI;i=1001')")
        return value


class DeviceBase(Strict):
    id: Identifier
    description: str = ""
    scan_interval_s: float = Field(1.0, ge=0.05, le=3600)
    timeout_s: float = Field(2.0, gt=0, le=60)
    # A point holding the device's own clock (Unix time, ms) stamps the scan's source_time;
    # without it, readings that carry no source timestamp are stamped with the gateway clock.
    clock_point: Identifier | None = None


class ModbusDevice(DeviceBase):
    protocol: Literal["modbus"]
    host: str
    port: int = Field(502, ge=1, le=65535)
    unit: int = Field(1, ge=0, le=255)
    max_gap: int = Field(8, ge=0, le=120, description="unused registers tolerated inside one read")
    points: list[ModbusPoint] = Field(min_length=1)


class OpcUaDevice(DeviceBase, Credentials):
    protocol: Literal["opcua"]
    endpoint: str
    points: list[OpcUaPoint] = Field(min_length=1)

    @field_validator("endpoint")
    @classmethod
    def _opc_url(cls, value: str) -> str:
        if not value.startswith("opc.tcp://"):
            raise ValueError("must start with opc.tcp://")
        return value


Device = Annotated[ModbusDevice | OpcUaDevice, Field(discriminator="protocol")]


class AssetType(StrEnum):
    eaf = "eaf"
    ladle_furnace = "ladle_furnace"
    submerged_arc_furnace = "submerged_arc_furnace"
    transformer = "transformer"
    waste_heat_generator = "waste_heat_generator"
    electrolytic_cells = "electrolytic_cells"
    main_incomer = "main_incomer"
    auxiliary = "auxiliary"


class MeterRole(StrEnum):
    """What a point means to the accounting engine and the API."""

    electricity_import = "electricity_import"  # cumulative kWh counter
    electricity_export = "electricity_export"  # cumulative kWh exported (generation)
    active_power = "active_power"  # kW
    reactive_power = "reactive_power"  # kvar
    power_factor = "power_factor"
    generation_power = "generation_power"  # kW generated
    transformer_tap = "transformer_tap"
    oil_temperature = "oil_temperature"  # degC
    # production events: a counter that steps at each tap/heat, the weighed tonnes of the last one,
    # and the device's Unix time of the last one
    tap_counter = "tap_counter"
    tap_weight = "tap_weight"
    tap_time = "tap_time"
    heat_number = "heat_number"
    heat_state = "heat_state"
    product_counter = "product_counter"  # cumulative tonnes of a continuous process
    electrode_counter = "electrode_counter"  # cumulative electrode / paste consumption
    # other carriers and indicators (cumulative counters)
    fuel_counter = "fuel_counter"
    water_fresh_intake = "water_fresh_intake"
    water_recirculated = "water_recirculated"


class Asset(Strict):
    id: Identifier
    type: AssetType
    name: str
    product: str | None = None
    rated_power_kw: float | None = Field(None, gt=0)
    # role -> "device_id.point_id"
    meters: dict[MeterRole, str] = Field(default_factory=dict)

    @field_validator("meters")
    @classmethod
    def _refs(cls, value: dict[MeterRole, str]) -> dict[MeterRole, str]:
        for role, ref in value.items():
            if not re.match(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$", ref):
                raise ValueError(f"{role.value}: {ref!r} is not 'device_id.point_id'")
        return value


class SimulatedDevice(Strict):
    """Serve a configured device from a simulator model (register map / address space)."""

    device: Identifier
    model: str
    equipment: Identifier


class SimulatedEquipment(Strict):
    id: Identifier
    kind: Literal["eaf", "waste_heat_generator"]
    params: dict[str, float | str] = Field(default_factory=dict)


class Simulation(Strict):
    seed: int = 1
    equipment: list[SimulatedEquipment] = Field(default_factory=list)
    devices: list[SimulatedDevice] = Field(default_factory=list)


class PlantConfig(Strict):
    site: Site
    mqtt: MqttConfig | None = None
    influxdb: InfluxConfig | None = None
    devices: list[Device] = Field(min_length=1)
    assets: list[Asset] = Field(default_factory=list)
    simulation: Simulation | None = None

    def reference_errors(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Checks that span sections (ids unique, references resolve), each with its location."""
        errors: list[tuple[tuple[str | int, ...], str]] = []
        device_points: dict[str, set[str]] = {}
        for d_index, device in enumerate(self.devices):
            if device.id in device_points:
                errors.append((("devices", d_index, "id"), f"duplicate device id {device.id!r}"))
            seen: set[str] = set()
            for p_index, point in enumerate(device.points):
                if point.id in seen:
                    errors.append((("devices", d_index, "points", p_index, "id"), f"duplicate point id {point.id!r}"))
                seen.add(point.id)
            device_points[device.id] = seen
            if device.clock_point is not None and device.clock_point not in seen:
                errors.append((("devices", d_index, "clock_point"), f"device has no point {device.clock_point!r}"))
        asset_ids: set[str] = set()
        for a_index, asset in enumerate(self.assets):
            if asset.id in asset_ids:
                errors.append((("assets", a_index, "id"), f"duplicate asset id {asset.id!r}"))
            asset_ids.add(asset.id)
            for role, ref in asset.meters.items():
                dev, _, point = ref.partition(".")
                where = ("assets", a_index, "meters", role.value)
                if dev not in device_points:
                    errors.append((where, f"unknown device {dev!r}"))
                elif point not in device_points[dev]:
                    errors.append((where, f"device {dev!r} has no point {point!r}"))
        if self.simulation is not None:
            equipment = {e.id for e in self.simulation.equipment}
            for s_index, sim in enumerate(self.simulation.devices):
                if sim.device not in device_points:
                    errors.append((("simulation", "devices", s_index, "device"), f"unknown device {sim.device!r}"))
                if sim.equipment not in equipment:
                    errors.append(
                        (("simulation", "devices", s_index, "equipment"), f"unknown equipment {sim.equipment!r}")
                    )
        return errors

    def device(self, device_id: str) -> ModbusDevice | OpcUaDevice:
        for device in self.devices:
            if device.id == device_id:
                return device
        raise KeyError(device_id)

    def asset_of_point(self) -> dict[tuple[str, str], str]:
        """(device_id, point_id) -> asset id, for tagging readings."""
        owners: dict[tuple[str, str], str] = {}
        for asset in self.assets:
            for ref in asset.meters.values():
                dev, _, point = ref.partition(".")
                owners.setdefault((dev, point), asset.id)
        return owners

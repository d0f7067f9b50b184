"""Plant configuration model: one YAML file per plant, validated with pydantic.

The model only describes and checks; loading from disk and error reporting live in
`config_loader`. Secrets never appear here as values: a connection names an environment
variable or a file that holds them (`Credentials`).
"""

from __future__ import annotations

import os
import re
import ssl
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ferrogate.api.config import ApiConfig
from ferrogate.gateway.alarms import AlarmsConfig
from ferrogate.gateway.compliance.config import ComplianceConfig
from ferrogate.gateway.energy.config import AccountingConfig

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


class SpoolConfig(Strict):
    """A disk outbox (SQLite, WAL) for what cannot be delivered yet; without `path` it lives in memory
    only and is lost when the process dies."""

    path: Path | None = None
    max_mib: float = Field(512.0, gt=0, le=1_048_576, description="payload bytes held, MiB (2^20 bytes)")
    when_full: Literal["drop_oldest", "drop_newest"] = "drop_oldest"
    # normal: survives a killed process (WAL); full: also a power cut, at one fsync per batch
    sync: Literal["normal", "full"] = "normal"


class MqttTlsConfig(Strict):
    """MQTT over TLS (the broker's 8883 listener): the server is verified against `ca_file` and its
    name against `host`; `cert_file` + `key_file` add a client certificate where the broker asks."""

    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None

    @model_validator(mode="after")
    def _cert_with_key(self) -> MqttTlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        return self

    def context(self) -> ssl.SSLContext:
        """Loaded when connecting; a file that cannot be read stops the role with its name and why."""
        try:
            context = ssl.create_default_context(cafile=str(self.ca_file))
            if self.cert_file is not None:
                context.load_cert_chain(str(self.cert_file), str(self.key_file))
        except (OSError, ssl.SSLError) as exc:
            raise RuntimeError(f"mqtt.tls: cannot load {self.ca_file} / {self.cert_file}: {exc}") from exc
        return context


class MqttConfig(Credentials):
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    tls: MqttTlsConfig | None = None
    topic_root: str = "ferrogate/v1"
    client_id_prefix: str = "ferrogate"
    keepalive_s: int = Field(30, ge=5, le=3600)
    # persistent sessions: the broker keeps subscriptions and queued QoS 1 messages of a client that
    # is away for up to session_expiry_s (MQTT v5)
    clean_start: bool = False
    session_expiry_s: int = Field(3600, ge=0, le=4_294_967_295)
    max_inflight: int = Field(100, ge=1, le=65_535, description="publisher: QoS 1 messages awaiting PUBACK")
    # ingest: MQTT v5 Receive Maximum, the messages held unacknowledged until their points are durable
    receive_maximum: int = Field(1000, ge=1, le=65_535)
    # the collector forwards its spool only while an ingest worker is subscribed (a restarted broker
    # may have lost the shared subscriptions until the workers reconnect); false for a site without ingest
    wait_for_ingest: bool = True
    spool: SpoolConfig = SpoolConfig()


class InfluxConfig(Credentials):
    url: str = "http://127.0.0.1:8086"
    # v1: POST /write (database, retention_policy, username/password), InfluxDB 1.x and compatible;
    # v2: /api/v2/write through influxdb-client (org, bucket, token), InfluxDB 2.x, 3.x, 1.8+
    dialect: Literal["v1", "v2"] = "v1"
    database: str = "ferrogate"
    retention_policy: str | None = None
    org: str | None = None
    bucket: str | None = None
    token_env: str | None = None
    token_file: Path | None = None
    batch_size: int = Field(5000, ge=1, le=100_000)
    flush_interval_s: float = Field(1.0, gt=0, le=60)
    timeout_s: float = Field(10.0, gt=0, le=300)
    # a batch that cannot be written (5xx, timeout, unreachable) is retried this often with
    # exponential backoff, then spooled to disk and retried from there until the database is back
    max_retries: int = Field(3, ge=0, le=100)
    retry_initial_s: float = Field(0.5, gt=0, le=60)
    retry_max_s: float = Field(30.0, gt=0, le=3600)
    spool: SpoolConfig = SpoolConfig()
    # batches the database rejects (4xx that retrying cannot fix), one JSON object per line;
    # default: next to spool.path, or only logged when neither is set
    dead_letter_path: Path | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _dialect_fields(self) -> InfluxConfig:
        v2_only = [k for k in ("org", "bucket", "token_env", "token_file") if getattr(self, k) is not None]
        if self.dialect == "v1" and v2_only:
            raise ValueError(f"{', '.join(v2_only)}: only for dialect v2 (v1 uses database and username/password)")
        if self.dialect == "v2":
            missing = [k for k in ("org", "bucket") if getattr(self, k) is None]
            if self.token_env is None and self.token_file is None:
                missing.append("token_env or token_file")
            if missing:
                raise ValueError(f"dialect v2 needs {', '.join(missing)}")
            if self.token_env is not None and self.token_file is not None:
                raise ValueError("give at most one of 'token_env' or 'token_file'")
            if self.username is not None or self.password_env is not None or self.password_file is not None:
                raise ValueError("dialect v2 authenticates with a token (InfluxDB 1.8: token 'username:password')")
        return self

    def resolve_token(self) -> str | None:
        """The v2 API token from its environment variable or file (same rules as passwords)."""
        return Credentials(password_env=self.token_env, password_file=self.token_file).resolve_password()

    def resolved_dead_letter_path(self) -> Path | None:
        if self.dead_letter_path is not None or self.spool.path is None:
            return self.dead_letter_path
        return self.spool.path.with_name(self.spool.path.stem + ".dead-letter.jsonl")


class ModbusTable(StrEnum):
    holding = "holding"  # FC3, 16-bit registers
    input = "input"  # FC4, 16-bit registers
    coil = "coil"  # FC1, bits
    discrete_input = "discrete_input"  # FC2, bits

    @property
    def is_bits(self) -> bool:
        return self in (ModbusTable.coil, ModbusTable.discrete_input)


class ModbusType(StrEnum):
    bool = "bool"  # one coil or discrete input
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
        """Addresses the value occupies: registers for numbers, one bit address for bool."""
        return {"ol": 1, "16": 1, "32": 2, "64": 4}[self.value[-2:]]

    @property
    def is_integer(self) -> bool:
        return "int" in self.value


class WordOrder(StrEnum):
    big = "big"  # most significant word first (ABCD)
    little = "little"  # least significant word first (CDAB)


class ByteOrder(StrEnum):
    big = "big"  # most significant byte first inside each register (the Modbus standard)
    little = "little"  # bytes swapped inside each register (BADC, or DCBA with little word order)


class PointBase(Strict):
    id: Identifier
    unit: str = Field(min_length=1, description="engineering unit after scaling, e.g. kWh, kW, degC")
    description: str = ""
    scale: float = 1.0
    offset: float = 0.0
    # scan class: points of one device with the same interval are read and published together
    scan_interval_s: float | None = Field(None, ge=0.05, le=3600, description="default: the device's")
    # report by exception: publish only when the value moved more than this (in `unit`) or the
    # quality changed; every point is sent again each `refresh_s` of its device
    report_deadband: float | None = Field(None, ge=0)


class ModbusPoint(PointBase):
    address: int = Field(ge=0, le=65535, description="protocol address, 0-based")
    table: ModbusTable = ModbusTable.holding
    type: ModbusType = ModbusType.uint16
    word_order: WordOrder = WordOrder.big
    byte_order: ByteOrder = ByteOrder.big
    bit: int | None = Field(None, ge=0, le=63, description="bit field: this bit (0 = least significant) as 0/1")

    @model_validator(mode="before")
    @classmethod
    def _bits_are_bool(cls, data: object) -> object:
        # a coil or discrete input is a bool unless the file says otherwise (then _fits explains)
        if isinstance(data, dict) and "type" not in data and data.get("table") in ("coil", "discrete_input"):
            return {**data, "type": "bool"}
        return data

    @model_validator(mode="after")
    def _fits(self) -> ModbusPoint:
        if self.address + self.type.registers > 65536:
            raise ValueError("register range runs past address 65535")
        if self.table.is_bits != (self.type is ModbusType.bool):
            raise ValueError(
                "type 'bool' goes with tables 'coil' and 'discrete_input' (and only those); "
                "for one bit of a register use 'bit: N' with an integer type"
            )
        if self.bit is not None:
            if not self.type.is_integer:
                raise ValueError("'bit' needs an integer type (e.g. uint16)")
            if self.bit >= 16 * self.type.registers:
                raise ValueError(f"'bit' {self.bit} is outside a {self.type.value} ({16 * self.type.registers} bits)")
        if (self.bit is not None or self.type is ModbusType.bool) and (self.scale != 1.0 or self.offset != 0.0):
            raise ValueError("scale/offset do not apply to bool or bit points (their value is 0 or 1)")
        return self


class DeadbandType(StrEnum):
    absolute = "absolute"  # in the point's raw server units
    percent = "percent"  # of the node's EURange (servers without EURange reject it)


class OpcUaPoint(PointBase):
    node: str = Field(description="node id, e.g. 'ns=2;s=WHG1.P_kW' or 'nsu=URI;s=WHG1.P_kW'")
    # monitored item (subscription mode); the server may revise these
    sampling_interval_ms: float | None = Field(None, ge=0, le=3_600_000, description="default: the scan interval")
    queue_size: int = Field(1, ge=1, le=1000, description="values the server keeps between publishes")
    server_deadband: float | None = Field(None, ge=0, description="DataChangeFilter deadband, evaluated by the server")
    server_deadband_type: DeadbandType = DeadbandType.absolute

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
    refresh_s: float = Field(300.0, gt=0, le=86_400, description="full refresh of report_deadband points")
    reconnect_max_s: float = Field(30.0, ge=0.1, le=3600, description="cap of the reconnect backoff")


class ModbusDevice(DeviceBase):
    protocol: Literal["modbus"]
    host: str
    port: int = Field(502, ge=1, le=65535)
    unit: int = Field(1, ge=0, le=255)
    max_gap: int = Field(8, ge=0, le=120, description="unused addresses tolerated inside one read")
    max_registers_per_read: int = Field(125, ge=1, le=125, description="some devices answer fewer than 125")
    retries: int = Field(1, ge=0, le=10, description="extra tries of a request that timed out")
    min_request_interval_s: float = Field(0.0, ge=0, le=10, description="quiet time between requests on the link")
    # requests in flight to host:port at once (one TCP connection each); serial-to-TCP gateways
    # allow one. Devices on the same host:port share the link and its limit (the smallest wins).
    max_concurrent_requests: int = Field(1, ge=1, le=16)
    points: list[ModbusPoint] = Field(min_length=1)


class OpcUaMode(StrEnum):
    auto = "auto"  # subscribe where the server allows it, poll the rest
    subscribe = "subscribe"
    poll = "poll"  # one Read request per scan for all points of the scan class


class SecurityPolicy(StrEnum):
    none = "None"
    basic256sha256 = "Basic256Sha256"
    aes128sha256rsaoaep = "Aes128Sha256RsaOaep"
    aes256sha256rsapss = "Aes256Sha256RsaPss"


class SecurityMode(StrEnum):
    none = "None"
    sign = "Sign"
    sign_and_encrypt = "SignAndEncrypt"


class OpcUaDevice(DeviceBase, Credentials):
    protocol: Literal["opcua"]
    endpoint: str
    mode: OpcUaMode = OpcUaMode.auto
    publishing_interval_ms: float | None = Field(None, ge=10, le=3_600_000, description="default: fastest scan")
    security_policy: SecurityPolicy = SecurityPolicy.none
    security_mode: SecurityMode = SecurityMode.none
    certificate: Path | None = Field(None, description="client application certificate (DER or PEM)")
    private_key: Path | None = Field(None, description="its private key (PEM)")
    trusted_certs_dir: Path | None = Field(None, description="directory of trusted server (or CA) certificates")
    application_uri: str = Field("urn:ferrogate:gateway", description="must match the certificate's SAN URI")
    points: list[OpcUaPoint] = Field(min_length=1)

    @field_validator("endpoint")
    @classmethod
    def _opc_url(cls, value: str) -> str:
        if not value.startswith("opc.tcp://"):
            raise ValueError("must start with opc.tcp://")
        return value

    @model_validator(mode="after")
    def _security_complete(self) -> OpcUaDevice:
        if (self.security_policy is SecurityPolicy.none) != (self.security_mode is SecurityMode.none):
            raise ValueError("security_policy and security_mode are both 'None' or both set (e.g. Sign)")
        if self.security_mode is not SecurityMode.none:
            missing = [k for k in ("certificate", "private_key", "trusted_certs_dir") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"security_mode {self.security_mode.value} needs {', '.join(missing)}")
        return self


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


# The `simulation:` section belongs to the simulators (their models and parameters); it builds on Strict above.
from ferrogate.simulators.config import SimulatedDevice, SimulatedEquipment, Simulation  # noqa: E402, F401


class PlantConfig(Strict):
    site: Site
    mqtt: MqttConfig | None = None
    influxdb: InfluxConfig | None = None
    devices: list[Device] = Field(min_length=1)
    assets: list[Asset] = Field(default_factory=list)
    simulation: Simulation | None = None
    accounting: AccountingConfig | None = None
    compliance: ComplianceConfig | None = None
    api: ApiConfig = Field(default_factory=ApiConfig)
    alarms: AlarmsConfig = Field(default_factory=AlarmsConfig)

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
            errors += self.simulation.reference_errors(self.devices)
        for l_index, rule in enumerate(self.alarms.limits):
            dev, _, point = rule.point.partition(".")
            if point not in device_points.get(dev, ()):
                errors.append((("alarms", "limits", l_index, "point"), f"no point {rule.point!r} in devices"))
        if self.accounting is not None and not errors:
            from ferrogate.gateway.energy.model import resolve  # the accounting section's own cross-checks

            errors.extend(resolve(self)[1])
        if self.compliance is not None and not errors:
            from ferrogate.gateway.compliance.model import problems  # the compliance section's cross-checks

            errors.extend(problems(self))
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

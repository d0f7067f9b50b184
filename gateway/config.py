"""The plant model: site, broker, database, field devices and assets, validated with pydantic.

It builds on `model_base` (below every layer) and composes the drivers' device models into one
union discriminated on `protocol`; the sections the layers above own (`simulation:`,
`accounting:`, `alarms:`, `api:`) are added by `plant_file.PlantFile`, never imported here.
The model only describes and checks; loading from disk and error reporting live in
`config_loader`. Secrets never appear here as values: a connection names an environment
variable or a file that holds them (`Credentials`).
"""

from __future__ import annotations

import re
import ssl
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import Field, field_validator, model_validator

from ferrogate.drivers.hj212.config import Hj212Device, listener_errors
from ferrogate.drivers.modbus.config import ModbusDevice
from ferrogate.drivers.opcua.config import OpcUaDevice
from ferrogate.gateway.model_base import Credentials, Identifier, Site, SpoolConfig, Strict

Location = tuple[str | int, ...]


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
    # the collector keeps each batch in its spool until ingest says it is durable in the database
    # (the retained mark on {root}/{site}/ingest/ack/{gateway}), not just until the broker's PUBACK, so
    # a broker crash loses nothing; default: as wait_for_ingest (a site without ingest gets no marks)
    ack_from_ingest: bool | None = None
    # consumers refuse (count and log) a message larger than this before parsing it; a scan batch
    # takes about 120 bytes per reading in ferrogate/1, about 25 in ferrogate/2
    max_message_bytes: int = Field(16 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024)
    # the telemetry payload the collector publishes (gateway/payload.py); consumers read both.
    # ferrogate/2 (arrays, one time stamp per batch) costs a fraction of /1's CPU and bytes
    payload_schema: Literal["ferrogate/1", "ferrogate/2"] = "ferrogate/2"
    spool: SpoolConfig = SpoolConfig()

    @property
    def durable_ack(self) -> bool:
        """Whether collectors wait for ingest's durable mark before forgetting a batch."""
        return self.wait_for_ingest if self.ack_from_ingest is None else self.ack_from_ingest


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
    # write what waits once no message came for this long (a scan's burst is over; 0: off), so the
    # tail of a burst is not held for the interval: latency to InfluxDB at a few more writes a second
    flush_idle_s: float = Field(0.05, ge=0, le=60)
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


# Every driver package's device model; a new protocol adds its model here (and its driver in collect.make_driver).
DeviceConfig = ModbusDevice | OpcUaDevice | Hj212Device
Device = Annotated[DeviceConfig, Field(discriminator="protocol")]
# the `protocol` values, which pydantic names in the location of a device's errors
DEVICE_PROTOCOLS: tuple[str, ...] = tuple(
    get_args(model.model_fields["protocol"].annotation)[0] for model in get_args(DeviceConfig)
)


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


class PlantConfig(Strict):
    site: Site
    mqtt: MqttConfig | None = None
    influxdb: InfluxConfig | None = None
    devices: list[Device] = Field(min_length=1)
    assets: list[Asset] = Field(default_factory=list)

    def reference_errors(self) -> list[tuple[Location, str]]:
        """Checks that span devices and assets (ids unique, references resolve), each with its location."""
        errors: list[tuple[Location, str]] = []
        seen_devices: set[str] = set()
        for d_index, device in enumerate(self.devices):
            if device.id in seen_devices:
                errors.append((("devices", d_index, "id"), f"duplicate device id {device.id!r}"))
            seen_devices.add(device.id)
            seen: set[str] = set()
            for p_index, point in enumerate(device.points):
                if point.id in seen:
                    errors.append((("devices", d_index, "points", p_index, "id"), f"duplicate point id {point.id!r}"))
                seen.add(point.id)
            if device.clock_point is not None and device.clock_point not in seen:
                errors.append((("devices", d_index, "clock_point"), f"device has no point {device.clock_point!r}"))
        errors += listener_errors([(i, d) for i, d in enumerate(self.devices) if isinstance(d, Hj212Device)])
        device_points = self.point_ids()
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
        return errors

    def point_ids(self) -> dict[str, set[str]]:
        """device id -> its point ids (of the last device of a duplicated id, which is an error anyway)."""
        return {device.id: {point.id for point in device.points} for device in self.devices}

    def device(self, device_id: str) -> DeviceConfig:
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

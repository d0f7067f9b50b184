"""The plant file's `simulation:` section: which equipment models run (typed parameters per kind),
which configured device serves which model (register map / OPC UA address space), and the fault
script. Figures and their sources are in docs/simulators.md; defaults cite
../shared/reference/README.md section 6 ("Figures for realistic simulators") where they come from there.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from ferrogate.gateway.config import DeviceConfig
from ferrogate.gateway.model_base import Identifier, Strict
from ferrogate.gateway.timeutil import parse_seconds

Location = tuple[str | int, ...]
# The simulators' catalogs (register maps, address spaces, equipment models) are imported by the
# cross-checks that read them, only for a plant file with a `simulation:` section: a site's
# processes validate this model but never load the simulators (issue 15).


def parse_duration(value: object) -> object:
    """Seconds as a number, or a string such as '90', '90s', '15m', '6h', '2d'."""
    return parse_seconds(value) if isinstance(value, str) else value


Seconds = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]


def _ordered(pair: tuple[float, float]) -> tuple[float, float]:
    if pair[0] > pair[1]:
        raise ValueError(f"[low, high] must have low <= high, got {list(pair)}")
    return pair


Range = Annotated[tuple[Annotated[float, Field(ge=0)], Annotated[float, Field(ge=0)]], AfterValidator(_ordered)]
Fraction = Annotated[float, Field(gt=0, le=1)]


class SafProduct(StrEnum):
    SiMn = "SiMn"
    FeSi75 = "FeSi75"
    HC_FeCr = "HC_FeCr"
    industrial_silicon = "industrial_silicon"


# Smelting electricity per tonne (reference README section 6, confidence M; HC FeCr mid of 3,100-3,500;
# industrial silicon mid of 11,800-12,400) and electrode / paste use per tonne (typical plant figures,
# UNVERIFIED: configure per plant).
SAF_PRODUCT_DEFAULTS: dict[SafProduct, tuple[float, float]] = {
    SafProduct.SiMn: (3900.0, 25.0),
    SafProduct.FeSi75: (8000.0, 45.0),
    SafProduct.HC_FeCr: (3300.0, 20.0),
    SafProduct.industrial_silicon: (12100.0, 90.0),
}


class EquipmentBase(Strict):
    id: Identifier = Field(description="equipment id (use the asset's id)")
    energy_start_kwh: float = Field(0.0, ge=0, description="counter value at the start (e.g. near 2^32 to roll over)")


class EafEquipment(EquipmentBase):
    """Electric arc furnace heat cycle (reference section 6: 350-450 kWh/t, tap-to-tap under 60 min,
    melting at 80-100 % and refining at 30-50 % of the rating)."""

    kind: Literal["eaf"]
    rated_kw: float = Field(gt=0, description="active power at full melting load, kW")
    nominal_t: float = Field(gt=0, description="nominal tap weight, t")
    tap_weight_spread: float = Field(0.02, ge=0, le=0.1, description="relative standard deviation of tap weight")
    kwh_per_t: Range = Field((365.0, 435.0), description="[low, high] of each heat's kWh per tonne tapped (uniform)")
    power_factor: Fraction = Field(0.80, description="while the arcs are on")
    bore_down_load: Fraction = Field(0.70, description="bore-down power / rated_kw")
    melt_load: Fraction = Field(0.95, description="melting power / rated_kw (reference: 80-100 %)")
    refine_load: Fraction = Field(0.45, description="refining power / rated_kw (reference: 30-50 %)")
    bore_down_share: Fraction = Field(0.12, description="share of the heat's energy drawn in bore-down")
    refine_share: Fraction = Field(0.18, description="share drawn in refining; melting draws the rest")
    arc_noise: float = Field(0.04, ge=0, le=0.2, description="relative second-to-second power fluctuation")
    charge_min: Range = Field((3.0, 4.0), description="[low, high] minutes of charging (power off)")
    tap_min: Range = Field((3.0, 4.0), description="[low, high] minutes of tapping (power off)")
    turnaround_min: Range = Field((5.0, 8.0), description="[low, high] minutes from tap to the next charge")
    delay_probability: float = Field(0.1, ge=0, le=1, description="chance of an extra delay before charging")
    delay_min: Range = Field((2.0, 6.0), description="[low, high] minutes of that delay")
    first_heat: int = Field(1, ge=1, description="heat number of the first heat")

    @model_validator(mode="after")
    def _shares(self) -> EafEquipment:
        if self.bore_down_share + self.refine_share >= 1:
            raise ValueError("bore_down_share + refine_share must leave a share for melting (< 1)")
        return self


class SafEquipment(EquipmentBase):
    """Submerged-arc furnace: near-steady load close to its rating, a weighed tap every 2-3 h."""

    kind: Literal["submerged_arc_furnace"]
    rated_kva: float = Field(gt=0, description="furnace transformer rating, kVA (typically 25,000-33,000)")
    product: SafProduct = Field(description="SiMn, FeSi75, HC_FeCr or industrial_silicon")
    kwh_per_t: float | None = Field(None, gt=0, description="smelting electricity per tonne; default by product")
    electrode_kg_per_t: float | None = Field(None, ge=0, description="electrode / paste use; default by product")
    power_factor: Fraction = Field(0.90, description="with the furnace's compensation")
    load_factor: float = Field(0.90, gt=0, le=1.1, description="active power / (rated kVA x power factor)")
    load_noise: float = Field(0.015, ge=0, le=0.2, description="relative standard deviation of the load")
    kwh_per_t_spread: float = Field(0.02, ge=0, le=0.2, description="relative tap-to-tap spread of kWh/t")
    tap_interval_h: Range = Field((2.0, 3.0), description="[low, high] hours between taps (reference: 2-3 h)")
    tapping_min: float = Field(15.0, ge=0, description="tapping lasts this long before the weighed tap instant")
    first_tap: int = Field(1, ge=1, description="tap number of the first tap")

    @property
    def specific_energy(self) -> float:
        return self.kwh_per_t if self.kwh_per_t is not None else SAF_PRODUCT_DEFAULTS[self.product][0]

    @property
    def electrode_use(self) -> float:
        if self.electrode_kg_per_t is not None:
            return self.electrode_kg_per_t
        return SAF_PRODUCT_DEFAULTS[self.product][1]


class TransformerEquipment(EquipmentBase):
    """Furnace transformer; thermal defaults are IEC 60076-7 Table 4 typical values for OF cooling."""

    kind: Literal["transformer"]
    furnace: Identifier = Field(description="the eaf or submerged_arc_furnace it feeds")
    rated_kva: float = Field(gt=0, description="rating, kVA")
    no_load_loss_pct: float = Field(0.08, ge=0, le=5, description="iron losses, % of rated kVA")
    load_loss_pct: float = Field(0.55, ge=0, le=10, description="copper losses at rated load, % of rated kVA")
    ambient_c: float = Field(30.0, description="ambient (cooling water) temperature, degC")
    top_oil_rise_k: float = Field(56.0, gt=0, description="top-oil rise over ambient at rated load, K")
    oil_time_constant_min: float = Field(90.0, gt=0, description="top-oil time constant, minutes")
    oil_exponent: float = Field(1.0, gt=0, le=2, description="oil exponent x")


class WasteHeatGeneratorEquipment(EquipmentBase):
    """Waste-heat power tied to its furnace's off-gas (reference section 6: 10-25 % of electrical input)."""

    kind: Literal["waste_heat_generator"]
    furnace: Identifier = Field(description="the furnace whose off-gas it uses")
    efficiency: float = Field(gt=0, le=0.4, description="electrical output / furnace electrical input")
    rated_kw: float = Field(gt=0, description="generator rating, kW (output is capped here)")
    lag_s: Seconds = Field(300.0, description="first-order lag of boiler and turbine, s")
    min_load: float = Field(0.05, ge=0, lt=1, description="the turbine trips below this share of rated_kw")


class IncomerEquipment(EquipmentBase):
    """Plant main incomer: the sum of its feeders plus the rest of the plant, minus embedded generation."""

    kind: Literal["main_incomer"]
    feeders: list[Identifier] = Field(min_length=1, description="loads behind it: transformers, furnaces, cells")
    generators: list[Identifier] = Field(default_factory=list, description="embedded waste-heat generators")
    auxiliary_kw: float = Field(3000.0, ge=0, description="the rest of the plant (cranes, fans, pumps)")
    auxiliary_power_factor: Fraction = Field(0.90, description="of the rest of the plant")
    auxiliary_noise: float = Field(0.03, ge=0, le=0.5, description="relative standard deviation of that load")


class CellsEquipment(EquipmentBase):
    """Electrolytic manganese cell line; production by Faraday's law (reference section 6: DC above
    6,000 kWh/t at under 75 % current efficiency)."""

    kind: Literal["electrolytic_cells"]
    cells: int = Field(gt=0, description="cells in series")
    current_a: float = Field(gt=0, description="line current, A")
    cell_voltage_v: float = Field(4.3, gt=0, description="average cell voltage, V")
    current_efficiency: Fraction = Field(0.70, description="share of the charge that deposits manganese")
    rectifier_efficiency: Fraction = Field(0.97, description="DC power out / AC power in")
    rectifier_power_factor: Fraction = Field(0.95, description="12/24-pulse rectifier with harmonic filters")
    current_noise: float = Field(0.005, ge=0, le=0.1, description="relative standard deviation of the current")


# Flue-gas stacks: default levels are illustrative, near Chinese ultra-low-emission levels for steel
# (particulate 10, SO2 35, NOx 50 mg/m3; UNVERIFIED here, see gateway/pollution/reference.py).
class Level(Strict):
    """A quantity that follows furnace load: its value with the furnace off and at full load."""

    idle: float = Field(ge=0)
    full_load: float = Field(ge=0)

    def at(self, load: float) -> float:
        return self.idle + (self.full_load - self.idle) * load


class StackEquipment(Strict):
    """A furnace's stack after its bag filter: standard dry flue-gas flow and what the CEMS measures.
    Flow and CO2 follow furnace load (O2 falls as combustion gas replaces the air drawn in); SO2, NOx
    and particulate wander with noise around their load-dependent levels."""

    id: Identifier = Field(description="equipment id (use the asset's id)")
    kind: Literal["stack"]
    furnace: Identifier = Field(description="the eaf or submerged_arc_furnace whose off-gas it carries")
    flow_m3_s: Level = Field(description="standard dry flue-gas flow, m3/s")
    flow_lag_s: Seconds = Field(30.0, description="first-order lag of the fans, s")
    o2_pct: Level = Field(Level(idle=20.6, full_load=18.5), description="O2, % by volume")
    co2_mg_m3: Level = Field(Level(idle=800.0, full_load=25000.0), description="CO2, mg/m3 (800: ambient air)")
    so2_mg_m3: Level = Field(Level(idle=4.0, full_load=15.0), description="SO2, mg/m3, standard dry")
    nox_mg_m3: Level = Field(Level(idle=12.0, full_load=38.0), description="NOx as NO2, mg/m3, standard dry")
    particulate_mg_m3: Level = Field(Level(idle=1.5, full_load=4.5), description="particulate, mg/m3")
    temperature_c: Level = Field(Level(idle=60.0, full_load=115.0), description="flue-gas temperature, degC")
    noise: float = Field(0.08, ge=0, le=0.5, description="relative standard deviation of the concentrations")
    noise_correlation_s: float = Field(60.0, gt=0, description="how long a deviation lasts, s")


Equipment = Annotated[
    EafEquipment
    | SafEquipment
    | TransformerEquipment
    | WasteHeatGeneratorEquipment
    | IncomerEquipment
    | CellsEquipment
    | StackEquipment,
    Field(discriminator="kind"),
]
FURNACE_KINDS = ("eaf", "submerged_arc_furnace")


class SimulatedDevice(Strict):
    """Serve a configured device from a simulator model: a register map (Modbus) or an address space
    (OPC UA; several entries for one OPC UA device add one folder each)."""

    device: Identifier
    model: str
    equipment: Identifier
    folder: str | None = Field(None, pattern=r"^[A-Za-z][A-Za-z0-9_]*$", description="default: equipment id upper")

    @property
    def folder_name(self) -> str:
        return self.folder or self.equipment.upper()


class FaultBase(Strict):
    device: Identifier
    equipment: Identifier | None = Field(None, description="only this equipment's values (OPC UA folders)")
    at: Seconds = Field(0.0, description="start, after the simulation start")
    duration: Seconds | None = Field(None, description="default: until the simulator stops")
    clock: Literal["sim", "wall"] = Field("sim", description="'at' and 'duration' in simulated or wall seconds")

    def window(self) -> tuple[float, float]:
        return self.at, self.at + self.duration if self.duration is not None else float("inf")


class RefuseConnections(FaultBase):
    """Close every connection and refuse new ones."""

    fault: Literal["refuse_connections"]


class ExceptionFault(FaultBase):
    """Answer every Modbus read with this exception code (4 server device failure, 6 busy, ...)."""

    fault: Literal["exception"]
    code: Literal[1, 2, 3, 4, 5, 6, 7, 8, 10, 11] = 4  # the exception codes of the Modbus specification


class SignalFault(FaultBase):
    signals: list[str] | None = Field(None, description="default: every value of the device but its clock")


class FreezeFault(SignalFault):
    """The values stop changing (a stuck transmitter); timestamps go on."""

    fault: Literal["freeze"]


class NanFault(SignalFault):
    """Float values become NaN; integer registers serve their 'not available' pattern."""

    fault: Literal["nan"]


class OutOfRangeFault(SignalFault):
    fault: Literal["out_of_range"]
    value: float


class CounterResetFault(SignalFault):
    """Meter replacement: the device's counters restart from zero at `at` and stay reset."""

    fault: Literal["counter_reset"]

    @model_validator(mode="after")
    def _instant(self) -> CounterResetFault:
        if self.duration is not None:
            raise ValueError("a counter reset is an instant: it takes no 'duration'")
        return self


class LatencyFault(FaultBase):
    fault: Literal["latency"]
    delay_s: float = Field(gt=0, le=120, description="wall seconds added to every response")


class BadStatusFault(SignalFault):
    """OPC UA values carry this Bad (or Uncertain) status code."""

    fault: Literal["bad_status"]
    status: str = "BadSensorFailure"
    # asyncua's server, as OPC UA Part 4 7.7.1 asks, sends no value with a Bad status; some PLCs and
    # node-opcua servers send the value anyway (e.g. 0.0 with BadSensorFailure): `with_value: true`
    with_value: bool = False

    @field_validator("status")
    @classmethod
    def _known_bad(cls, value: str) -> str:
        from asyncua import ua

        code = getattr(ua.StatusCodes, value, None)
        if not isinstance(code, int) or code >> 30 not in (1, 2):
            raise ValueError(
                f"{value!r} is not an OPC UA Bad or Uncertain status code name "
                "(e.g. BadSensorFailure, UncertainLastUsableValue)"
            )
        return value


class ClockOffsetFault(FaultBase):
    """The device's clock is off by `offset_s` (ahead; negative: behind): its clock register and its
    OPC UA source timestamps (a PLC whose real-time clock was set wrong or lost its battery)."""

    fault: Literal["clock_offset"]
    offset_s: float = Field(ge=-1e9, le=1e9, description="seconds the device clock is ahead of true time")


Fault = Annotated[
    RefuseConnections
    | ExceptionFault
    | FreezeFault
    | NanFault
    | OutOfRangeFault
    | CounterResetFault
    | LatencyFault
    | BadStatusFault
    | ClockOffsetFault,
    Field(discriminator="fault"),
]
MODBUS_ONLY_FAULTS = ("exception",)
OPCUA_ONLY_FAULTS = ("bad_status",)


# CEMS data loggers reporting the stacks over HJ 212 (simulators/cems_logger.py)
DataFlagLetter = Literal["F", "M", "S", "D", "C", "T", "B"]


class LoggerWindow(Strict):
    """A period whose values the logger flags (HJ 212 data flags): maintenance M, calibration C..."""

    flag: DataFlagLetter
    at: Seconds = Field(description="start, simulated seconds after the simulation start")
    duration: Seconds
    factors: list[str] | None = Field(None, description="factor codes (default: every factor)")
    every: Seconds | None = Field(None, description="repeat with this period (e.g. a daily calibration: 1d)")

    @model_validator(mode="after")
    def _fits_period(self) -> LoggerWindow:
        if self.every is not None and self.duration >= self.every:
            raise ValueError("a repeating window must be shorter than its period")
        return self


class LoggerFault(Strict):
    """Trouble on the logger's link: frames with a wrong CRC (resent right after the timeout), a
    dropped connection (down for `duration`, then reconnected), silence with the connection open,
    messages split into `packets` packets. Everything not sent while it lasts is sent afterwards."""

    fault: Literal["bad_crc", "reconnect", "silence", "split"]
    at: Seconds
    duration: Seconds = 0.0
    packets: int = Field(2, ge=2, le=20, description="split: packets per message")


class CemsLoggerSim(Strict):
    """A data logger for one stack: connects to the gateway's HJ 212 listener (the device's
    `listen_host:listen_port`), sends real-time data every `realtime_interval_s`, minute and hourly data."""

    device: Identifier = Field(description="the protocol: hj212 device it is (MN, password, listen address)")
    stack: Identifier = Field(description="the stack equipment it measures")
    realtime_interval_s: Seconds = Field(30.0, ge=1, description="2011 every N simulated seconds (whole seconds)")
    minute_data: bool = Field(True, description="2051 every simulated minute")
    hour_data: bool = Field(True, description="2061 every simulated hour")
    ack: bool = Field(True, description="ask for a 9014 reply (Flag bit A)")
    version: Literal[2017, 2025] = 2017
    reply_timeout_s: float = Field(10.0, gt=0, le=60, description="wall seconds to wait for a 9014")
    retries: int = Field(3, ge=0, le=10)
    windows: list[LoggerWindow] = Field(default_factory=list)
    faults: list[LoggerFault] = Field(default_factory=list)


class Simulation(Strict):
    seed: int = 1
    equipment: list[Equipment] = Field(default_factory=list)
    devices: list[SimulatedDevice] = Field(default_factory=list)
    faults: list[Fault] = Field(default_factory=list)
    loggers: list[CemsLoggerSim] = Field(default_factory=list)

    def equipment_by_id(self) -> dict[str, EquipmentBase]:
        return {e.id: e for e in self.equipment}

    def served_signals(self, device_id: str) -> dict[str, set[str]]:
        """equipment id -> the model signals the device serves for it."""
        from ferrogate.simulators.address_spaces import ADDRESS_SPACES
        from ferrogate.simulators.register_maps import REGISTER_MAPS

        out: dict[str, set[str]] = {}
        for sd in self.devices:
            if sd.device == device_id:
                source = REGISTER_MAPS.get(sd.model) or ADDRESS_SPACES.get(sd.model)
                if source is not None:
                    out.setdefault(sd.equipment, set()).update(source.signals)
        return out

    def reference_errors(self, devices: Sequence[DeviceConfig]) -> list[tuple[Location, str]]:
        """Cross-checks, each located under ('simulation', ...)."""
        errors: list[tuple[Location, str]] = []
        kinds: dict[str, str] = {}
        for i, eq in enumerate(self.equipment):
            if eq.id in kinds:
                errors.append((("simulation", "equipment", i, "id"), f"duplicate equipment id {eq.id!r}"))
            kinds[eq.id] = eq.kind
        errors += self._equipment_links(kinds)
        errors += self._device_errors(kinds, {d.id: d for d in devices})
        errors += _point_errors(self, devices)
        errors += self._fault_errors(kinds, {d.id: d for d in devices})
        errors += self._logger_errors(kinds, {d.id: d for d in devices})
        return errors

    def _logger_errors(self, kinds: dict[str, str], devices: dict) -> list[tuple[Location, str]]:
        errors: list[tuple[Location, str]] = []
        seen: set[str] = set()
        for i, logger in enumerate(self.loggers):
            where = ("simulation", "loggers", i)
            device = devices.get(logger.device)
            if device is None or device.protocol != "hj212":
                errors.append(((*where, "device"), f"{logger.device!r} is not an hj212 device"))
            elif logger.device in seen:
                errors.append(((*where, "device"), f"{logger.device!r} already has a simulated logger"))
            seen.add(logger.device)
            if kinds.get(logger.stack) != "stack":
                errors.append(((*where, "stack"), f"{logger.stack!r} is not a stack equipment"))
        return errors

    def _equipment_links(self, kinds: dict[str, str]) -> list[tuple[Location, str]]:
        errors: list[tuple[Location, str]] = []
        fed_by_transformer: set[str] = set()
        for i, eq in enumerate(self.equipment):
            if isinstance(eq, TransformerEquipment | WasteHeatGeneratorEquipment | StackEquipment):
                if kinds.get(eq.furnace) not in FURNACE_KINDS:
                    errors.append((("simulation", "equipment", i, "furnace"), f"{eq.furnace!r} is not an eaf or SAF"))
                elif isinstance(eq, TransformerEquipment):
                    fed_by_transformer.add(eq.furnace)
            elif isinstance(eq, IncomerEquipment):
                for j, feeder in enumerate(eq.feeders):
                    kind = kinds.get(feeder)
                    if kind is None or kind in ("waste_heat_generator", "main_incomer"):
                        errors.append((("simulation", "equipment", i, "feeders", j), f"{feeder!r} is not a load"))
                for j, gen in enumerate(eq.generators):
                    if kinds.get(gen) != "waste_heat_generator":
                        errors.append((("simulation", "equipment", i, "generators", j), f"{gen!r} is not a generator"))
        for i, eq in enumerate(self.equipment):
            if isinstance(eq, IncomerEquipment):
                for j, feeder in enumerate(eq.feeders):
                    if feeder in fed_by_transformer:
                        errors.append(
                            (
                                ("simulation", "equipment", i, "feeders", j),
                                f"{feeder!r} is behind a transformer: list the transformer (it would count twice)",
                            )
                        )
        return errors

    def _device_errors(self, kinds: dict[str, str], devices: dict) -> list[tuple[Location, str]]:
        from ferrogate.simulators.address_spaces import ADDRESS_SPACES
        from ferrogate.simulators.equipment import CLOCK_SIGNAL, MODEL_CLASSES
        from ferrogate.simulators.register_maps import REGISTER_MAPS

        errors: list[tuple[Location, str]] = []
        modbus_seen: set[str] = set()
        folders: set[tuple[str, str]] = set()
        for i, sd in enumerate(self.devices):
            where = ("simulation", "devices", i)
            device = devices.get(sd.device)
            if device is None:
                errors.append(((*where, "device"), f"unknown device {sd.device!r}"))
                continue
            kind = kinds.get(sd.equipment)
            if kind is None:
                errors.append(((*where, "equipment"), f"unknown equipment {sd.equipment!r}"))
                continue
            catalog = REGISTER_MAPS if device.protocol == "modbus" else ADDRESS_SPACES
            source = catalog.get(sd.model)
            if source is None:
                what = "register map" if device.protocol == "modbus" else "address space"
                errors.append(((*where, "model"), f"unknown {what} {sd.model!r}; known: {', '.join(sorted(catalog))}"))
                continue
            missing = set(source.signals) - MODEL_CLASSES[kind].SIGNALS - {CLOCK_SIGNAL}
            if missing:
                errors.append(((*where, "model"), f"{sd.model!r} needs {sorted(missing)}, which a {kind} lacks"))
            if device.protocol == "modbus":
                if sd.device in modbus_seen:
                    errors.append(((*where, "device"), "a Modbus device is served by one register map"))
                modbus_seen.add(sd.device)
            else:
                if (sd.device, sd.folder_name) in folders:
                    errors.append(((*where, "folder"), f"folder {sd.folder_name!r} is already on {sd.device!r}"))
                folders.add((sd.device, sd.folder_name))
        return errors

    def _opcua_nodes(self, device_id: str) -> set[str]:
        from ferrogate.simulators.address_spaces import ADDRESS_SPACES

        nodes = set()
        for sd in self.devices:
            space = ADDRESS_SPACES.get(sd.model)
            if sd.device == device_id and space is not None:
                nodes |= {f"{sd.folder_name}.{v.name}" for v in space.variables}
        return nodes

    def _fault_errors(self, kinds: dict[str, str], devices: dict) -> list[tuple[Location, str]]:
        from ferrogate.simulators.equipment import MODEL_CLASSES

        errors: list[tuple[Location, str]] = []
        simulated = {sd.device for sd in self.devices}
        for i, fault in enumerate(self.faults):
            where = ("simulation", "faults", i)
            if fault.device not in simulated:
                errors.append(((*where, "device"), f"{fault.device!r} is not a simulated device"))
                continue
            protocol = devices[fault.device].protocol
            if fault.fault in MODBUS_ONLY_FAULTS and protocol != "modbus":
                errors.append(((*where, "fault"), f"{fault.fault} applies to Modbus devices only"))
            if fault.fault in OPCUA_ONLY_FAULTS and protocol != "opcua":
                errors.append(((*where, "fault"), f"{fault.fault} applies to OPC UA devices only"))
            served = self.served_signals(fault.device)
            if fault.equipment is not None and fault.equipment not in served:
                errors.append(((*where, "equipment"), f"{fault.device!r} serves no equipment {fault.equipment!r}"))
                continue
            if isinstance(fault, SignalFault) and fault.signals is not None:
                scope = [fault.equipment] if fault.equipment else list(served)
                known = set().union(*(served[e] for e in scope))
                for j, signal in enumerate(fault.signals):
                    if signal not in known:
                        errors.append(((*where, "signals", j), f"{fault.device!r} serves no signal {signal!r}"))
                    elif isinstance(fault, CounterResetFault) and not any(
                        signal in MODEL_CLASSES[kinds[e]].COUNTERS for e in scope
                    ):
                        errors.append(((*where, "signals", j), f"{signal!r} is not a counter"))
        return errors


def _node_key(node: str) -> str:
    """'nsu=urn:ferrogate:simulator;s=WHG1.P_kW' -> 'WHG1.P_kW' (other namespaces never match)."""
    from ferrogate.simulators.address_spaces import NAMESPACE_URI

    ns, _, ident = node.rpartition(";")
    if ns.startswith("nsu=") and ns[4:] != NAMESPACE_URI:
        return ""
    return ident[2:] if ident.startswith("s=") else ""


def _point_errors(sim: Simulation, devices: Sequence[DeviceConfig]) -> list[tuple[Location, str]]:
    """Each point of a simulated device must read what the simulator serves exactly as documented
    (register table, address, type, word and byte order, scale; OPC UA node), located at the point."""
    from ferrogate.simulators.register_maps import REGISTER_MAPS

    errors: list[tuple[Location, str]] = []
    for d_index, device in enumerate(devices):
        entries = [sd for sd in sim.devices if sd.device == device.id]
        if not entries:
            continue
        if device.protocol == "modbus":
            register_map = REGISTER_MAPS.get(entries[0].model)
            if register_map is None:
                continue
            for p_index, point in enumerate(device.points):
                problem = _register_mismatch(point, register_map)
                if problem:
                    errors.append((("devices", d_index, "points", p_index), problem))
        else:
            nodes = sim._opcua_nodes(device.id)
            for p_index, point in enumerate(device.points):
                if _node_key(point.node) not in nodes:
                    errors.append(
                        (("devices", d_index, "points", p_index, "node"), "the simulator serves no such node")
                    )
    return errors


def _register_mismatch(point, register_map) -> str | None:
    table = getattr(point.table, "value", point.table)
    reg = next((r for r in register_map.registers if (r.table, r.address) == (table, point.address)), None)
    if reg is None:
        return f"simulator map {register_map.name!r} has nothing at {table} {point.address}"
    wanted = {"type": reg.type, "word_order": reg.word_order, "byte_order": reg.byte_order}
    got = {k: getattr(getattr(point, k, None), "value", getattr(point, k, reg.byte_order)) for k in wanted}
    if reg.count == 1:
        wanted.pop("word_order"), got.pop("word_order")
    if got != wanted or (getattr(point, "bit", None) is None and point.scale != reg.scale):
        return (
            f"simulator map {register_map.name!r} serves {table} {point.address} as {reg.type}, word_order "
            f"{reg.word_order}, byte_order {reg.byte_order}, scale {reg.scale:g} ({reg.signal}, {reg.unit})"
        )
    return None

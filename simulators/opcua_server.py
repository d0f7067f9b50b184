"""A simulated OPC UA device: an asyncua server with a folder per equipment and typed variables
(Double, Float, UInt32, Int64, Boolean) carrying engineering units, simulated source timestamps and
status codes. Clients may read or subscribe (the server notifies on each publish). Faults in force
(Bad status codes, frozen/NaN/out-of-range values, latency, refused connections) come from a
DeviceFaults object."""

from __future__ import annotations

import asyncio
import logging
import math
import struct
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from asyncua import Server, ua
from asyncua.common.callback import CallbackType
from asyncua.crypto.permission_rules import SimpleRoleRuleset

from ferrogate.gateway.timeutil import ns_to_datetime
from ferrogate.simulators.address_spaces import (  # noqa: F401  (re-exported for older imports)
    ADDRESS_SPACES,
    NAMESPACE_URI,
    WASTE_HEAT_GENERATOR,
    AddressSpace,
    Variable,
)
from ferrogate.simulators.faults import DeviceFaults
from ferrogate.simulators.registers import FLOAT32_MAX

# UNECE Recommendation 20 common codes of the units served (OPC UA Part 8 EUInformation)
UNECE_CODES = {
    "kW": "KWT",
    "kWh": "KWH",
    "kvar": "KVR",
    "degC": "CEL",
    "t": "TNE",
    "kg": "KGM",
    "%": "P1",
    "A": "AMP",
    "V": "VLT",
    "ms": "C26",
    "s": "SEC",
    "1": "C62",
}
UNECE_NAMESPACE = "http://www.opcfoundation.org/UA/units/un/cefact"
VARIANTS = {
    "Double": ua.VariantType.Double,
    "Float": ua.VariantType.Float,
    "UInt32": ua.VariantType.UInt32,
    "Int64": ua.VariantType.Int64,
    "Boolean": ua.VariantType.Boolean,
}
_INT_RANGE = {"UInt32": (0, 2**32 - 1), "Int64": (-(2**63), 2**63 - 1)}
GOOD = ua.StatusCode(ua.StatusCodes.Good)
STOP_TIMEOUT_S = 5.0
log = logging.getLogger(__name__)


def unece_unit_id(code: str) -> int:
    """OPC UA Part 8: UnitId is the common code's characters packed into an Int32, e.g. KWT -> 0x4B5754."""
    unit_id = 0
    for char in code:
        unit_id = (unit_id << 8) | ord(char)
    return unit_id


def coerce(value: float, data_type: str) -> float | int | bool:
    """The value as the variable's data type; integers that cannot hold it serve their limit."""
    if data_type == "Double":
        return float(value)
    if data_type == "Float":  # what a client receives: the value rounded to 32 bits (or infinite)
        if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
            return value if not math.isfinite(value) else math.copysign(math.inf, value)
        return struct.unpack("<f", struct.pack("<f", value))[0]
    if data_type == "Boolean":
        return bool(value) and math.isfinite(value)
    low, high = _INT_RANGE[data_type]
    if not math.isfinite(value):
        return high
    return max(low, min(high, int(value)))


class ServiceLog(SimpleRoleRuleset):
    """asyncua's permission check, which sees the type of every request made in a session, used to
    count them by service name (e.g. 'ReadRequest'); it grants what asyncua's default grants."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: Counter[str] = Counter()

    def check_validity(self, user, action_type_id, body) -> bool:  # asyncua's signature
        name = ua.ObjectIdNames.get(action_type_id.Identifier, str(action_type_id))
        self.requests[name.removesuffix("_Encoding_DefaultBinary")] += 1
        return super().check_validity(user, action_type_id, body)


@dataclass(frozen=True)
class Folder:
    space: AddressSpace
    name: str  # browse name and node-id prefix, e.g. "SAF1"
    signals: Callable[[str], float]
    equipment: str = ""


class SimulatedOpcUaDevice:
    """Serves equipment folders at `endpoint`; `publish(sim_time_ns)` writes the current values."""

    def __init__(
        self,
        space: AddressSpace,
        endpoint: str,
        folder: str,
        signals: Callable[[str], float],
        served_log: int = 100_000,
        faults: DeviceFaults | None = None,
        equipment: str = "",
    ) -> None:
        self.endpoint = endpoint
        self.folders = [Folder(space, folder, signals, equipment)]
        self.faults = faults if faults is not None else DeviceFaults()
        # every service request received in a session, by name (the gateway must never Write or Call)
        self.service_log = ServiceLog()
        self.server = self._new_server()
        self.refusing = False
        self._nodes: list[tuple[Folder, Variable, ua.NodeId]] = []
        # the last `served_log` values written: (signal, value, source time ns), for tests' ground truth
        self.served: deque[tuple[str, float, int]] = deque(maxlen=served_log)
        for noisy in ("asyncua.server", "asyncua.common"):
            logging.getLogger(noisy).setLevel(logging.WARNING)

    def _new_server(self) -> Server:
        server = Server()
        # loopback simulators: no security and anonymous users, unless a test configures `server` before start()
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity], permission_ruleset=self.service_log)
        server.set_identity_tokens([ua.AnonymousIdentityToken])
        return server

    def move(self, port: int) -> None:
        """Listen on `port` instead (after a start that found the port taken): a new server, built
        again by the next `start`; a configuration a test gave `server` before the start is not kept."""
        head, _, rest = self.endpoint.partition("://")
        address, slash, path = rest.partition("/")
        self.endpoint = f"{head}://{address.rsplit(':', 1)[0]}:{port}{slash}{path}"
        self.server = self._new_server()
        self._nodes.clear()

    @property
    def space(self) -> AddressSpace:
        return self.folders[0].space

    @property
    def folder(self) -> str:
        return self.folders[0].name

    def add_folder(
        self, space: AddressSpace, folder: str, signals: Callable[[str], float], equipment: str = ""
    ) -> None:
        """Serve another equipment on the same server (before `start`)."""
        self.folders.append(Folder(space, folder, signals, equipment))

    def node_ids(self) -> list[str]:
        return [f"{f.name}.{v.name}" for f in self.folders for v in f.space.variables]

    async def start(self) -> None:
        await self.server.init()
        self.server.set_endpoint(self.endpoint)
        self.server.set_server_name(f"ferrogate simulator {', '.join(f.name for f in self.folders)}")
        self.server.subscribe_server_callback(CallbackType.PreRead, self._before_read)
        idx = await self.server.register_namespace(NAMESPACE_URI)
        for folder in self.folders:
            node = await self.server.nodes.objects.add_folder(ua.NodeId(folder.name, idx), folder.name)
            for var in folder.space.variables:
                node_id = ua.NodeId(f"{folder.name}.{var.name}", idx)
                initial = ua.Variant(coerce(0.0, var.data_type), VARIANTS[var.data_type])
                variable = await node.add_variable(node_id, var.name, initial)
                if var.description:
                    await variable.write_attribute(
                        ua.AttributeIds.Description, ua.DataValue(ua.Variant(ua.LocalizedText(var.description)))
                    )
                await self._add_unit(variable, var.unit, idx)
                self._nodes.append((folder, var, node_id))
        try:
            await self.server.start()
        except OSError as exc:
            raise RuntimeError(f"OPC UA simulator cannot listen on {self.endpoint}: {exc}") from exc

    async def _before_read(self, event: object, dispatcher: object) -> None:
        if self.faults.latency_s:
            await asyncio.sleep(self.faults.latency_s)

    async def _add_unit(self, node, unit: str, idx: int) -> None:
        code = UNECE_CODES.get(unit)
        info = ua.EUInformation()
        info.NamespaceUri = UNECE_NAMESPACE
        info.UnitId = unece_unit_id(code) if code else -1
        info.DisplayName = ua.LocalizedText(unit)
        info.Description = ua.LocalizedText(unit)
        await node.add_property(idx, "EngineeringUnits", ua.Variant(info, ua.VariantType.ExtensionObject))

    async def publish(self, sim_time_ns: int) -> None:
        faults = self.faults
        sim_time_ns -= sim_time_ns % 1000  # OPC UA clients see microseconds (Python datetime)
        stamp = ns_to_datetime(sim_time_ns + int(faults.clock_offset_ms * 1_000_000))
        server_time = datetime.now(UTC)
        for folder, var, node_id in self._nodes:
            key = (folder.equipment, var.signal)
            value = coerce(faults.value(key, folder.signals(var.signal)), var.data_type)
            fault = faults.status(key)
            status = GOOD.value if fault is None else fault[0]
            dv = ua.DataValue(
                ua.Variant(value, VARIANTS[var.data_type]),
                StatusCode=ua.StatusCode(status),
                SourceTimestamp=stamp,
                ServerTimestamp=server_time,
            )
            if fault is not None and fault[1]:
                await self._write_keeping_the_value(node_id, dv)
            else:
                await self.server.write_attribute_value(node_id, dv)
            self.served.append((var.signal, value, sim_time_ns))

    async def _write_keeping_the_value(self, node_id: ua.NodeId, dv: ua.DataValue) -> None:
        """Store the DataValue as it is, value and status, for Read and for the subscriptions:
        asyncua's write_attribute_value would null the value of a Bad one."""
        attribute = self.server.iserver.aspace[node_id].attributes[ua.AttributeIds.Value]
        attribute.value = dv
        attribute.value_callback = None
        for handle, notify in list(attribute.datachange_callbacks.items()):
            await notify(handle, dv)

    async def refuse(self) -> None:
        """Close every connection and stop listening."""
        if not self.refusing and self.server.bserver is not None:
            self.refusing = True
            await self._bounded(self.server.bserver.stop(), "refusing connections")

    async def accept(self) -> None:
        if self.refusing and self.server.bserver is not None:
            await self.server.bserver.start()
            self.refusing = False

    async def stop(self) -> None:
        if not await self._bounded(self.server.stop(), "stopping"):
            await self.server.iserver.stop()

    async def _bounded(self, closing: Awaitable[None], what: str) -> bool:
        """asyncua closes its listening socket at once but then waits, through asyncio's
        Server.wait_closed(), for every connection to detach; a connection caught mid-handshake can
        keep that wait open for ever. Give it STOP_TIMEOUT_S, then go on (nothing listens any more)."""
        try:
            await asyncio.wait_for(closing, STOP_TIMEOUT_S)
            return True
        except TimeoutError:
            log.warning("OPC UA simulator %s: connections open %.0f s after %s", self.endpoint, STOP_TIMEOUT_S, what)
            return False

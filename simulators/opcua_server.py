"""A simulated OPC UA device: an asyncua server with a folder per equipment and typed variables
carrying engineering units and simulated source timestamps."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from asyncua import Server, ua

from ferrogate.gateway.timeutil import ns_to_datetime

NAMESPACE_URI = "urn:ferrogate:simulator"
# UNECE codes for the EngineeringUnits property (OPC UA Part 8)
UNECE = {"kW": ("KWT", 4937544), "kWh": ("KWH", 4937800), "degC": ("CEL", 4408652), "t": ("TNE", 5525061)}


@dataclass(frozen=True)
class Variable:
    name: str  # browse name; node id is "s=<EQUIPMENT>.<name>"
    signal: str
    unit: str
    variant: ua.VariantType = ua.VariantType.Double


@dataclass(frozen=True)
class AddressSpace:
    name: str
    variables: tuple[Variable, ...]


WASTE_HEAT_GENERATOR = AddressSpace(
    "waste_heat_generator",
    (
        Variable("P_kW", "power_kw", "kW"),
        Variable("E_export_kWh", "exported_kwh", "kWh"),
    ),
)

ADDRESS_SPACES = {s.name: s for s in (WASTE_HEAT_GENERATOR,)}


class SimulatedOpcUaDevice:
    """Serves one equipment's variables at `endpoint`; `publish(sim_time_ns)` writes current values."""

    def __init__(
        self,
        space: AddressSpace,
        endpoint: str,
        folder: str,
        signals: Callable[[str], float],
        served_log: int = 100_000,
    ) -> None:
        self.space = space
        self.endpoint = endpoint
        self.folder = folder
        self._signals = signals
        self.server = Server()
        self._nodes: list[tuple[Variable, ua.NodeId]] = []
        # every value written: (signal, value, source time ns)
        self.served: deque[tuple[str, float, int]] = deque(maxlen=served_log)
        for noisy in ("asyncua.server", "asyncua.common"):
            logging.getLogger(noisy).setLevel(logging.WARNING)

    async def start(self) -> None:
        await self.server.init()
        self.server.set_endpoint(self.endpoint)
        self.server.set_server_name(f"ferrogate simulator {self.folder}")
        idx = await self.server.register_namespace(NAMESPACE_URI)
        folder = await self.server.nodes.objects.add_folder(ua.NodeId(self.folder, idx), self.folder)
        for var in self.space.variables:
            node_id = ua.NodeId(f"{self.folder}.{var.name}", idx)
            node = await folder.add_variable(node_id, var.name, ua.Variant(0.0, var.variant))
            await self._add_unit(node, var.unit, idx)
            self._nodes.append((var, node_id))
        try:
            await self.server.start()
        except OSError as exc:
            raise RuntimeError(f"OPC UA simulator cannot listen on {self.endpoint}: {exc}") from exc

    async def _add_unit(self, node, unit: str, idx: int) -> None:
        code = UNECE.get(unit)
        info = ua.EUInformation()
        info.NamespaceUri = "http://www.opcfoundation.org/UA/units/un/cefact"
        info.UnitId = code[1] if code else -1
        info.DisplayName = ua.LocalizedText(unit)
        info.Description = ua.LocalizedText(unit)
        await node.add_property(idx, "EngineeringUnits", ua.Variant(info, ua.VariantType.ExtensionObject))

    async def publish(self, sim_time_ns: int) -> None:
        sim_time_ns -= sim_time_ns % 1000  # OPC UA clients see microseconds (Python datetime)
        stamp = ns_to_datetime(sim_time_ns)
        for var, node_id in self._nodes:
            value = float(self._signals(var.signal))
            dv = ua.DataValue(
                ua.Variant(value, var.variant),
                StatusCode=ua.StatusCode(ua.StatusCodes.Good),
                SourceTimestamp=stamp,
                ServerTimestamp=datetime.now(UTC),
            )
            await self.server.write_attribute_value(node_id, dv)
            self.served.append((var.signal, value, sim_time_ns))

    async def stop(self) -> None:
        await self.server.stop()

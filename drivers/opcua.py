"""OPC UA driver (asyncua client): batched reads that keep status codes and source timestamps. Read-only."""

from __future__ import annotations

import logging
import math

from asyncua import Client, ua

from ferrogate.drivers.base import bad_readings, now_ns
from ferrogate.gateway.config import OpcUaDevice
from ferrogate.gateway.reading import COMM_ERROR, NOT_FINITE, Quality, Reading
from ferrogate.gateway.timeutil import datetime_to_ns

log = logging.getLogger(__name__)


def quality_of(status: ua.StatusCode) -> tuple[Quality, str | None]:
    """OPC UA severity bits: 00 Good, 01 Uncertain, 10/11 Bad; the status name is the reason."""
    severity = status.value >> 30
    if severity == 0:
        return Quality.GOOD, None
    name = status.name
    return (Quality.UNCERTAIN if severity == 1 else Quality.BAD), name


class OpcUaDriver:
    def __init__(self, device: OpcUaDevice) -> None:
        self.device_id = device.id
        self.device = device
        self._client: Client | None = None
        self._nodes: list = []
        self._units = [(p.id, p.unit) for p in device.points]
        self._scale = [(p.scale, p.offset) for p in device.points]

    async def connect(self) -> None:
        client = Client(self.device.endpoint, timeout=self.device.timeout_s)
        if self.device.username is not None:
            client.set_user(self.device.username)
            password = self.device.resolve_password()
            if password is not None:
                client.set_password(password)
        await client.connect()
        try:
            self._nodes = [client.get_node(await self._resolve(client, p.node)) for p in self.device.points]
        except Exception:
            await client.disconnect()
            raise
        self._client = client

    @staticmethod
    async def _resolve(client: Client, node: str) -> ua.NodeId:
        """Turn 'nsu=URI;...' into the server's current namespace index (indexes can shift)."""
        node_id = ua.NodeId.from_string(node)
        uri = getattr(node_id, "NamespaceUri", None)
        if uri:
            index = await client.get_namespace_index(uri)
            return ua.NodeId(node_id.Identifier, index, node_id.NodeIdType)
        return node_id

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            try:
                await client.disconnect()
            except (OSError, ConnectionError, ua.UaError, TimeoutError) as exc:
                log.debug("disconnect from %s: %r", self.device_id, exc)

    async def read(self) -> list[Reading]:
        if self._client is None:
            return bad_readings(self._units, f"{COMM_ERROR}: not connected", now_ns())
        try:
            values = await self._client.read_attributes(self._nodes, ua.AttributeIds.Value)
        except (OSError, ConnectionError, TimeoutError, ua.UaError) as exc:
            await self.close()
            return bad_readings(self._units, f"{COMM_ERROR}: {type(exc).__name__}: {exc}", now_ns())
        t_gateway = now_ns()
        readings: list[Reading] = []
        for (point_id, unit), (scale, add), dv in zip(self._units, self._scale, values, strict=True):
            quality, reason = quality_of(dv.StatusCode)
            stamp = dv.SourceTimestamp or dv.ServerTimestamp
            t = datetime_to_ns(stamp) if stamp is not None else t_gateway
            raw = dv.Value.Value if dv.Value is not None else None
            value: float | None = None
            if isinstance(raw, (int, float)):  # bool is an int: True -> 1.0
                value = float(raw) * scale + add
                if not math.isfinite(value):
                    value, quality, reason = None, Quality.BAD, f"{NOT_FINITE}: {raw}"
            elif quality is not Quality.BAD:
                quality, reason = Quality.BAD, f"unsupported value type {type(raw).__name__}"
            if value is None and quality is not Quality.BAD:
                quality = Quality.BAD
            readings.append(Reading(point_id, value, unit, t, quality, reason))
        return readings

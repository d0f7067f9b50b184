"""OPC UA driver (asyncua client). Read-only.

Subscriptions (monitored items with sampling interval, queue size and optional deadband) where
the server accepts them, batched Read calls for the rest or when `mode: poll`. Every value keeps
its status code (-> quality and reason) and source timestamp.

A scan of a subscribed point returns the values notified since the previous scan (all of them,
up to what the queue size allows), or the last known value again when nothing changed, so
polling and subscriptions give the collector the same picture; report-by-exception is the
collector's `report_deadband`.

Reconnects are the collector's job (backoff with jitter), not asyncua's auto_reconnect: when
asyncua's watchdog sees the connection die, `read` returns BAD readings, closes the client and
its tasks, and the next connect builds a new session and new subscriptions.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import asyncua
from asyncua import Client, ua
from asyncua.common.subscription import Subscription
from asyncua.crypto import security_policies
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions

from ferrogate.drivers.base import bad_readings, now_ns
from ferrogate.drivers.opcua import asyncua_hooks
from ferrogate.drivers.opcua.config import DeadbandType, OpcUaDevice, OpcUaMode, SecurityMode
from ferrogate.drivers.opcua.datavalues import Compact
from ferrogate.drivers.opcua.notifications import Change, changes
from ferrogate.drivers.opcua.reads import NodeRead
from ferrogate.drivers.opcua.trust import certificate_files, empty_trust_list
from ferrogate.gateway.metrics import DeviceMetrics
from ferrogate.gateway.reading import COMM_ERROR, CONFIG_ERROR, NOT_FINITE, TIMEOUT, Quality, Reading

log = logging.getLogger(__name__)

# server certificate checks: validity period, application URI in the SAN, in the trust list, not revoked
SERVER_CERT_CHECKS = (
    CertificateValidatorOptions.TIME_RANGE
    | CertificateValidatorOptions.URI
    | CertificateValidatorOptions.TRUSTED
    | CertificateValidatorOptions.REVOKED
    | CertificateValidatorOptions.PEER_SERVER
)
_HANDLE_BASE = 1000  # client handles of our monitored items: _HANDLE_BASE + point index


def quality_of(status: ua.StatusCode) -> tuple[Quality, str | None]:
    """OPC UA severity bits: 00 Good, 01 Uncertain, 10/11 Bad; the status name is the reason."""
    severity = status.value >> 30
    if severity == 0:
        return Quality.GOOD, None
    name = status.name
    return (Quality.UNCERTAIN if severity == 1 else Quality.BAD), name


@dataclass(frozen=True, slots=True)
class _Point:
    id: str
    unit: str
    scale: float
    add: float
    keep: int  # notifications kept between two scans


class OpcUaDriver:
    def __init__(self, device: OpcUaDevice, metrics: DeviceMetrics | None = None) -> None:
        self.device_id = device.id
        self.device = device
        self.metrics = metrics if metrics is not None else DeviceMetrics(device.id, "opcua")
        self._index = {p.id: i for i, p in enumerate(device.points)}
        fastest_ms = min(_scan_ms(device, p) for p in device.points)
        self.publishing_interval_ms = device.publishing_interval_ms or fastest_ms
        self._points = [
            _Point(
                p.id,
                p.unit,
                p.scale,
                p.offset,
                p.queue_size * max(1, math.ceil(_scan_ms(device, p) / self.publishing_interval_ms)),
            )
            for p in device.points
        ]
        self._all = list(range(len(self._points)))
        self._client: Client | None = None
        self._nodes: list = []
        self._max_per_read = 0  # server's MaxNodesPerRead; 0 = no limit
        self._reads: dict[tuple[int, ...], NodeRead] = {}  # this connection's, per chunk of points read together
        self._encoded_reads = False  # asyncua's hooks installed (asyncua_hooks.py)
        self._lost: str | None = None
        self._subscription: Subscription | None = None
        self._keep = [p.keep for p in self._points]
        # per point: subscribed? (else polled), why it cannot be read at all (else None), last value,
        # values notified since the last scan
        self._subscribed = [False] * len(self._points)
        self._unreadable: list[str | None] = [None] * len(self._points)
        self._latest: list[Compact | None] = [None] * len(self._points)
        self._pending: list[list[Compact]] = [[] for _ in self._points]

    @property
    def subscribed_points(self) -> list[str]:
        return [p.id for p, s in zip(self._points, self._subscribed, strict=True) if s]

    def group(self, point_ids: Sequence[str]) -> list[int]:
        return [self._index[pid] for pid in point_ids]

    # -- connection -------------------------------------------------------------------------

    async def connect(self) -> None:
        await self.close()
        device = self.device
        # the watchdog probes the server every interval and gives it that long to answer
        client = Client(device.endpoint, timeout=device.timeout_s, watchdog_intervall=max(1.0, device.timeout_s))
        client.application_uri = device.application_uri
        client.name = client.description = f"ferrogate {device.id}"
        self._lost = None
        # data changes and Read results read from their encoding, not through asyncua's objects
        encoded = asyncua_hooks.install()
        try:
            if device.security_mode is not SecurityMode.none:
                await self._secure(client)
            if device.username is not None:
                client.set_user(device.username)
                password = device.resolve_password()
                if password is not None:
                    client.set_password(password)
            client.connection_lost_callback = self._on_connection_lost
            await client.connect()
        except BaseException:
            client.disconnect_socket()  # connect cleans up after errors, not after cancellation
            raise
        self._client = client
        self._reads = {}
        self._encoded_reads = encoded
        try:
            self._resolve_nodes(client, await client.get_namespace_array())
            self._max_per_read = await self._read_limit(client)
            self._subscribed = [False] * len(self._points)
            # seed every point's value (before subscribing: no notification may be overwritten)
            readable = self._readable(self._all)
            self._latest = [None] * len(self._points)
            for i, value in zip(readable, await self._read_values(readable), strict=True):
                self._latest[i] = value
            self._pending = [[] for _ in self._points]
            if device.mode is not OpcUaMode.poll:
                await self._subscribe(client)
        except BaseException:
            await self.close()
            raise

    async def _secure(self, client: Client) -> None:
        device = self.device
        policy = getattr(security_policies, f"SecurityPolicy{device.security_policy.value}")
        mode = getattr(ua.MessageSecurityMode, device.security_mode.value)
        trust_dir = device.trusted_certs_dir
        assert device.certificate and device.private_key and trust_dir  # checked by the config model
        if not trust_dir.is_dir():
            raise FileNotFoundError(f"trusted_certs_dir {trust_dir} is not a directory")
        if not certificate_files(trust_dir):
            raise await empty_trust_list(trust_dir, device.endpoint, device.timeout_s)
        store = TrustStore([trust_dir], [])
        await store.load()
        client.certificate_validator = CertificateValidator(SERVER_CERT_CHECKS, store)
        # asks the server for its endpoints (and certificate) first; the validator checks it at CreateSession
        await client.set_security(policy, str(device.certificate), str(device.private_key), mode=mode)

    def _resolve_nodes(self, client: Client, namespaces: list[str]) -> None:
        """Nodes of the points; 'nsu=URI;...' becomes the server's current namespace index (indexes
        can shift). A point whose namespace the server lacks is BAD with a config_error."""
        self._nodes = []
        self._unreadable = [None] * len(self._points)
        for i, p in enumerate(self.device.points):
            node_id = ua.NodeId.from_string(p.node)
            uri = getattr(node_id, "NamespaceUri", None)
            if uri:
                if uri in namespaces:
                    node_id = ua.NodeId(node_id.Identifier, namespaces.index(uri), node_id.NodeIdType)
                else:
                    self._unreadable[i] = f"{CONFIG_ERROR}: the server has no namespace {uri}"
            self._nodes.append(client.get_node(node_id))

    def _readable(self, indices: list[int]) -> list[int]:
        unreadable = self._unreadable
        return [i for i in indices if unreadable[i] is None]

    @staticmethod
    async def _read_limit(client: Client) -> int:
        node = client.get_node(ua.NodeId(ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead))
        try:
            return int(await node.read_value() or 0)
        except (ua.UaError, TimeoutError, TypeError, ValueError):
            return 0  # not advertised: no limit known

    async def _subscribe(self, client: Client) -> None:
        device = self.device
        try:
            # iterator mode with a queue that stays empty: the notifications never become events (below)
            sub = await client.create_subscription(self.publishing_interval_ms, handler=None, queue_maxsize=1)
        except ua.UaStatusCodeError as exc:
            if device.mode is OpcUaMode.subscribe:
                raise
            log.info("%s: no subscription (%s); polling every point", device.id, exc)
            return
        # asyncua makes a DataChangeNotif and a DataChangeEvent of every monitored item of a publish
        # response and queues them one by one: more CPU than everything else the collector does with
        # the value. Its publish_callback (which also keeps the subscription's sequence numbers and
        # liveness for asyncua's watchdog) looks `_explode_notifications` up on the instance for each
        # response, so the driver takes the whole notification list there, in one pass, and yields
        # no events (asyncua 2.1.0, pinned in pyproject.toml; tests/test_drivers_opcua.py covers it).
        if not hasattr(sub, "_explode_notifications"):  # an asyncua other than the pinned one
            raise RuntimeError(f"asyncua {asyncua.__version__}: no Subscription._explode_notifications to hook")
        sub._explode_notifications = self._take_notifications  # type: ignore[method-assign]
        wanted = self._readable(self._all)
        results = await sub.create_monitored_items([self._monitor_request(i) for i in wanted])
        refused = []
        for i, result in zip(wanted, results, strict=True):
            if not isinstance(result, ua.StatusCode):
                self._subscribed[i] = True
                continue
            refused.append(f"{self._points[i].id} ({result.name})")
            if device.mode is OpcUaMode.subscribe:  # in auto mode the point is polled instead
                self._unreadable[i] = f"monitored item refused: {result.name}"
        if refused:
            how = "polling them" if device.mode is OpcUaMode.auto else "their readings are BAD"
            log.warning("%s: server refused monitored items %s; %s", device.id, ", ".join(refused), how)
        self._subscription = sub

    def _monitor_request(self, i: int) -> ua.MonitoredItemCreateRequest:
        point = self.device.points[i]
        params = ua.MonitoringParameters()
        params.ClientHandle = _HANDLE_BASE + i
        sampling = point.sampling_interval_ms
        params.SamplingInterval = sampling if sampling is not None else _scan_ms(self.device, point)
        params.QueueSize = point.queue_size
        params.DiscardOldest = True
        if point.server_deadband is not None:
            f = ua.DataChangeFilter()
            f.Trigger = ua.DataChangeTrigger.StatusValue
            f.DeadbandType = 1 if point.server_deadband_type is DeadbandType.absolute else 2
            f.DeadbandValue = point.server_deadband
            params.Filter = f
        item = ua.ReadValueId()
        item.NodeId = self._nodes[i].nodeid
        item.AttributeId = ua.AttributeIds.Value
        request = ua.MonitoredItemCreateRequest()
        request.ItemToMonitor = item
        request.MonitoringMode = ua.MonitoringMode.Reporting
        request.RequestedParameters = params
        return request

    def _take_notifications(self, notifications: Iterable[object]) -> tuple[()]:
        """A publish response's notifications -> per-point pending values: one pass over its
        monitored items, read from their encoding (notifications.py), a point's index straight from
        the client handle; no awaiting, no per-value logging. Returns no events for asyncua."""
        for notification in notifications:
            if isinstance(notification, ua.DataChangeNotification):
                self._take_changes(changes(notification))
            elif isinstance(notification, ua.StatusChangeNotification):
                status = notification.Status
                if not status.is_good():
                    self._lost = f"{COMM_ERROR}: subscription status {status.name}"
        return ()

    def _take_changes(self, changed: list[Change]) -> None:
        pending, latest, keep = self._pending, self._latest, self._keep
        count = len(pending)
        for handle, value in changed:
            i = handle - _HANDLE_BASE
            if not 0 <= i < count:  # not one of ours: nothing to keep
                continue
            queue = pending[i]
            queue.append(value)
            if len(queue) > keep[i]:
                del queue[0]
            latest[i] = value

    async def _on_connection_lost(self, exc: Exception) -> None:
        self._lost = f"{COMM_ERROR}: connection lost: {type(exc).__name__}: {exc}"

    async def close(self) -> None:
        self._subscription = None
        self._reads = {}
        client, self._client = self._client, None
        if client is not None:
            await _disconnect_quietly(client, self.device.timeout_s)

    # -- reading ----------------------------------------------------------------------------

    async def _read_values(self, indices: list[int]) -> list[Compact]:
        """One Read call per MaxNodesPerRead nodes (one call for all when the server sets no limit)."""
        assert self._client is not None
        size = self._max_per_read or max(1, len(indices))
        values: list[Compact] = []
        for start in range(0, len(indices), size):
            chunk = tuple(indices[start : start + size])
            read = self._reads.get(chunk)
            if read is None:  # a scan class polls the same points every time: its request is kept
                read = self._reads[chunk] = NodeRead(self._client, [self._nodes[i] for i in chunk], self._encoded_reads)
            self.metrics.requests += 1
            values += await read.read()
        return values

    async def read(self, group: list[int] | None = None) -> list[Reading]:
        indices = self._all if group is None else group
        units = [(self._points[i].id, self._points[i].unit) for i in indices]
        if self._client is None:
            return bad_readings(units, f"{COMM_ERROR}: not connected", now_ns())
        if self._lost is not None:
            reason = self._lost
            await self.close()
            return bad_readings(units, reason, now_ns())
        subscribed = self._subscribed
        polled = [i for i in self._readable(indices) if not subscribed[i]]
        polled_values: dict[int, Compact] = {}
        if polled:
            try:
                values = await self._read_values(polled)
            except TimeoutError as exc:
                await self.close()
                return bad_readings(units, f"{TIMEOUT}: no answer within {self.device.timeout_s:g} s: {exc}", now_ns())
            except (OSError, ConnectionError, ua.UaError) as exc:
                await self.close()
                return bad_readings(units, f"{COMM_ERROR}: {type(exc).__name__}: {exc}", now_ns())
            polled_values = dict(zip(polled, values, strict=True))
        t_gateway = now_ns()
        readings: list[Reading] = []
        for i in indices:
            dv = polled_values.get(i)
            if dv is not None:
                readings.append(self._reading(i, dv, t_gateway))
            elif subscribed[i]:
                queue = self._pending[i]
                if queue:
                    self._pending[i] = []
                    readings += [self._reading(i, v, t_gateway) for v in queue]
                else:
                    readings.append(self._reading(i, self._latest[i], t_gateway))
            else:
                p = self._points[i]
                readings.append(Reading(p.id, None, p.unit, t_gateway, Quality.BAD, self._unreadable[i]))
        return readings

    def _reading(self, i: int, value: Compact | None, t_gateway: int) -> Reading:
        p = self._points[i]
        if value is None:
            return Reading(p.id, None, p.unit, t_gateway, Quality.BAD, f"{COMM_ERROR}: no value received yet")
        raw, status, t = value
        if t is None:
            t = t_gateway
        if status >> 30 == 0:  # Good (OPC UA severity bits 00)
            quality, reason = Quality.GOOD, None
        else:
            quality, reason = quality_of(ua.StatusCode(status))
            if quality is Quality.BAD:
                # some servers send a value with a Bad status (a failed sensor's 0.0): it is no reading
                return Reading(p.id, None, p.unit, t, quality, reason)
        if not isinstance(raw, (int, float)):  # bool is an int: True -> 1.0
            return Reading(p.id, None, p.unit, t, Quality.BAD, f"{CONFIG_ERROR}: not a number ({type(raw).__name__})")
        number = float(raw) * p.scale + p.add
        if not math.isfinite(number):
            return Reading(p.id, None, p.unit, t, Quality.BAD, f"{NOT_FINITE}: {raw}")
        return Reading(p.id, number, p.unit, t, quality, reason)  # an Uncertain value keeps its reason


def _scan_ms(device: OpcUaDevice, point) -> float:
    return (point.scan_interval_s or device.scan_interval_s) * 1000


async def _disconnect_quietly(client: Client, timeout_s: float) -> None:
    """Close session, channel and socket, and stop the client's own tasks; a dead server must not
    make this hang or raise."""
    try:
        async with asyncio.timeout(timeout_s):
            await client.disconnect()
    except (OSError, ConnectionError, ua.UaError, TimeoutError) as exc:
        log.debug("disconnect: %r", exc)

"""Data change notifications kept encoded, their items read in one pass (datavalues.py).

asyncua decodes every monitored item of a publish response into a MonitoredItemNotification and a
DataValue with its Variant, StatusCode and datetimes: at thousands of changes a second that costs
more CPU than everything the collector does with the values. Here a DataChangeNotification is kept
as its encoded body (`EncodedChanges`, still a DataChangeNotification to anyone else: its
MonitoredItems are asyncua's own decoding, made when first asked for), and `changes()` reads
(client handle, value, status code, source time) of each item from it. asyncua is made to keep the
body by `asyncua_hooks.install()`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asyncua import ua
from asyncua.common.utils import Buffer

from ferrogate.drivers.opcua.datavalues import Compact, compact, read_values

Change = tuple[int, Compact]  # client handle, what it says


class EncodedChanges(ua.DataChangeNotification):
    """A DataChangeNotification kept encoded; `MonitoredItems` and `DiagnosticInfos` are decoded by
    asyncua when first read (so any other user of the notification sees what asyncua gives)."""

    body: bytes
    decoder: Callable[[Buffer], ua.DataChangeNotification]  # asyncua's

    def __getattr__(self, name: str) -> Any:  # only for attributes not set yet
        if name not in ("MonitoredItems", "DiagnosticInfos"):
            raise AttributeError(name)
        decoded = self.decoder(Buffer(self.body))
        self.MonitoredItems = decoded.MonitoredItems
        self.DiagnosticInfos = decoded.DiagnosticInfos
        return getattr(decoded, name)


def changes(notification: ua.DataChangeNotification) -> list[Change]:
    """Every monitored item of the notification, in order."""
    if isinstance(notification, EncodedChanges) and "MonitoredItems" not in notification.__dict__:
        handles: list[int] = []
        values, _ = read_values(notification.body, 0, handles)
        return list(zip(handles, values, strict=True))
    return [(item.ClientHandle, compact(item.Value)) for item in notification.MonitoredItems]


def keep_encoded(asyncua_decoder: Callable[[Buffer], ua.DataChangeNotification]) -> Callable[[Buffer], EncodedChanges]:
    """A deserializer for DataChangeNotification that keeps its body (`asyncua_decoder` decodes it
    for anyone who asks for its items)."""

    def decode(data: Buffer) -> EncodedChanges:
        notification = EncodedChanges.__new__(EncodedChanges)
        notification.body = data.read(len(data))
        notification.decoder = asyncua_decoder
        return notification

    return decode

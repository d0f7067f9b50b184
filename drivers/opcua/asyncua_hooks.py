"""Where the driver takes over from asyncua's per-value decoding (process-wide, idempotent).

asyncua looks its (de)serializers up by type through `ua_binary._create_dataclass_deserializer` and
`ua_binary.create_dataclass_serializer`. `install()` puts its own in front of both:
- a DataChangeNotification is kept encoded (notifications.py);
- an EncodedRead request is sent with the parameters it was made with (reads.py).
Every other type is asyncua's as it ships. These are private hooks, so they are installed only on
the asyncua release they were written and tested against; with any other, asyncua decodes as it
ships and the driver reads its objects (tests/test_drivers_opcua_encoding.py checks both).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncua
from asyncua import ua
from asyncua.client.ua_client import UaClient
from asyncua.common.utils import Buffer
from asyncua.ua import ua_binary

from ferrogate.drivers.opcua.notifications import keep_encoded
from ferrogate.drivers.opcua.reads import EncodedRead, encoder

# the asyncua release whose private hooks this was written and tested against (pinned in pyproject.toml)
CHECKED_ASYNCUA = "2.1.0"

_asyncua_deserializer: Callable[[type | str], Callable[[Buffer], Any]] = ua_binary._create_dataclass_deserializer
_asyncua_serializer: Callable[[type], Callable[[Any], bytes]] = ua_binary.create_dataclass_serializer
_keep_changes = keep_encoded(_asyncua_deserializer(ua.DataChangeNotification))
_encode_read = encoder(_asyncua_serializer(ua.RequestHeader))


def _deserializer(objtype: type | str) -> Callable[[Buffer], Any]:
    if objtype is ua.DataChangeNotification:
        return _keep_changes
    return _asyncua_deserializer(objtype)


def _serializer(dataclazz: type) -> Callable[[Any], bytes]:
    if dataclazz is EncodedRead:
        return _encode_read
    return _asyncua_serializer(dataclazz)


def install() -> bool:
    """True when asyncua keeps DataChangeNotifications encoded and sends EncodedReads as made (and
    UaClient has the `_send_request` reads.py calls); False, asyncua left as it is, on a release
    this was not checked against."""
    if asyncua.__version__ != CHECKED_ASYNCUA or not hasattr(UaClient, "_send_request"):
        return False
    if ua_binary._create_dataclass_deserializer is not _deserializer:
        ua_binary._create_dataclass_deserializer = _deserializer
        ua_binary._create_type_deserializer.cache_clear()  # deserializers built before still decode
    ua_binary.create_dataclass_serializer = _serializer  # looked up per call by struct_to_binary
    return True

"""paho's MQTT v5 Properties, without rebuilding its tables for every packet.

paho-mqtt 2.2 makes a `Properties` for every PUBLISH and PUBACK it decodes; its constructor builds
a 27-entry name table and a 27-entry type table, `unpack` finds each property by scanning them and
copies the rest of the packet, payload included, once per field it reads. paho's decoding of a
received 3 kB PUBLISH with one user property: 64-80 us of CPU with paho's Properties, 18-23 us with
these (a loop of 20,000 on the loaded 2-core box); under an ingest burst paho's Properties were
about 15 % of the ingest process's samples (bench/README.md). `LeanProperties` is the same class
with those tables built once and looked up in dicts; behaviour (errors, packing, `str`) is paho's.
`install()` has paho's packet decoder make these (process-wide, idempotent); every other use of
`Properties` is untouched.
"""

from __future__ import annotations

from typing import Any

import paho.mqtt as paho
from paho.mqtt import _packet
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties, VariableByteIntegers

_TABLES = Properties(PacketTypes.PUBLISH)
_IDENT = {name.replace(" ", ""): ident for name, ident in _TABLES.names.items()}  # compressed name -> id
_NAME = {ident: name for name, ident in _TABLES.names.items()}
_MULTIPLE = frozenset(name for name, ident in _IDENT.items() if ident in (11, 38))  # paho's allowsMultiple
# properties whose values paho's setter range-checks: set through it
_CHECKED = frozenset(
    (
        "ReceiveMaximum",
        "TopicAlias",
        "TopicAliasMaximum",
        "MaximumPacketSize",
        "SubscriptionIdentifier",
        "RequestResponseInformation",
        "RequestProblemInformation",
        "PayloadFormatIndicator",
    )
)


class LeanProperties(Properties):
    types = _TABLES.types
    names = _TABLES.names
    properties = _TABLES.properties

    def __init__(self, packetType: int) -> None:
        object.__setattr__(self, "packetType", packetType)

    def getIdentFromName(self, compressedName: str) -> int:
        return _IDENT.get(compressedName, -1)

    def getNameFromIdent(self, identifier: int) -> str | None:
        return _NAME.get(identifier)

    def allowsMultiple(self, compressedName: str) -> bool:
        return compressedName in _MULTIPLE

    def isEmpty(self) -> bool:
        return not any(name in _IDENT for name in vars(self))

    def clear(self) -> None:
        for name in [name for name in vars(self) if name in _IDENT]:
            delattr(self, name)

    def unpack(self, buffer: bytes) -> tuple[Properties, int]:
        # paho strips each field off the front of what it is given, and it is given the payload
        # too (a copy of a whole message per field): hand it the properties alone
        length, length_bytes = VariableByteIntegers.decode(buffer)
        return super().unpack(buffer[: length_bytes + length])

    def __setattr__(self, name: str, value: Any) -> None:
        name = name.replace(" ", "")
        ident = _IDENT.get(name)
        # anything paho would refuse or range-check goes through paho's own setter
        if ident is None or name in _CHECKED or self.packetType not in self.properties[ident][1]:
            super().__setattr__(name, value)
            return
        if name in _MULTIPLE:
            if not isinstance(value, list):
                value = [value]
            if name in vars(self):
                value = object.__getattribute__(self, name) + value
        object.__setattr__(self, name, value)


# the paho release whose private decoder (`paho.mqtt._packet`) this was written and tested against
# (pyproject.toml pins it); with any other, paho's own Properties stay
CHECKED_PAHO = "2.2.0"


def install() -> bool:
    """Have paho's packet decoder (received PUBLISH, PUBACK, SUBACK...) build LeanProperties; False
    (and paho's own Properties kept) on a paho release this was not checked against."""
    if paho.__version__ != CHECKED_PAHO or getattr(_packet, "Properties", None) not in (Properties, LeanProperties):
        return False
    _packet.Properties = LeanProperties  # type: ignore[misc]
    return True

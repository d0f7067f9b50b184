"""gateway/mqtt_properties.py: LeanProperties behaves as paho's Properties (pure logic)."""

from __future__ import annotations

import pytest
from paho.mqtt import _packet
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import MQTTException, Properties

from ferrogate.gateway import mqtt_properties
from ferrogate.gateway.mqtt_properties import LeanProperties, install

# a value for every property, by paho's type index
VALUES = {0: 1, 1: 300, 2: 70_000, 3: 5, 4: b"\x00\x01", 5: "text", 6: ("key", "value")}


def filled(cls: type[Properties], packet_type: int) -> Properties:
    """Every property paho allows on `packet_type`, set by name (user properties twice)."""
    props = cls(packet_type)
    for name, ident in props.names.items():
        kind, packets = props.properties[ident]
        if packet_type in packets:
            setattr(props, name.replace(" ", ""), VALUES[kind])
            if ident == 38:
                props.UserProperty = ("again", "2")
    return props


@pytest.mark.parametrize(
    "packet_type", [PacketTypes.PUBLISH, PacketTypes.CONNECT, PacketTypes.CONNACK, PacketTypes.PUBACK]
)
def test_it_packs_unpacks_and_prints_as_paho_does(packet_type: int) -> None:
    theirs, ours = filled(Properties, packet_type), filled(LeanProperties, packet_type)
    assert ours.pack() == theirs.pack()
    assert str(ours) == str(theirs) and ours.json() == theirs.json()
    back_theirs, back_ours = Properties(packet_type), LeanProperties(packet_type)
    back_theirs.unpack(theirs.pack())
    back_ours.unpack(theirs.pack())
    assert back_ours.json() == back_theirs.json() and not back_ours.isEmpty()
    back_ours.clear()
    assert back_ours.isEmpty() and back_ours.json() == {} and LeanProperties(packet_type).isEmpty()


@pytest.mark.parametrize(
    ("packet_type", "name", "value", "message"),
    [
        (PacketTypes.PUBLISH, "NoSuchThing", 1, "must be one of"),
        (PacketTypes.PUBLISH, "SessionExpiryInterval", 1, "does not apply"),
        (PacketTypes.CONNECT, "ReceiveMaximum", 0, "range 1-65535"),
        (PacketTypes.PUBLISH, "PayloadFormatIndicator", 2, "must be 0 or 1"),
    ],
)
def test_it_refuses_what_paho_refuses(packet_type: int, name: str, value: object, message: str) -> None:
    for cls in (Properties, LeanProperties):
        with pytest.raises(MQTTException, match=message):
            setattr(cls(packet_type), name, value)


def test_install_makes_paho_decode_received_packets_into_lean_properties() -> None:
    original = _packet.Properties
    try:
        assert install(), "written for the pinned paho release"
        sent = Properties(PacketTypes.PUBLISH)
        sent.UserProperty = ("ferrogate-spool", "c1 e 5 4")
        packet = b"\x00\x01t\x00\x07" + sent.pack() + b"payload"  # topic "t", message id 7
        decoded = _packet.decode_publish(0x32, packet, _packet.MQTTProtocolVersion.MQTTv5)
        assert isinstance(decoded.properties, LeanProperties)
        assert decoded.properties.UserProperty == [("ferrogate-spool", "c1 e 5 4")]
        assert (decoded.mid, decoded.payload) == (7, b"payload")
    finally:
        _packet.Properties = original


def test_install_keeps_paho_properties_on_a_paho_release_it_was_not_checked_against(monkeypatch) -> None:
    monkeypatch.setattr(_packet, "Properties", Properties)  # as paho ships it (an ingest may have installed ours)
    monkeypatch.setattr(mqtt_properties.paho, "__version__", "9.9.9")
    assert mqtt_properties.install() is False
    assert _packet.Properties is Properties

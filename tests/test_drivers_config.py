"""Plant-file checks of the driver settings: each mistake is reported with its place and reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ferrogate.drivers.modbus.config import ModbusType
from ferrogate.gateway.config_loader import ConfigError, format_path, parse_plant

MODBUS = {"id": "m", "protocol": "modbus", "host": "10.0.0.5"}
OPCUA = {"id": "plc", "protocol": "opcua", "endpoint": "opc.tcp://10.0.0.6:4840"}


def problems(device: dict) -> list[str]:
    text = yaml.safe_dump({"site": {"id": "s", "name": "s"}, "devices": [device]})
    try:
        parse_plant(text, Path("plant.yaml"))
    except ConfigError as exc:
        return [f"{format_path(p.path)}: {p.reason}" for p in exc.problems]
    return []


@pytest.mark.parametrize(
    ("point", "reason"),
    [
        (
            {"id": "p", "address": 0, "type": "bool", "unit": "1"},
            "type 'bool' goes with tables 'coil' and 'discrete_input' (and only those); "
            "for one bit of a register use 'bit: N' with an integer type",
        ),
        (
            {"id": "p", "address": 0, "table": "coil", "type": "uint16", "unit": "1"},
            "type 'bool' goes with tables 'coil' and 'discrete_input' (and only those); "
            "for one bit of a register use 'bit: N' with an integer type",
        ),
        (
            {"id": "p", "address": 0, "type": "float32", "bit": 3, "unit": "1"},
            "'bit' needs an integer type (e.g. uint16)",
        ),
        ({"id": "p", "address": 0, "type": "uint16", "bit": 16, "unit": "1"}, "'bit' 16 is outside a uint16 (16 bits)"),
        (
            {"id": "p", "address": 0, "bit": 1, "scale": 0.1, "unit": "1"},
            "scale/offset do not apply to bool or bit points (their value is 0 or 1)",
        ),
        ({"id": "p", "address": 65534, "type": "float64", "unit": "kWh"}, "register range runs past address 65535"),
        (
            {"id": "p", "address": 0, "type": "uint16", "invalid_values": [70000], "unit": "1"},
            "'invalid_values' 70000 is not a raw uint16 value (they are compared before scale and offset, "
            "e.g. 65535 for a uint16's 0xFFFF)",
        ),
        (
            {"id": "p", "address": 0, "type": "int16", "scale": 0.1, "invalid_values": [-999.9], "unit": "%"},
            "'invalid_values' -999.9 is not a raw int16 value (they are compared before scale and offset, "
            "e.g. 65535 for a uint16's 0xFFFF)",
        ),
        (
            {"id": "p", "address": 0, "bit": 2, "invalid_values": [1], "unit": "1"},
            "'invalid_values' do not apply to bool or bit points (their value is 0 or 1)",
        ),
    ],
)
def test_modbus_point_mistakes(point: dict, reason: str) -> None:
    assert problems({**MODBUS, "points": [point]}) == [f"devices[0].points[0]: {reason}"]


def test_a_coil_is_a_bool_without_saying_so() -> None:
    assert problems({**MODBUS, "points": [{"id": "p", "address": 3, "table": "coil", "unit": "1"}]}) == []
    assert ModbusType("bool").registers == 1


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({"security_mode": "Sign"}, "security_policy and security_mode are both 'None' or both set (e.g. Sign)"),
        (
            {"security_policy": "Basic256Sha256", "security_mode": "SignAndEncrypt", "certificate": "c.der"},
            "security_mode SignAndEncrypt needs private_key, trusted_certs_dir",
        ),
    ],
)
def test_opcua_security_must_be_complete(settings: dict, reason: str) -> None:
    point = {"id": "p", "node": "ns=2;s=P", "unit": "kW"}
    assert problems({**OPCUA, **settings, "points": [point]}) == [f"devices[0]: {reason}"]


def test_out_of_range_driver_settings_name_the_field() -> None:
    point = {"id": "p", "address": 0, "unit": "1"}
    device = {**MODBUS, "max_registers_per_read": 126, "max_concurrent_requests": 0, "points": [point]}
    assert [p.split(":")[0] for p in problems(device)] == [
        "devices[0].max_registers_per_read",
        "devices[0].max_concurrent_requests",
    ]
    opc = {**OPCUA, "mode": "push", "points": [{"id": "p", "node": "ns=2;s=P", "unit": "kW", "queue_size": 0}]}
    assert [p.split(":")[0] for p in problems(opc)] == ["devices[0].mode", "devices[0].points[0].queue_size"]


def test_not_available_defaults_to_the_types_standard_value_per_device() -> None:
    """An integer point's "not available" raw value is its type's all-ones (unsigned) or minimum
    (signed) unless it lists its own; a device with `not_available: none` has none by default."""
    points = [
        {"id": "e", "address": 0, "type": "uint32", "unit": "kWh"},
        {"id": "t", "address": 2, "type": "int16", "unit": "degC"},
        {"id": "w", "address": 3, "type": "uint16", "bit": 0, "unit": "1"},
        {"id": "f", "address": 4, "type": "float32", "unit": "kW"},
        {"id": "own", "address": 6, "type": "uint16", "invalid_values": [9999], "unit": "1"},
    ]
    for setting, want in (
        ({}, [(0xFFFFFFFF,), (-0x8000,), (), (), (9999,)]),
        ({"not_available": "none"}, [(), (), (), (), (9999,)]),
    ):
        text = yaml.safe_dump({"site": {"id": "s", "name": "s"}, "devices": [{**MODBUS, **setting, "points": points}]})
        device = parse_plant(text, Path("plant.yaml")).devices[0]
        assert [p.sentinels for p in device.points] == want, setting  # type: ignore[union-attr]
    assert problems({**MODBUS, "not_available": "sometimes", "points": points})[0].startswith(
        "devices[0].not_available"
    )

"""Register encoding (golden cases in tests/testcases/simulators/encoding/cases.yaml) and the rules
a register map keeps: types per table, no overlaps, images of every table."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from ferrogate.simulators.register_maps import REGISTER_MAPS
from ferrogate.simulators.registers import POWER_METER, Register, RegisterMap, encode, served_value

CASES = yaml.safe_load((Path(__file__).parent / "testcases" / "simulators" / "encoding" / "cases.yaml").read_text())


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_encoding_golden_case(case: dict) -> None:
    reg = Register(0, signal="x", unit="u", **case["register"])
    value, expected = float(case["value"]), float(case["served"])
    assert encode(reg, value) == case["words"]
    served = served_value(reg, value)
    assert math.isnan(served) if math.isnan(expected) else served == pytest.approx(expected, rel=1e-12)


def test_maps_reject_what_a_device_could_not_serve() -> None:
    with pytest.raises(ValueError, match="bool"):
        Register(0, "bool", "x", "1")  # a bool lives in a bit table
    with pytest.raises(ValueError, match="bool"):
        Register(0, "uint16", "x", "1", table="coil")
    with pytest.raises(ValueError, match="used by a and b"):
        RegisterMap("m", (Register(0, "uint32", "a", "kWh"), Register(1, "uint16", "b", "1")))
    RegisterMap("m", (Register(0, "uint32", "a", "kWh"), Register(0, "uint32", "b", "kWh", table="input")))
    with pytest.raises(ValueError, match="out of range"):
        Register(65535, "uint32", "x", "1")


def test_images_of_each_table() -> None:
    cells = REGISTER_MAPS["cells_rectifier"]
    values = dict.fromkeys(cells.signals, 0.0) | {"energy_import_kwh": 70000.0, "power_on": 1.0}
    assert cells.image(values, "input")[:2] == [1, 4464]
    assert cells.image(values, "holding") == [] and cells.size == 21
    assert cells.image(values, "coil") == [1] and cells.image(values, "discrete_input") == [1]
    assert cells.mapped("coil") == {0} and 13 in cells.mapped("input")
    assert POWER_METER.image({"energy_import_kwh": 1.0, "power_kw": 0.0, "clock_ms": 2.0}) == [0, 1, 0, 0, 0, 0, 0, 2]
    assert REGISTER_MAPS["power_meter"] is POWER_METER

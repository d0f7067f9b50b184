"""Golden cases for Modbus planning and decoding: tests/testcases/modbus/<case>/case.yaml holds the
points (as in the plant file), `max_gap` and the words (bits) each table answers; expected.txt the
reads planned and every decoded reading, one per line."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
import yaml

from ferrogate.drivers.modbus.config import ModbusPoint
from ferrogate.drivers.modbus.driver import _decode_into
from ferrogate.drivers.modbus.plan import ReadRequest, plan_requests
from ferrogate.gateway.reading import Reading

CASES = sorted(p for p in (Path(__file__).parent / "testcases" / "modbus").iterdir() if p.is_dir())


def answer(tables: dict[str, dict[int, list[int]]], req: ReadRequest) -> bytes | list[bool]:
    """What the device answers to `req`, from the case's table contents."""
    served: dict[int, int] = {}
    for start, words in tables.get(req.table.value, {}).items():
        served.update({start + i: w for i, w in enumerate(words)})
    missing = [a for a in range(req.start, req.start + req.count) if a not in served]
    assert not missing, f"the case gives no {req.table.value} value at {missing}"
    values = [served[a] for a in range(req.start, req.start + req.count)]
    return [bool(v) for v in values] if req.table.is_bits else struct.pack(f">{req.count}H", *values)


def line(r: Reading) -> str:
    value = "-" if r.value is None else f"{r.value:.10g}"
    return " ".join(filter(None, [f"{r.point}:", value, r.unit, r.quality.value, r.reason]))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_case(case: Path) -> None:
    doc = yaml.safe_load((case / "case.yaml").read_text())
    points = [ModbusPoint.model_validate(p) for p in doc["points"]]
    plan = plan_requests(points, doc["max_gap"])
    readings: list[Reading] = []
    for req in plan:
        _decode_into(readings, req, answer(doc, req), 0)
    got = [f"read {req.describe()}" for req in plan] + [line(r) for r in readings]
    assert got == (case / "expected.txt").read_text().splitlines()

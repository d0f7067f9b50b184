"""`ferrogate probe`: one read of every point of one device, as the commissioning engineer runs it."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import pytest
import yaml

from ferrogate.gateway.services import free_port
from ferrogate.probe_cmd import probe, render, run
from ferrogate.simulators.registers import Register, RegisterMap
from tests.conftest import ROOT
from tests.field_devices import modbus_device, plant, start_modbus

METER = RegisterMap(
    "meter",
    (
        Register(0, "uint32", "energy", "kWh"),
        Register(2, "float32", "power", "kW"),
        Register(50, "uint16", "status", "1"),
    ),
)
POINTS = [
    {"id": "energy_import", "address": 0, "type": "uint32", "unit": "kWh"},
    {"id": "power", "address": 2, "type": "float32", "unit": "kW"},
    {"id": "breaker_closed", "address": 50, "bit": 3, "unit": "1"},
    {"id": "wrong_address", "address": 60, "unit": "1"},  # a typo in the register map: not on the meter
]
VALUES = {"energy": 1590, "power": 812.5, "status": 0b1000}


def plant_file(tmp_path: Path, port: int) -> Path:
    doc = {"site": {"id": "demo", "name": "demo"}, "devices": [modbus_device("eaf1_meter", port, POINTS)]}
    path = tmp_path / "plant.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


async def test_probe_json_lists_every_point_with_quality_and_timing(tmp_path: Path) -> None:
    sim = await start_modbus(METER, VALUES)
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ferrogate",
            "probe",
            "--plant",
            str(plant_file(tmp_path, sim.port)),
            "--device",
            "eaf1_meter",
            "--json",
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    finally:
        await sim.stop()
    assert proc.returncode == 2, f"a point that is not good gives exit status 2; stderr: {err.decode()}"
    doc = json.loads(out)
    assert (doc["device"], doc["protocol"], doc["connected"], doc["error"]) == ("eaf1_meter", "modbus", True, None)
    assert doc["requests"] == sim.requests + 1 == 3, "three reads; the one at the wrong address was refused"
    assert doc["plan"] == ["holding 0-3 (2 points)", "holding 50-50 (1 points)", "holding 60-60 (1 points)"]
    assert doc["connect_ms"] > 0 and doc["read_ms"] > 0
    got = {r["point"]: (r["value"], r["unit"], r["quality"], r["reason"]) for r in doc["readings"]}
    assert got == {
        "energy_import": (1590.0, "kWh", "good", None),
        "power": (812.5, "kW", "good", None),
        "breaker_closed": (1.0, "1", "good", None),
        "wrong_address": (None, "1", "bad", "device_exception: code 2 (illegal data address)"),
    }
    assert all(r["source_time"].endswith("Z") for r in doc["readings"])


async def test_probe_table_and_an_unreachable_device(tmp_path: Path) -> None:
    sim = await start_modbus(METER, VALUES)
    try:
        result = await probe(plant(modbus_device("eaf1_meter", sim.port, POINTS[:3])), "eaf1_meter")
    finally:
        await sim.stop()
    text = render(result).splitlines()
    assert text[0] == f"eaf1_meter  modbus tcp://127.0.0.1:{sim.port} unit 1"
    assert text[1].startswith("connect ") and "read 3 values in 2 request(s)" in text[1]
    assert text[4].split() == ["point", "value", "unit", "quality", "source", "time", "(UTC)", "reason"]
    assert text[5].split()[:4] == ["energy_import", "1590", "kWh", "good"]
    assert text[-1] == "3 good, 0 not good"

    dead = plant(modbus_device("eaf1_meter", free_port(), POINTS, timeout_s=0.5))
    unreachable = await probe(dead, "eaf1_meter")
    assert not unreachable.connected and unreachable.readings == []
    assert render(unreachable).splitlines()[1].startswith("cannot connect after ")
    assert "ConnectionError: cannot connect to 127.0.0.1:" in (unreachable.error or "")


def test_probe_exit_status_for_a_wrong_device_or_an_unreachable_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = plant_file(tmp_path, free_port())
    assert run(argparse.Namespace(plant=path, device="no_such", json=False)) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"no device 'no_such' in {path}; devices: eaf1_meter")
    assert run(argparse.Namespace(plant=path, device="eaf1_meter", json=True)) == 1
    assert json.loads(capsys.readouterr().out)["connected"] is False

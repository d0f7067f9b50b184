"""`ferrogate probe` for an HJ 212 logger: it listens where the gateway would, waits for the next
upload and shows what it decoded (header, every factor, the configured points as readings); with
nothing coming it says so and exits 1."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import yaml

from ferrogate.drivers.hj212.protocol.client import Hj212Client
from ferrogate.drivers.hj212.protocol.segment import DataSegment
from ferrogate.gateway.config_loader import load_plant
from ferrogate.gateway.services import free_port
from ferrogate.probe_cmd import render, run
from ferrogate.probe_hj212 import probe_hj212

MN = "350100EAF10001"


def plant_file(tmp_path: Path, port: int) -> Path:
    doc = {
        "site": {"id": "demo", "name": "demo"},
        "devices": [
            {
                "id": "eaf1_cems",
                "protocol": "hj212",
                "mn": MN,
                "password_env": "TEST_CEMS_PW",
                "listen_host": "127.0.0.1",
                "listen_port": port,
                "points": [
                    {"id": "so2", "code": "a21026-Rtd", "unit": "mg/m3"},
                    {"id": "nox", "code": "a21002-Rtd", "unit": "mg/m3"},
                    {"id": "so2_hour_kg", "code": "a21026-Cou", "data": "hour", "unit": "kg"},
                ],
            }
        ],
    }
    path = tmp_path / "plant.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


async def send_when_listening(port: int, password: str) -> None:
    """A logger that keeps trying to connect until the probe listens, then sends real-time data."""
    client = Hj212Client("127.0.0.1", port, timeout_s=30, retries=0)
    while True:
        try:
            await client.connect()
            break
        except OSError:
            await asyncio.sleep(0.05)
    await client.send(DataSegment(st="31", cn="2011", pw="000000", mn=MN, qn="20260105083000001", flag=5, cp=""))
    cp = "DataTime=20260105083000;a21026-Rtd=18.5,a21026-Flag=N;a21002-Rtd=40.1,a21002-Flag=C;a01012-Rtd=95.0"
    await client.send(DataSegment(st="31", cn="2011", pw=password, mn=MN, qn="20260105083000123", flag=5, cp=cp))
    await client.close()


async def test_probe_shows_the_next_upload(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TEST_CEMS_PW", "123456")
    port = free_port()
    plant = load_plant(plant_file(tmp_path, port))
    device = plant.devices[0]
    logger = asyncio.create_task(send_when_listening(port, "123456"))
    result = await probe_hj212(device, plant.site.timezone, wait_s=60)
    await logger
    assert result.connected and result.error is None
    assert result.refused == ["bad_password: 1"]  # the first upload had the wrong PW
    text = render(result)
    assert "CN=2011 (real-time data)" in text and "Flag=5 (HJ 212-2017, reply wanted)" in text
    assert "DataTime=20260105083000 = 2026-01-05T00:30:00.000Z" in text
    assert "a01012 (flue-gas temperature, degC): Rtd=95.0" in text  # decoded though no point reads it
    assert [(r.point, r.value, r.quality.value, r.reason) for r in result.readings] == [
        ("so2", 18.5, "good", None),
        ("nox", 40.1, "uncertain", "calibration: C"),
    ]
    assert "1 good, 1 not good" in text


def test_probe_cli_without_an_upload_exits_1(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("TEST_CEMS_PW", "123456")
    path = plant_file(tmp_path, free_port())
    code = run(argparse.Namespace(plant=path, device="eaf1_cems", json=False, wait=0.3))
    out = capsys.readouterr().out
    assert code == 1
    assert "hj212 listening on 127.0.0.1" in out and "nothing received" in out and "no upload from MN" in out

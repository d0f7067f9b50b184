"""A collect process loads what collecting needs and nothing of the other roles (issue 15: its
memory). Checked in a fresh interpreter that starts `--role collect` as `ferrogate run` does (the
CLI's imports, the plant file loaded, the role started and stopped) and lists `sys.modules`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import ROOT

# modules of the roles and sections a collect process of a plain site plant never uses
NOT_LOADED = (
    "uvicorn",  # the API server
    "fastapi",
    "httpx",  # InfluxDB and platform clients
    "cryptography",
    "ferrogate.api.app",
    "ferrogate.gateway.ingest",
    "ferrogate.gateway.energy.books",  # the accounting engine
    "ferrogate.gateway.energy.model",
    "ferrogate.gateway.compliance.model",
    "ferrogate.gateway.cost.model",
    "ferrogate.gateway.uplink.service",
    "ferrogate.simulators.equipment",  # the simulators' catalogs
    "ferrogate.simulators.register_maps",
)

SCRIPT = """
import asyncio, json, sys
import ferrogate.cli  # what `ferrogate run` imports before it reads the plant file
from ferrogate.gateway.config_loader import load_plant
from ferrogate.gateway.runtime import Gateway

async def main():
    gateway = Gateway(load_plant(sys.argv[1]), ("collect",), gateway_id="t")
    await gateway.start()
    await gateway.stop()

asyncio.run(main())
print(json.dumps(sorted(sys.modules)))
"""


def test_a_collect_process_loads_nothing_of_the_other_roles(tmp_path: Path) -> None:
    plant = {
        "site": {"id": "site", "name": "site", "timezone": "UTC"},
        # a port nothing listens on: the publisher only tries it
        "mqtt": {"host": "127.0.0.1", "port": 9, "spool": {"path": str(tmp_path / "spool.sqlite")}},
        "devices": [
            {
                "id": "d1",
                "protocol": "modbus",
                "host": "127.0.0.1",
                "port": 9,
                "points": [{"id": "p1", "address": 0, "type": "uint16", "unit": "1"}],
            }
        ],
    }
    path = tmp_path / "plant.yaml"
    path.write_text(yaml.safe_dump(plant))
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path)], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    modules = set(json.loads(out.stdout.splitlines()[-1]))
    assert {"ferrogate.gateway.collect", "ferrogate.drivers.modbus.driver"} <= modules  # it did start collecting
    assert sorted(m for m in NOT_LOADED if m in modules) == []

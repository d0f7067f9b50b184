"""`ferrogate demo` as a user runs it: own broker and database, API up, SIGINT stops everything."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import DEMO_PLANT, ROOT, on_free_ports

pytestmark = pytest.mark.timeout(600)
API_LINE = re.compile(r"API: http://127\.0\.0\.1:(\d+)/")


def demo_plant_on_free_ports(tmp_path: Path) -> Path:
    doc = on_free_ports(yaml.safe_load(DEMO_PLANT.read_text()))
    path = tmp_path / "plant.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path


def api_port_of(lines: list[str]) -> int | None:
    """The port the demo's banner says its API listens on (it binds port 0: no port race)."""
    found = next((m for m in map(API_LINE.search, list(lines)) if m), None)
    return int(found.group(1)) if found else None


def test_demo_serves_live_values_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ferrogate",
            "demo",
            "--plant",
            str(demo_plant_on_free_ports(tmp_path)),
            "--api-port",
            "0",
            "--data-dir",
            str(data_dir),
            "--speed",
            "60",
            "--history",
            "1h",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "FERROGATE_DEMO_API_KEY": "demo-key-for-tests"},
    )
    lines: list[str] = []  # what the demo prints, read as it comes (the banner comes after start-up)
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    try:
        good = None
        deadline = time.monotonic() + 300  # seconds on a quiet box, a minute or more on a loaded one
        while time.monotonic() < deadline and (good is None or not any("ferrogate demo running" in x for x in lines)):
            assert proc.poll() is None, "".join(lines)
            api_port = api_port_of(lines)
            if api_port is None:  # still starting: the banner names the port once the API listens
                time.sleep(0.2)
                continue
            try:
                live = httpx.get(
                    f"http://127.0.0.1:{api_port}/api/v1/assets/eaf1/live",
                    timeout=2,
                    headers={"X-API-Key": "demo-key-for-tests"},
                ).json()
            except httpx.HTTPError:
                live = None
            if live and all(p["quality"] == "good" for p in live["points"]):
                good = live
            else:
                time.sleep(0.2)
        assert good is not None, "the demo's API never showed good readings for eaf1"
        assert {"kWh", "kW"} <= {p["unit"] for p in good["points"]}
        proc.send_signal(signal.SIGINT)  # once it says it runs: Ctrl-C of a user who read the banner
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=10)
    output = "".join(lines)
    assert proc.returncode == 0, output
    assert "ferrogate demo running" in output and "stopped" in output
    assert "API key (admin, send as X-API-Key): demo-key-for-tests" in output
    # its own broker and database ran in the data directory and were stopped with it
    for log in ("mosquitto/mosquitto.log", "influxdb/influxd.log"):
        assert (data_dir / log).exists()
    assert processes_mentioning(str(data_dir)) == []


def processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in args:
            found.append(args)
    return found

"""`ferrogate simulate` as a user runs it: the demo plant's simulators alone, every endpoint printed and
answering, simulated time in the past, the ledger file written, SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml
from pymodbus.client import ModbusTcpClient

from tests.conftest import ROOT, on_free_ports
from tests.simulator_plants import demo_doc


def lines_of(proc: subprocess.Popen[str]) -> tuple[queue.Queue[str], threading.Thread]:
    """The process's output lines as they come (a thread reads them, so waiting can time out)."""
    out: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.put(line.rstrip("\n"))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    return out, reader


def simulate(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ferrogate", "simulate", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ},
    )


def test_simulate_prints_its_endpoints_serves_them_and_stops_on_sigterm(tmp_path: Path) -> None:
    doc = on_free_ports(demo_doc())
    plant = tmp_path / "plant.yaml"
    plant.write_text(yaml.safe_dump(doc, allow_unicode=True))
    truth = tmp_path / "truth.jsonl"
    proc = simulate("--plant", str(plant), "--speed", "600", "--history", "1h", "--truth", str(truth))
    output, reader = lines_of(proc)
    printed: list[str] = []
    try:
        deadline = time.monotonic() + 300  # seconds on a quiet box; a loaded one takes minutes
        while not printed or printed[-1] != "Ctrl-C to stop.":
            assert time.monotonic() < deadline and proc.poll() is None, "\n".join(printed)
            try:
                printed.append(output.get(timeout=1))
            except queue.Empty:
                continue
        assert any(line.startswith("ferrogate simulate running:") for line in printed), printed
        for device in doc["devices"]:
            url = {
                "modbus": lambda d: f"tcp://127.0.0.1:{d['port']}",
                "hj212": lambda d: f"-> tcp://127.0.0.1:{d['listen_port']}",  # a logger connects out
            }.get(device["protocol"], lambda d: d["endpoint"])(device)
            assert any(line.strip().startswith(f"{device['id']}: ") and url in line for line in printed), device["id"]
        assert any(line.strip() == f"ground truth: {truth}" for line in printed)

        meter = next(d for d in doc["devices"] if d["id"] == "eaf1_meter")
        client = ModbusTcpClient("127.0.0.1", port=meter["port"], timeout=5)
        assert client.connect()
        rr = client.read_holding_registers(0, count=8, device_id=1)
        client.close()
        assert not rr.isError()
        clock_s = client.convert_from_registers(rr.registers[4:8], client.DATATYPE.UINT64) / 1000
        assert clock_s <= time.time(), "simulated time is never in the future"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=30)  # the output ends with the process
    rest = []
    while not output.empty():
        rest.append(output.get())
    assert any(line.startswith("simulated until ") and line.endswith("ledger lines") for line in rest), rest
    assert truth.exists()


def test_simulate_refuses_a_fault_that_does_not_fit() -> None:
    proc = simulate("--fault", "device=eaf1_meter,fault=bad_status", "--duration", "1")
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "bad_status applies to OPC UA devices only" in output

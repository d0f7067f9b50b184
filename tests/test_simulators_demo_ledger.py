"""`ferrogate demo` writes the simulators' ground truth to DATA_DIR/truth.jsonl, line by line as heats,
taps and simulated hours complete, in the format the accounting engine codes against."""

from __future__ import annotations

import json
from pathlib import Path

from ferrogate.gateway.demo import Demo, DemoOptions
from ferrogate.gateway.services import InfluxDB, Mosquitto
from tests.conftest import DEMO_PLANT, plant_on_free_ports
from tests.waiting import eventually

KEYS = {"kind", "asset", "id", "start", "end", "energy_kwh", "tonnes", "exported_kwh", "product"}
UPLOAD_KEYS = {"kind", "device", "mn", "cn", "qn", "data_time", "values", "acknowledged"}


async def test_demo_writes_the_ledger_to_its_data_dir(
    mosquitto: Mosquitto, influxdb: InfluxDB, fresh_database: str, tmp_path: Path
) -> None:
    plant = plant_on_free_ports(DEMO_PLANT, mosquitto, influxdb, fresh_database)
    demo = Demo(plant, DemoOptions(tmp_path, api_port=0, speed=3600, history_s=3 * 3600, move_taken_ports=True))
    ledger = tmp_path / "truth.jsonl"
    await demo.start()
    try:
        assert any(str(ledger) in message for message in demo.messages)

        def written() -> list[dict]:
            return [json.loads(line) for line in ledger.read_text(encoding="utf-8").splitlines()]

        async def heats_and_hours() -> bool:
            return {"eaf_heat", "generation", "cells_product"} <= {line["kind"] for line in written()}

        await eventually(heats_and_hours, "EAF heats and whole simulated hours in truth.jsonl", within_s=60)
        assert demo.simulation is not None
        lines = written()
        assert lines == demo.simulation.truth[: len(lines)]
        # the energy ledger's lines in the format the accounting engine codes against; the CEMS
        # loggers' uploads (the gateway answered them: the history runs once it scans) have their own
        energy = [line for line in lines if line["kind"] != "hj212_upload"]
        assert energy and all(set(line) == KEYS for line in energy)
        assert all(set(line) >= UPLOAD_KEYS for line in lines if line["kind"] == "hj212_upload")
        assert len({line["id"] for line in energy}) == len(energy), "ids are unique"
    finally:
        await demo.stop()

"""Pollution end to end with the real broker and database: the demo's simulated CEMS data loggers
-> HJ 212 driver (the gateway's listener) -> MQTT -> InfluxDB -> the pollution API, checked against
the simulator's ledger of what each logger sent and had acknowledged (the accelerated demo run of
`accounted_demo`, its loggers paused after their last answered upload)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from ferrogate.drivers.hj212.protocol.codes import DATA_FLAGS
from ferrogate.gateway.demo import Demo
from tests.test_api_energy import client, influx_rows, window

STACKS = {"eaf1": ("eaf1_cems", "eaf1_stack"), "saf1": ("saf1_cems", "saf1_stack")}
CODES = {"so2": "a21026", "nox": "a21002", "particulate": "a34013", "co2": "a05001"}


def ns(iso: str) -> int:
    return round(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()) * 1_000_000_000


def ledger_hours(demo: Demo, device: str) -> list[dict[str, Any]]:
    assert demo.simulation is not None
    return [
        r for r in demo.simulation.truth if r["kind"] == "hj212_upload" and r["device"] == device and r["cn"] == "2061"
    ]


@pytest.mark.parametrize("asset", sorted(STACKS))
async def test_pollutant_kpis_equal_the_simulator_ledger(accounted_demo: Demo, asset: str) -> None:
    device, stack = STACKS[asset]
    hours = ledger_hours(accounted_demo, device)
    assert len(hours) >= 2, "the run covers at least two whole simulated hours"
    async with client(accounted_demo) as http:
        answer = await http.get("/api/v1/kpi/pollutant-intensity", params={**window(accounted_demo), "asset": asset})
        assert answer.status_code == 200, answer.text
        energy = await http.get(
            "/api/v1/kpi/energy-intensity", params={**window(accounted_demo), "asset": asset, "group": "day"}
        )
        carbon = await http.get(
            "/api/v1/kpi/carbon-intensity", params={**window(accounted_demo), "asset": asset, "group": "day"}
        )
    body = answer.json()
    assert body["stacks"] == [stack]
    energy_days = {p["label"]: p for p in energy.json()["periods"]}
    carbon_days = {p["label"]: p for p in carbon.json()["periods"]}
    checked = 0
    for period in body["periods"]:
        start, end = ns(period["start"]), ns(period["end"])
        inside = [h for h in hours if start <= ns(h["data_time"]) < end]
        if not inside:
            continue
        valid = {p: [h for h in inside if h["values"][f"{c}-Flag"] == "N"] for p, c in CODES.items()}
        for pollutant, code in CODES.items():
            figures = period["pollutants"][pollutant]
            expected = sum(h["values"][f"{code}-Cou"] for h in valid[pollutant])
            assert figures["kg"] == pytest.approx(expected, rel=1e-12, abs=1e-9), (period["label"], pollutant)
            assert figures["valid_hours"] == len(valid[pollutant])
            assert figures["flagged_hours"] == len(inside) - len(valid[pollutant])
            tonnes = period["tonnes_t"]
            assert figures["kg_per_t"] == (pytest.approx(expected / tonnes) if tonnes else None)
        # beside the energy and carbon books of the same furnace and day
        assert period["tonnes_t"] == energy_days[period["label"]]["tonnes_t"]
        assert period["kwh_per_t"] == energy_days[period["label"]]["kwh_per_t"]
        assert period["tco2_per_t"] == carbon_days[period["label"]]["tco2_per_t"]
        assert period["co2"]["calculated_direct_t"] == carbon_days[period["label"]]["tco2_direct"]
        measured = sum(h["values"]["a05001-Cou"] for h in valid["co2"]) / 1000
        assert period["co2"]["measured_t"] == pytest.approx(measured, rel=1e-12)
        checked += 1
    assert checked >= 1
    limits = {(lim["pollutant"], lim["value"]) for lim in body["limits"]}
    assert ("particulate", 10) in limits and all(lim["unit"] == "mg/m3" for lim in body["limits"])


async def test_hourly_figures_and_real_time_readings_equal_the_ledger(accounted_demo: Demo) -> None:
    device, stack = STACKS["eaf1"]
    async with client(accounted_demo) as http:
        answer = await http.get("/api/v1/emissions/hourly", params={**window(accounted_demo), "stack": stack})
        missing = await http.get("/api/v1/emissions/hourly", params={**window(accounted_demo), "stack": "nope"})
    assert answer.status_code == 200, answer.text
    assert missing.status_code == 404 and missing.json()["detail"]["error"] == "unknown_stack"
    served = {ns(h["start"]): h for h in answer.json()["hours"]}
    sent = ledger_hours(accounted_demo, device)
    assert sorted(served) == sorted(ns(h["data_time"]) for h in sent)
    for hour in sent:
        got = served[ns(hour["data_time"])]
        for pollutant, code in CODES.items():
            assert got[pollutant]["concentration"] == hour["values"][f"{code}-Avg"]
            flag = hour["values"][f"{code}-Flag"]
            assert got[pollutant]["flag"] == ("N" if flag == "N" else DATA_FLAGS[flag].reason)
            assert got[pollutant]["mass_kg"] == (hour["values"][f"{code}-Cou"] if flag == "N" else None)
    # every real-time upload acknowledged became one reading per factor, at its DataTime
    assert accounted_demo.simulation is not None
    realtime = [
        r
        for r in accounted_demo.simulation.truth
        if r["kind"] == "hj212_upload" and r["device"] == device and r["cn"] == "2011"
    ]
    rows = await influx_rows(
        accounted_demo,
        f"""SELECT "value", "quality", "reason" FROM "reading" WHERE device='{device}' AND point='so2'""",
    )
    assert sorted(r["time"] for r in rows) == sorted(ns(r["data_time"]) for r in realtime)
    by_time = {r["time"]: r for r in rows}
    for upload in realtime:
        row = by_time[ns(upload["data_time"])]
        assert row["value"] == upload["values"]["a21026-Rtd"]
        flag = upload["values"]["a21026-Flag"]
        assert (row["quality"], row["reason"]) == (
            ("good", None) if flag == "N" else ("uncertain", f"calibration: {flag}")
        )

"""A group center stores a plant's books from their MQTT payloads: each payload turns back into
exactly the InfluxDB line the plant's engine wrote from the same row (gateway/energy/wire_lines.py),
so the center's figures are the plant's own."""

from __future__ import annotations

import json

import pytest

from ferrogate.gateway.energy import wire
from ferrogate.gateway.energy.aggregate import Period, PeriodKind
from ferrogate.gateway.energy.allocation import balance
from ferrogate.gateway.energy.books import BalanceRow, IntervalRow, Kpi
from ferrogate.gateway.energy.events import Amount
from ferrogate.gateway.energy.production import ProductionRecord
from ferrogate.gateway.energy.wire_lines import DerivedPayloadError, derived_lines
from ferrogate.gateway.reading import Quality

MONTH = Period(PeriodKind.month, 1_793_462_400_000_000_000, 1_796_054_400_000_000_000, "2026-11")
END_NS = 1_795_000_123_456_789_012  # a tap time below the millisecond: kept exactly


def test_kpi_payload_gives_back_the_kpi_line() -> None:
    kpi = Kpi(
        "product",
        "SiMn",
        MONTH,
        False,
        {"tonnes_t": 812.5, "electricity_kwh": 3_300_000.0, "kgce_per_t": 498.2, "records": 27, "kwh_per_t": None},
        Quality.UNCERTAIN,
        ["gap", "bridged_by_power"],
        {"grid": {"value": 0.5366, "unit": "tCO2/MWh", "source": "MEE 2024 announcement", "year": 2022}},
    )
    assert derived_lines(wire.kpi_payload("plant_a", kpi)) == ("plant_a", [wire.kpi_line("plant_a", kpi)])


def test_record_payload_gives_back_the_record_line_with_its_exact_time() -> None:
    rec = ProductionRecord("saf1", "SiMn", "saf_tap", "saf1/12", END_NS - 7_200_000_000_000, END_NS, 31.5)
    rec.electricity_kwh, rec.waste_heat_kwh = 125_000.0, 8_000.0
    rec.consumables = {"coke": 17.3, "electrode": 210.0}
    rec.quality, rec.flags = Quality.UNCERTAIN, {"counter_reset", "bridged_by_power"}
    units = {"coke": "t", "electrode": "kg"}
    site, lines = derived_lines(wire.record_payload("plant_b", rec, units))
    assert (site, lines) == ("plant_b", [wire.record_line("plant_b", rec, units)])
    assert lines[0].endswith(f" {END_NS}")


def test_interval_payload_gives_back_every_bucket_line() -> None:
    rows = [
        IntervalRow(
            "eaf1",
            "electricity_import",
            "counter",
            "kWh",
            MONTH.start_ns,
            MONTH.start_ns + 900 * 10**9,
            812.0,
            Quality.GOOD,
            (),
        ),
        IntervalRow(
            "eaf1",
            "electricity_import",
            "power",
            "kWh",
            MONTH.start_ns + 900 * 10**9,
            MONTH.start_ns + 1800 * 10**9,
            790.5,
            Quality.UNCERTAIN,
            ("gap", "a_flag"),
        ),
    ]
    site, lines = derived_lines(wire.intervals_payload("plant_c", "eaf1", rows))
    assert (site, lines) == ("plant_c", [wire.interval_line("plant_c", r) for r in rows])


def test_balance_payload_gives_back_the_balance_line() -> None:
    members = {"eaf1": Amount(600.0), "eaf2": Amount(350.0, Quality.UNCERTAIN, {"gap"})}
    row = BalanceRow(MONTH, True, balance("plant", Amount(1000.0), members, max_loss_percent=3.0))
    assert derived_lines(wire.balance_payload("plant_a", row)) == ("plant_a", [wire.balance_line("plant_a", row)])


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{", "not JSON"),
        (b'{"schema": "ferrogate/1"}', "not a ferrogate-energy/1 object"),
        (json.dumps({"schema": wire.SCHEMA, "type": "heat", "site": "a"}).encode(), "type must be one of"),
        (json.dumps({"schema": wire.SCHEMA, "type": "kpi", "site": "a", "period": 3}).encode(), "period must be"),
        (
            json.dumps(
                {
                    "schema": wire.SCHEMA,
                    "type": "interval",
                    "site": "a",
                    "asset": "x",
                    "intervals": [{"role": "r", "start": "yesterday"}],
                }
            ).encode(),
            "intervals[].start",
        ),
    ],
)
def test_a_payload_off_the_schema_is_refused_with_its_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(DerivedPayloadError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        derived_lines(payload)

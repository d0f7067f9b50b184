"""A derived row leaves the engine twice, as an InfluxDB line and as an MQTT payload: both carry the
same values under the same names (docs/accounting.md §6), a missing value stays missing."""

from __future__ import annotations

import json

from ferrogate.gateway.energy import wire
from ferrogate.gateway.energy.aggregate import Period, PeriodKind
from ferrogate.gateway.energy.allocation import balance
from ferrogate.gateway.energy.books import BalanceRow
from ferrogate.gateway.energy.events import Amount
from ferrogate.gateway.reading import Quality

DAY = Period(PeriodKind.day, 1_795_000_000_000_000_000, 1_795_086_400_000_000_000, "2026-11-19")


def test_balance_line_and_payload_carry_the_same_values() -> None:
    members = {"eaf1": Amount(600.0), "eaf2": Amount(350.0, Quality.UNCERTAIN, {"gap"})}
    row = BalanceRow(DAY, True, balance("plant", Amount(1000.0), members, max_loss_percent=3.0))
    line = wire.balance_line("demo", row)
    doc = json.loads(wire.balance_payload("demo", row))
    assert line.startswith("energy_balance,site=demo,group=plant,period=day ")
    assert line.endswith(f" {DAY.start_ns}")
    for name in ("main_kwh", "members_kwh", "loss_kwh", "loss_percent"):
        assert f"{name}={float(doc[name])!r}" in line, name
    assert (doc["main_kwh"], doc["members_kwh"], doc["loss_kwh"], doc["loss_percent"]) == (1000.0, 950.0, 50.0, 5.0)
    assert doc["status"] == "loss_above_limit" and 'status="loss_above_limit"' in line
    assert doc["quality"] == "uncertain" and doc["flags"] == ["gap"] and 'flags="gap"' in line
    assert doc["period"]["label"] == "2026-11-19" and 'label="2026-11-19"' in line


def test_balance_without_main_energy_leaves_the_percentage_out() -> None:
    row = BalanceRow(DAY, False, balance("plant", Amount(0.0), {"eaf1": Amount(5.0)}, max_loss_percent=3.0))
    doc = json.loads(wire.balance_payload("demo", row))
    assert doc["loss_percent"] is None and doc["status"] == "no_main_energy"
    assert "loss_percent=" not in wire.balance_line("demo", row)

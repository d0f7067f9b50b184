"""The energy books' computed figures (a day's direct CO2) as HJ 212 daily factors: which KPIs make
a record and when (pure), the plant file's checks, and end to end: the books' daily KPI messages on
the real broker -> the uplink role -> a platform (the project's own HJ 212 server)."""

from __future__ import annotations

import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from ferrogate.drivers.hj212.protocol.message import Message
from ferrogate.drivers.hj212.receiver import LoggerAccount
from ferrogate.drivers.hj212.server import Hj212Server
from ferrogate.gateway.config_loader import ConfigError, parse_plant
from ferrogate.gateway.energy import wire
from ferrogate.gateway.energy.aggregate import Period, PeriodKind
from ferrogate.gateway.energy.books import Kpi
from ferrogate.gateway.mqtt import make_client
from ferrogate.gateway.payload import PayloadError
from ferrogate.gateway.reading import Quality
from ferrogate.gateway.runtime import Gateway
from ferrogate.gateway.services import Mosquitto, free_port
from ferrogate.gateway.uplink.figures import MADE_KEY, DayFigures, FigureItem
from tests.conftest import DEMO_PLANT, on_free_ports
from tests.waiting import eventually

ZONE = ZoneInfo("Asia/Shanghai")
DAY_NS = 86_400 * 1_000_000_000
DAY0 = 1_767_542_400_000_000_000  # 2026-01-05 00:00 Beijing (2026-01-04T16:00Z)
CO2 = [FigureItem("a05001", "unit", furnace, "tco2_direct", 1000.0) for furnace in ("eaf1", "saf1")]


def day_kpi(
    subject: str, day: int, tco2: float | None, complete: bool = True, quality: Quality = Quality.GOOD, scope="unit"
) -> dict:
    """A daily KPI as the energy books publish it (wire.kpi_payload); `tco2` as direct (a unit) or total (the plant)."""
    start = DAY0 + day * DAY_NS
    period = Period(PeriodKind.day, start, start + DAY_NS, f"2026-01-{5 + day:02d}")
    field = "tco2_direct" if scope == "unit" else "tco2_total"
    kpi = Kpi(scope, subject, period, complete, {field: tco2, "tonnes_t": 100.0}, quality, [], {})
    return json.loads(wire.kpi_payload("demo", kpi))


def test_a_day_record_once_every_subject_is_complete_in_kg() -> None:
    figures = DayFigures(CO2)
    assert figures.add(day_kpi("eaf1", 0, 1.5, complete=False)) == []  # the day still running
    assert figures.add(day_kpi("eaf1", 0, 2.5)) == []  # saf1's day not in yet
    assert figures.add(day_kpi("other", 0, 9.0)) == []  # not configured
    [record] = figures.add(day_kpi("saf1", 0, 4.25))
    assert (record.cn, record.start_ns) == ("2031", DAY0)
    assert record.factors == {"a05001": {"Cou": "6750.0000", "Flag": "N"}}  # (2.5 + 4.25) t in kg
    assert figures.made_through == {MADE_KEY: DAY0}
    assert figures.add(day_kpi("eaf1", 0, 2.5)) == [] and figures.late == 1  # re-published: sent once


def test_a_missing_or_bad_figure_goes_with_flag_d_and_no_number() -> None:
    figures = DayFigures(CO2)
    assert figures.add(day_kpi("eaf1", 0, 2.0)) == []
    # saf1's day 0 never came complete; its day 1 did: day 0 goes without a sum, never as zero
    [day0] = figures.add(day_kpi("saf1", 1, 3.0))
    assert day0.start_ns == DAY0 and day0.factors == {"a05001": {"Flag": "D"}}
    [day1] = figures.add(day_kpi("eaf1", 1, 1.0, quality=Quality.UNCERTAIN))
    assert day1.start_ns == DAY0 + DAY_NS and day1.factors == {"a05001": {"Flag": "D"}}
    one = DayFigures(CO2[:1])
    [record] = one.add(day_kpi("eaf1", 2, None))  # the books had no figure: no number
    assert record.factors == {"a05001": {"Flag": "D"}}


def test_other_messages_are_refused_or_left_alone() -> None:
    figures = DayFigures(CO2)
    with pytest.raises(PayloadError):
        figures.add({"schema": "ferrogate/1", "type": "kpi"})
    shift = day_kpi("eaf1", 0, 1.0)
    shift["period"]["kind"] = "shift"
    assert figures.add(shift) == []
    broken = day_kpi("eaf1", 0, 1.0)
    broken["period"]["start"] = "yesterday"
    with pytest.raises(PayloadError, match="bad period start"):
        figures.add(broken)


async def true(value: bool) -> bool:
    return value


def uplink_doc(mosquitto: Mosquitto, platform_port: int, spool: Path, subject: str = "eaf1") -> dict:
    doc = on_free_ports(yaml.safe_load(DEMO_PLANT.read_text()))
    doc["mqtt"] = {"port": mosquitto.port, "topic_root": f"figures{platform_port}/ferrogate/v1"}
    doc["uplink"] = {
        "platforms": [
            {
                "id": "bureau",
                "host": "127.0.0.1",
                "port": platform_port,
                "mn": "350100PLANT00001",
                "password_env": "FIGURES_TEST_PLATFORM_PW",
                "timeout_s": 2,
                "retries": 1,
                "retry_max_s": 0.5,
                "spool": {"path": str(spool)},
                "figures": [
                    {"code": "a05001", "scope": "unit", "subject": subject, "field": "tco2_direct"},
                    {"code": "a05002", "scope": "plant", "subject": "demo", "field": "tco2_total", "unit": "t"},
                ],
            }
        ]
    }
    return doc


def test_a_figure_of_a_subject_the_books_do_not_have_names_it(mosquitto: Mosquitto, tmp_path: Path) -> None:
    doc = uplink_doc(mosquitto, 1, tmp_path / "s.sqlite", subject="eaf9")
    with pytest.raises(ConfigError, match=r"uplink\.platforms\[0\]\.figures\[0\]\.subject.*no unit KPI for 'eaf9'"):
        parse_plant(yaml.safe_dump(doc), tmp_path / "plant.yaml")


async def test_the_books_daily_co2_reaches_the_platform_once(
    mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIGURES_TEST_PLATFORM_PW", "bureau-pw")
    port = free_port()
    plant = parse_plant(yaml.safe_dump(uplink_doc(mosquitto, port, tmp_path / "uplink.sqlite")), tmp_path / "p.yaml")
    got: list[Message] = []
    accounts = {"350100PLANT00001": LoggerAccount("350100PLANT00001", "bureau-pw", "plant", ZONE)}
    bureau = Hj212Server(accounts, lambda _, message: got.append(message))
    await bureau.start("127.0.0.1", port)
    gateway = Gateway(plant, ("uplink",), gateway_id="figures-e2e")
    await gateway.start()
    try:
        assert gateway.uplink is not None
        await eventually(lambda: true(gateway.uplink.books_subscribed.is_set()), "the uplink following the books")
        root = plant.mqtt.topic_root
        plant_kpi = day_kpi("demo", 0, 12.5, scope="plant")
        kpis = [day_kpi("eaf1", 0, 3.0, complete=False), day_kpi("eaf1", 0, 3.5), plant_kpi, day_kpi("eaf1", 0, 3.5)]
        async with make_client(plant.mqtt, "figures-e2e-books") as books:
            for doc in kpis:  # as the energy role publishes them
                topic = f"{root}/demo/energy/kpi/day/{doc['scope']}/{doc['subject']}"
                await books.publish(topic, json.dumps(doc), qos=1)
            sender = gateway.uplink.platforms[0].sender

            async def delivered() -> bool:
                return sender.delivered >= 1 and sender.backlog == 0

            await eventually(delivered, "the day's record at the platform")
    finally:
        await gateway.stop()
        await bureau.stop()
    [message] = got
    assert message.cn == "2031" and message.cp.fields["DataTime"] == "20260105000000"
    # eaf1's 3.5 t in kg (the default unit) and the plant's total in t, each once
    assert message.cp.factors == {
        "a05001": {"Cou": "3500.0000", "Flag": "N"},
        "a05002": {"Cou": "12.5000", "Flag": "N"},
    }

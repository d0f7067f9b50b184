"""The live demand alarm: the 15-minute window's demand forecast from the billing meter's readings
against the contracted maximum, raised early enough to act (the current window as soon as its
forecast crosses, the next one `lead_s` before it starts), cleared with hysteresis, silent where
the window start is not known; and through a running gateway's api role over a real broker to
/api/v1/alarms and /api/v1/cost/demand."""

from __future__ import annotations

import asyncio
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml

from ferrogate.api.keys import Role, new_key
from ferrogate.gateway.alarms import AlarmBook, Kind, Severity
from ferrogate.gateway.config_loader import parse_plant
from ferrogate.gateway.cost.config import DemandAlarm
from ferrogate.gateway.cost.demand_watch import DemandWatch
from ferrogate.gateway.energy.counters import CounterSpec
from ferrogate.gateway.energy.model import Meter
from ferrogate.gateway.influx import InfluxV1Client
from ferrogate.gateway.mqtt import MqttPublisher
from ferrogate.gateway.reading import Quality, Reading, ScanBatch
from ferrogate.gateway.runtime import Gateway
from ferrogate.gateway.services import InfluxDB, Mosquitto
from tests.test_cost_logic import at
from tests.waiting import eventually

NS = 1_000_000_000
W0 = at("2026-03-02T10:00")  # a window start on the plant clock (Asia/Shanghai)
LIMIT_KW = 100_000.0
SETTINGS = DemandAlarm(limit_kw=LIMIT_KW, warn_percent=95, clear_percent=90, lead_s=300, min_elapsed_s=60)
COUNTER = Meter("meter", "energy", "kWh", 1.0, CounterSpec())
POWER = Meter("meter", "power", "kW", 1.0, CounterSpec())


def load(
    profile: list[tuple[int, float]],
    until_s: int,
    step_s: int = 10,
    reset_at_s: int | None = None,
    device: str = "meter",
    points: tuple[str, str] = ("energy", "power"),
):
    """Scans of a meter every `step_s` from W0 - 30 s: (seconds after W0 from which, kW) steps of
    load; the counter integrates it (kWh), the power point reads it. Yields (t, batch)."""
    kwh, t_s, seq = 1_000_000.0, -30, 0
    while t_s <= until_s:
        kw = next(k for since, k in reversed(profile) if t_s >= since)
        if reset_at_s is not None and t_s == reset_at_s:
            kwh = 0.0
        t = W0 + t_s * NS
        readings = [Reading(points[0], kwh, "kWh", t, Quality.GOOD), Reading(points[1], kw, "kW", t, Quality.GOOD)]
        yield t, ScanBatch("golden", device, seq, t, readings)
        kwh += kw * step_s / 3600
        t_s, seq = t_s + step_s, seq + 1


def run(
    profile: list[tuple[int, float]],
    until_s: int,
    power: Meter | None = POWER,
    settings: DemandAlarm = SETTINGS,
    reset_at_s: int | None = None,
) -> DemandWatch:
    watch = DemandWatch(AlarmBook(), "incomer", COUNTER, power, settings, ZoneInfo("Asia/Shanghai"), lambda d: LIMIT_KW)
    for t, batch in load(profile, until_s, reset_at_s=reset_at_s):
        watch.on_batch(batch, t)  # the alarm's clock: the reading's time here
    return watch


def alarm(watch: DemandWatch):  # the active demand alarm, if any
    return watch.book.active.get((Kind.demand_forecast_high, "incomer"))


def test_a_load_step_that_breaches_the_window_alarms_at_once_with_time_left() -> None:
    watch = run([(-30, 80_000.0), (300, 130_000.0)], until_s=310)
    raised = alarm(watch)
    assert raised is not None and raised.severity is Severity.critical
    # (80 MW x 300 s + 130 MW x 600 s) / 900 s: the window's average if the load holds
    assert watch.forecast is not None and watch.forecast.forecast_kw == pytest.approx(113_333.33, rel=1e-6)
    assert raised.value == pytest.approx(113_333.33, rel=1e-6)
    assert (W0 + 900 * NS - raised.raised_ns) / NS == 600  # raised by the scan that shows the step
    assert "113,333 kW" in raised.message and "10:00" in raised.message


def test_the_next_window_is_forecast_lead_s_ahead() -> None:
    """A load step 60 s before the window ends cannot breach this window but will breach the next:
    the alarm comes now, a whole window and a minute before the breaching window ends."""
    watch = run([(-30, 80_000.0), (840, 120_000.0)], until_s=850)
    raised = alarm(watch)
    assert raised is not None and raised.severity is Severity.warning
    assert watch.forecast is not None and watch.forecast.forecast_kw < 0.9 * LIMIT_KW
    assert watch.forecast.next_forecast_kw == 120_000.0
    assert (W0 + 1800 * NS - raised.raised_ns) / NS == 960
    no_lead = run([(-30, 80_000.0), (840, 120_000.0)], until_s=950, settings=SETTINGS.model_copy(update={"lead_s": 0}))
    assert alarm(no_lead) is None  # without the look-ahead: nothing until the next window's first minute


def test_hysteresis_and_a_new_window_clear_it() -> None:
    watch = run([(-30, 97_000.0)], until_s=600)  # 97 % of the limit: a warning
    assert alarm(watch) is not None and alarm(watch).severity is Severity.warning  # type: ignore[union-attr]
    watch = run([(-30, 97_000.0), (600, 93_000.0)], until_s=1000)  # 93 %: above clear_percent, kept
    assert alarm(watch) is not None
    watch = run([(-30, 97_000.0), (600, 60_000.0)], until_s=1000)  # the next window at 60 MW: cleared
    assert alarm(watch) is None and watch.book.history[0].kind is Kind.demand_forecast_high


def test_no_forecast_early_in_a_window_nor_after_a_counter_reset() -> None:
    early = run([(-30, 80_000.0), (0, 300_000.0)], until_s=50)  # min_elapsed_s 60
    assert alarm(early) is None and early.forecast is None
    reset = run([(-30, 80_000.0)], until_s=800, reset_at_s=400)  # a meter replaced mid-window
    assert alarm(reset) is None and reset.forecast is not None and reset.forecast.at_ns < W0 + 400 * NS


def test_without_a_power_point_the_counter_gives_the_power() -> None:
    watch = run([(-30, 80_000.0), (300, 130_000.0)], until_s=320, power=None)
    assert watch.forecast is not None and watch.forecast.power_kw == pytest.approx(130_000.0)
    assert alarm(watch) is not None


PLANT = Path(__file__).parent / "testcases" / "cost" / "month_demand_charge" / "plant.yaml"


async def test_the_api_role_raises_it_from_the_live_stream(
    mosquitto: Mosquitto, influxdb: InfluxDB, fresh_database: str
) -> None:
    doc = yaml.safe_load(PLANT.read_text())
    doc["devices"][0]["points"].append({"id": "power", "address": 6, "type": "float32", "unit": "kW"})
    doc["assets"][0]["meters"]["active_power"] = "meters.power"
    doc["cost"]["demand_alarm"] = {"warn_percent": 95, "lead_s": 300, "min_elapsed_s": 60}  # limit: contracted_kw
    doc["mqtt"] = {"port": mosquitto.port, "topic_root": f"{fresh_database}/ferrogate/v1", "wait_for_ingest": False}
    doc["influxdb"] = {"url": influxdb.url, "database": fresh_database}
    plant = parse_plant(yaml.safe_dump(doc, allow_unicode=True), PLANT)
    key, stored = new_key("alarm-test", Role.viewer)
    # api_port 0: bound at start and read back (no port chosen beforehand that another process could take)
    gateway = Gateway(plant, roles=("api",), api_port=0, gateway_id=fresh_database, api_keys=[stored])
    database = InfluxV1Client(plant.influxdb)  # type: ignore[arg-type]
    await database.ensure_database()  # the api role reads, it does not create it
    await database.aclose()
    publisher = MqttPublisher(plant.mqtt, "golden", f"{fresh_database}-meter")  # type: ignore[arg-type]
    sending = asyncio.create_task(publisher.run())
    await gateway.start()
    try:
        assert gateway.api_port != 0
        await asyncio.wait_for(gateway.live_subscribed.wait(), timeout=20)
        # 90 MW, then 120 MW from 10:05 against the contracted 90,000 kW: critical
        for _, batch in load([(-30, 90_000.0), (300, 120_000.0)], 400, device="meters", points=("incomer", "power")):
            publisher.submit(batch)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{gateway.api_port}", headers={"X-API-Key": key}, timeout=30
        ) as http:

            async def alarmed() -> bool:
                items = (await http.get("/api/v1/alarms", params={"state": "active"})).json()["items"]
                return any(a["kind"] == "demand_forecast_high" and a["severity"] == "critical" for a in items)

            await eventually(alarmed, "the demand alarm in /api/v1/alarms")
            items = (await http.get("/api/v1/alarms", params={"state": "active"})).json()["items"]
            demand_alarm = next(a for a in items if a["kind"] == "demand_forecast_high")
            assert demand_alarm["source"] == "incomer" and demand_alarm["unit"] == "kW"
            live = (await http.get("/api/v1/cost/demand", params={"month": "2026-03"})).json()["live"]
        assert live["meter"] == "incomer" and live["limit_kw"] == 90_000.0
        assert live["window_start"] == "2026-03-02T02:00:00.000Z" and live["forecast_kw"] > 90_000.0
    finally:
        sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)
        publisher.close()
        await gateway.stop()

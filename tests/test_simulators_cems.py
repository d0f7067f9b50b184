"""The simulated stack and its CEMS data logger: statistics exact over the one-second samples,
flag windows, and everything delivered to a real HJ 212 server over TCP through bad CRCs, split
packets, silence and a dropped connection, with the ledger recording what was sent."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from ferrogate.drivers.hj212.protocol.message import Message
from ferrogate.drivers.hj212.receiver import LoggerAccount
from ferrogate.drivers.hj212.server import Hj212Server
from ferrogate.gateway.timeutil import iso_utc
from ferrogate.simulators.cems_logger import CemsLogger
from ferrogate.simulators.clock import ManualClock
from ferrogate.simulators.config import CemsLoggerSim, LoggerFault, Simulation
from ferrogate.simulators.engine import Engine
from ferrogate.simulators.equipment import build_models
from ferrogate.simulators.stack import StackModel
from tests.simulator_plants import T0
from tests.waiting import eventually

ZONE = ZoneInfo("Asia/Shanghai")
MN = "CEMS0000000001"
SIMULATION = Simulation.model_validate(
    {
        "seed": 7,
        "equipment": [
            {"id": "eaf1", "kind": "eaf", "rated_kw": 80000, "nominal_t": 100},
            {"id": "eaf1_stack", "kind": "stack", "furnace": "eaf1", "flow_m3_s": {"idle": 100, "full_load": 280}},
        ],
    }
)


class Rig:
    """An EAF and its stack on a ManualClock, a logger sampling it, and the ledger."""

    def __init__(self, config: dict[str, Any], port: int = 1) -> None:
        self.clock = ManualClock(T0)
        models = build_models(SIMULATION, T0)
        self.stack = models["eaf1_stack"]
        assert isinstance(self.stack, StackModel)
        self.ledger: list[dict[str, Any]] = []
        self.seconds: list[tuple[int, float, float]] = []  # (t, so2 mg/m3, flow m3/s) as sampled
        self.stack.listeners.append(lambda t, s: self.seconds.append((t, s.so2_mg_m3, s.flow_m3_s)))
        self.logger = CemsLogger(
            CemsLoggerSim.model_validate({"device": "eaf1_cems", "stack": "eaf1_stack", **config}),
            self.stack,
            mn=MN,
            password="123456",
            host="127.0.0.1",
            port=port,
            zone=ZONE,
            clock=self.clock.now,
            sim_start=T0,
            record=self.ledger.extend,
        )
        self.engine = Engine(models, T0)  # after the logger, so it samples the first second too

    def run_to(self, t: int) -> None:
        self.engine.run_to(t)
        self.clock.set(t)


def cp_items(upload) -> dict[str, str]:
    return dict(item.split("=", 1) for item in upload.segment.cp.replace(",", ";").split(";"))


def test_hourly_emission_equals_the_sum_over_its_seconds() -> None:
    rig = Rig({"realtime_interval_s": 30})
    rig.run_to(T0 + 3600 + 1)
    by_cn: dict[str, list] = {}
    for upload in rig.logger.outbox:
        by_cn.setdefault(upload.segment.cn, []).append(upload)
    assert (len(by_cn["2011"]), len(by_cn["2051"]), len(by_cn["2061"])) == (121, 60, 1)
    [hour] = by_cn["2061"]
    items = cp_items(hour)
    hour_seconds = [(so2, flow) for t, so2, flow in rig.seconds if T0 <= t < T0 + 3600]
    assert len(hour_seconds) == 3600
    kg = sum(so2 * flow for so2, flow in hour_seconds) * 1e-6
    assert float(items["a21026-Cou"]) == round(kg, 4)
    assert float(items["a00000-Cou"]) == round(sum(flow for _, flow in hour_seconds), 4)
    assert float(items["a21026-Avg"]) == round(sum(so2 for so2, _ in hour_seconds) / 3600, 4)
    assert items["a21026-Flag"] == "N" and items["DataTime"] == "20270115160000"  # T0 is 08:00Z
    # minute data add up to the hour
    minutes = sum(float(cp_items(u)["a21026-Cou"]) for u in by_cn["2051"])
    assert abs(minutes - kg) < 60 * 0.00005 + 1e-9
    # flow and CO2 follow the furnace: real-time values while charging (no power) below those of melting
    assert min(s[2] for s in rig.seconds) >= 100 and max(s[2] for s in rig.seconds) <= 280 * 1.1


def test_flag_windows_mark_seconds_and_periods() -> None:
    window = {"flag": "C", "at": 600, "duration": 1200, "factors": ["a21026"]}  # 10:00-30:00 calibrating SO2
    rig = Rig({"windows": [window, {"flag": "M", "at": 3000, "duration": 60}]})
    rig.run_to(T0 + 3600 + 1)
    minutes = {u.data_time: cp_items(u) for u in rig.logger.outbox if u.segment.cn == "2051"}
    calibrating = minutes[T0 + 900]
    assert calibrating["a21026-Flag"] == "C" and "a21026-Avg" not in calibrating
    assert calibrating["a21002-Flag"] == "N" and "a21002-Avg" in calibrating
    assert all(v == "M" for k, v in minutes[T0 + 3000].items() if k.endswith("-Flag"))
    assert minutes[T0 + 3060]["a21026-Flag"] == "N"
    [hour] = [cp_items(u) for u in rig.logger.outbox if u.segment.cn == "2061"]
    # SO2 valid 40 of 60 minutes (< 75 %): the hour is flagged C, its average from the valid seconds
    assert hour["a21026-Flag"] == "C" and "a21026-Avg" in hour
    assert hour["a21002-Flag"] == "N"  # NOx lost one minute to maintenance: 59/60 valid


async def test_everything_delivered_through_faults_and_recorded() -> None:
    received: list[Message] = []
    server = Hj212Server(
        {MN: LoggerAccount(MN, "123456", "eaf1_cems", ZONE)}, lambda account, message: received.append(message)
    )
    await server.start("127.0.0.1", 0)
    rig = Rig(
        {
            "realtime_interval_s": 60,
            "reply_timeout_s": 0.3,
            "faults": [
                {"fault": "bad_crc", "at": 120, "duration": 180},  # messages about minutes 2-4
                {"fault": "split", "at": 600, "duration": 300, "packets": 3},  # minutes 10-14
            ],
        },
        port=server.port,
    )
    try:
        rig.run_to(T0 + 3600 + 1)
        expected = [(u.segment.qn, u.segment.cn, u.segment.cp) for u in rig.logger.outbox]
        assert len(expected) == 61 + 60 + 1
        # a dropped link and a silence while the logger works through its backlog
        now = rig.clock.now() - T0
        rig.logger.inject(LoggerFault(fault="silence", at=now, duration=10))
        await rig.logger.start()
        await eventually(lambda: _async(any(r.get("fault") == "silence" for r in rig.ledger)), "silence noted")
        assert rig.logger.sent == 0  # held while silent
        rig.run_to(T0 + 3600 + 20)  # the silence is over
        rig.logger.inject(LoggerFault(fault="reconnect", at=rig.clock.now() - T0, duration=5))
        await eventually(lambda: _async(rig.logger.reconnects == 1), "the link dropped")
        rig.run_to(T0 + 3600 + 30)
        await eventually(lambda: _async(not rig.logger.outbox), "every message acknowledged", within_s=120)
    finally:
        await rig.logger.stop()
        await server.stop()
    got = [(m.segment.qn, m.cn, m.segment.cp) for m in received]
    more = len(got) - len(expected)  # messages about the seconds simulated while the test ran
    assert got[: len(expected)] == expected and more >= 0  # in order, each once, the split ones joined
    assert all(m.complete for m in received)
    split = [cp for _, _, cp in expected if _data_time_in(cp, "20270115161000", "20270115161500")]
    assert sum(m.packets == 3 for m in received[: len(expected)]) == len(split) > 0
    bad_crc = sum(1 for _, _, cp in expected if _data_time_in(cp, "20270115160200", "20270115160500"))
    assert server.stats.errors["bad_crc"] == bad_crc > 0
    assert server.stats.connections_total == 2
    uploads = [r for r in rig.ledger if r["kind"] == "hj212_upload"]
    assert [(r["qn"], r["cn"]) for r in uploads] == [(qn, cn) for qn, cn, _ in got]
    faults = sorted(r["fault"] for r in rig.ledger if r["kind"] == "hj212_fault")
    assert faults == ["bad_crc", "reconnect", "silence", "split"]
    hour = next(r for r in uploads if r["cn"] == "2061")
    assert hour["data_time"] == iso_utc(T0 * 1_000_000_000) and hour["values"]["a21026-Flag"] == "N"


async def _async(value: bool) -> bool:
    return value


def _data_time_in(cp: str, start: str, end: str) -> bool:
    data_time = cp.split(";", 1)[0].removeprefix("DataTime=")
    return start <= data_time < end


def test_noise_is_deterministic_for_a_seed() -> None:
    a, b = Rig({}), Rig({})
    a.run_to(T0 + 600)
    b.run_to(T0 + 600)
    assert a.seconds == b.seconds
    assert len({round(so2, 6) for _, so2, _ in a.seconds}) > 100  # it does wander

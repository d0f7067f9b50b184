"""The uplink role end to end with the real broker: a simulated CEMS logger -> the gateway's HJ 212
listener -> MQTT -> the uplink role -> a platform (the project's own HJ 212 server), which goes away
for a while and comes back: every record the uplink made arrives exactly once, in order, and the
minutes run without a gap."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from ferrogate.drivers.hj212.protocol.message import Message
from ferrogate.drivers.hj212.receiver import LoggerAccount
from ferrogate.drivers.hj212.server import Hj212Server
from ferrogate.gateway.config_loader import parse_plant
from ferrogate.gateway.runtime import Gateway
from ferrogate.gateway.services import Mosquitto, free_port
from ferrogate.simulators.plant import SimulatedPlant
from tests.waiting import eventually

PLATFORM_MN = "350100PLANT00001"


def plant_doc(mosquitto: Mosquitto, listen: int, platform: int, spool: Path) -> dict[str, Any]:
    return {
        "site": {"id": "uplinked", "name": "uplink test plant"},
        "mqtt": {"port": mosquitto.port, "topic_root": f"uplink{listen}/ferrogate/v1", "wait_for_ingest": False},
        "devices": [
            {
                "id": "eaf1_cems",
                "protocol": "hj212",
                "mn": "350100EAF10001",
                "password_env": "UPLINK_TEST_CEMS_PW",
                "listen_host": "127.0.0.1",
                "listen_port": listen,
                "points": [
                    {"id": "so2", "code": "a21026-Rtd", "unit": "mg/m3"},
                    {"id": "flow", "code": "a00000-Rtd", "unit": "m3/s"},
                    {"id": "so2_hour_kg", "code": "a21026-Cou", "data": "hour", "unit": "kg"},
                ],
            }
        ],
        "uplink": {
            "platforms": [
                {
                    "id": "bureau",
                    "host": "127.0.0.1",
                    "port": platform,
                    "mn": PLATFORM_MN,
                    "password_env": "UPLINK_TEST_PLATFORM_PW",
                    "timeout_s": 2,
                    "retries": 1,
                    "retry_max_s": 0.5,
                    "close_after_s": 60,
                    "spool": {"path": str(spool)},
                    "points": [
                        {"code": "a21026", "point": "eaf1_cems.so2", "data": ["minute", "hour"]},
                        {"code": "a00000", "point": "eaf1_cems.flow", "data": ["minute"]},
                        {
                            "code": "a21026",
                            "point": "eaf1_cems.so2_hour_kg",
                            "data": ["hour"],
                            "method": "forward",
                            "suffix": "Cou",
                        },
                    ],
                }
            ]
        },
        "simulation": {
            "equipment": [
                {"id": "eaf1", "kind": "eaf", "rated_kw": 80000, "nominal_t": 100},
                {"id": "eaf1_stack", "kind": "stack", "furnace": "eaf1", "flow_m3_s": {"idle": 110, "full_load": 280}},
            ],
            "loggers": [{"device": "eaf1_cems", "stack": "eaf1_stack", "realtime_interval_s": 10}],
        },
    }


class Bureau:
    """The environmental platform: what arrived, in order."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.accounts = {PLATFORM_MN: LoggerAccount(PLATFORM_MN, "bureau-pw", "plant", ZoneInfo("Asia/Shanghai"))}
        self.server = Hj212Server(self.accounts, lambda _, message: self.messages.append(message))

    async def reopen(self, port: int) -> None:
        self.server = Hj212Server(self.accounts, lambda _, message: self.messages.append(message))
        await self.server.start("127.0.0.1", port)


async def true(value: bool) -> bool:
    return value


async def test_every_record_arrives_exactly_once_across_a_platform_outage(
    mosquitto: Mosquitto, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("UPLINK_TEST_CEMS_PW", "123456")
    monkeypatch.setenv("UPLINK_TEST_PLATFORM_PW", "bureau-pw")
    bureau_port = free_port()
    doc = plant_doc(mosquitto, free_port(), bureau_port, tmp_path / "uplink.sqlite")
    plant = parse_plant(yaml.safe_dump(doc), tmp_path / "plant.yaml")
    bureau = Bureau()
    await bureau.server.start("127.0.0.1", bureau_port)
    sim = SimulatedPlant(plant, plant.simulation, speed=600, history_s=3 * 3600)
    gateway = Gateway(plant, ("collect", "uplink"), gateway_id="uplink-e2e")
    await gateway.start()
    await sim.start()
    try:
        assert gateway.uplink is not None
        sender = gateway.uplink.platforms[0].sender
        await eventually(lambda: true(len(bureau.messages) >= 20), "the first records at the bureau")
        await bureau.server.stop()  # the platform goes away
        failures = sender.connection_failures
        await eventually(lambda: true(sender.connection_failures >= failures + 2), "the uplink failing to reach it")
        # a record in flight when the platform went away may still have been acknowledged, so the count
        # is taken once the uplink has failed to reconnect: from then on nothing may count as delivered
        delivered = sender.delivered
        assert len(bureau.messages) == delivered
        await eventually(lambda: true(sender.backlog >= 10), "records waiting in the spool")
        assert sender.delivered == delivered and len(bureau.messages) == delivered
        await bureau.reopen(bureau_port)  # back
        await eventually(lambda: true(sender.backlog == 0 and sender.delivered > delivered + 10), "the backlog sent")
        # the first hour began before the logger did; the second carries the logger's own hourly kg
        await eventually(lambda: true(sum(m.cn == "2061" for m in bureau.messages) >= 2), "two hourly records")
        for logger in sim.loggers.values():
            await logger.pause()
        # every batch published reaches the uplink before the count is taken: records it makes from
        # batches still in flight would otherwise arrive after it
        published = await gateway.stop_collecting()
        await eventually(lambda: true(gateway.uplink.batches >= published), "the uplink to take every batch")
        await eventually(lambda: true(sender.backlog == 0), "the last records sent")
        made = sender.spool.appended
    finally:
        await sim.stop()
        await gateway.stop()
        await bureau.server.stop()
    got = [(m.cn, m.cp.fields["DataTime"]) for m in bureau.messages]
    assert len(got) == len(set(got)) == made == sender.delivered  # each record once
    assert [m.segment.qn for m in bureau.messages] == sorted(m.segment.qn for m in bureau.messages)  # in order
    minutes = [t for cn, t in got if cn == "2051"]
    assert minutes == sorted(minutes) and len(minutes) > 30
    stamps = [int(t[-6:-4]) * 60 + int(t[-4:-2]) for t in minutes]  # hhmm of each minute record
    steps = {(b - a) % (24 * 60) for a, b in itertools.pairwise(stamps)}
    assert steps == {1}, "one minute record for every minute, none lost across the outage"
    # an hour: SO2 Min/Avg/Max from the real-time readings and the logger's own hourly kg as Cou
    hours = [m.cp.factors["a21026"] for m in bureau.messages if m.cn == "2061"]
    assert hours and any(set(h) == {"Min", "Avg", "Max", "Cou", "Flag"} for h in hours)
    assert all(list(h)[-1] == "Flag" for h in hours)
    assert all(m.segment.mn == PLATFORM_MN and m.segment.st == "31" for m in bureau.messages)

"""Test harness: a real Mosquitto and a real InfluxDB (Debian's packages) as child processes on
free loopback ports with throw-away directories. If either cannot start, the fixture raises
with the reason and the tests that need it fail: no silent skips, no mocks."""

from __future__ import annotations

import gc
import itertools
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml

from ferrogate.gateway.config import InfluxConfig, MqttConfig
from ferrogate.gateway.config_loader import parse_plant
from ferrogate.gateway.demo import Demo
from ferrogate.gateway.plant_file import PlantFile
from ferrogate.gateway.services import InfluxDB, Mosquitto, free_port, start_influxdb, start_mosquitto

ROOT = Path(__file__).resolve().parent.parent
DEMO_PLANT = ROOT / "deploy" / "plants" / "demo.yaml"
_db_names = itertools.count(1)


class NeverRetrieved(logging.Handler):
    """asyncio's "Future/Task exception was never retrieved": logged when such a future is collected,
    often long after the test that left it (where pytest's log capture hides it) or at exit. Any in
    the whole run fails the run, with the lines."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "exception was never retrieved" in record.getMessage():
            self.lines.append(self.format(record))


_never_retrieved = NeverRetrieved()


def pytest_configure(config: pytest.Config) -> None:
    logging.getLogger("asyncio").addHandler(_never_retrieved)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    gc.collect()  # what the closed event loops and finished tests left behind, collected now and not at exit
    if _never_retrieved.lines:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.ensure_newline()
            for line in ["asyncio exceptions never retrieved during the run (a failure):", *_never_retrieved.lines]:
                reporter.write_line(line, red=True)


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    broker = start_mosquitto(tmp_path_factory.mktemp("mosquitto"))
    yield broker
    broker.process.stop()


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB]:
    db = start_influxdb(tmp_path_factory.mktemp("influxdb"))
    yield db
    db.process.stop()


def on_free_ports(doc: dict[str, Any]) -> dict[str, Any]:
    """A plant document with every (simulated) device moved to a free loopback port (HJ 212 loggers
    that share a listen port keep sharing one)."""
    listen_ports: dict[int, int] = {}
    for device in doc["devices"]:
        if device["protocol"] == "modbus":
            device["host"], device["port"] = "127.0.0.1", free_port()
        elif device["protocol"] == "hj212":
            old = device.get("listen_port", 9212)
            device["listen_host"], device["listen_port"] = "127.0.0.1", listen_ports.setdefault(old, free_port())
        else:
            path = device["endpoint"].split("/", 3)[3]
            device["endpoint"] = f"opc.tcp://127.0.0.1:{free_port()}/{path}"
    return doc


def plant_on_free_ports(source: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str) -> PlantFile:
    """A plant file's content with every simulated device moved to a free loopback port and the
    broker and database pointed at the test services."""
    doc = on_free_ports(yaml.safe_load(source.read_text()))
    plant = parse_plant(yaml.safe_dump(doc, allow_unicode=True), source)
    return plant.model_copy(
        update={
            # a topic root per database: persistent ingest sessions of an earlier test's gateway stay
            # members of the broker's shared subscription and would take a share of this test's batches
            "mqtt": MqttConfig(port=mosquitto.port, topic_root=f"{database}/ferrogate/v1"),
            "influxdb": InfluxConfig(url=influxdb.url, database=database, flush_interval_s=0.2),
        }
    )


@pytest.fixture
def fresh_database() -> str:
    return f"test_{next(_db_names)}"


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def accounted_demo(influxdb: InfluxDB, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Demo]:
    """The demo plant run fast with the accounting engine; InfluxDB keeps its readings and books.
    It has a broker of its own: it lives for the whole session, and its ingest and energy workers
    must not share the session broker's subscriptions with other tests' demos of the same site."""
    from tests.accounted_run import start_accounted_run

    directory = tmp_path_factory.mktemp("accounted")
    broker = start_mosquitto(directory / "mosquitto")
    demo = await start_accounted_run(broker, influxdb, directory, "accounted")
    yield demo
    await demo.stop()
    broker.process.stop()

"""Store-and-forward under the shipped broker ACL (deploy/mosquitto/acl): a collector that may only
publish its topics and the ingest probe, an ingest worker that may only read telemetry, device
status and the probe; the data and the device status still reach InfluxDB."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from ferrogate.gateway.config import InfluxConfig, MqttConfig
from ferrogate.gateway.influx import InfluxV1Client
from ferrogate.gateway.ingest import IngestWorker
from ferrogate.gateway.mqtt import MqttPublisher
from ferrogate.gateway.services import InfluxDB, Mosquitto, start_mosquitto
from tests.conftest import ROOT
from tests.test_ingest_messages import batch
from tests.waiting import eventually

PASSWORDS = {"collector": "c-pw", "ingest": "i-pw"}


def broker_with_shipped_acl(directory: Path) -> Mosquitto:
    etc = directory / "etc"
    etc.mkdir(mode=0o755)
    directory.chmod(0o755)
    (etc / "acl").write_text((ROOT / "deploy/mosquitto/acl").read_text())
    passwd = etc / "passwd"
    for user, password in PASSWORDS.items():
        create = ["-c"] if not passwd.exists() else []
        subprocess.run(["mosquitto_passwd", "-b", *create, str(passwd), user, password], check=True)
    passwd.chmod(0o644)
    config = f"per_listener_settings false\npassword_file {passwd}\nacl_file {etc / 'acl'}\n"
    return start_mosquitto(directory / "run", extra_config=config, anonymous=False)


async def test_collector_and_ingest_work_within_the_shipped_acl(
    tmp_path: Path, influxdb: InfluxDB, fresh_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = await asyncio.to_thread(broker_with_shipped_acl, tmp_path)
    for user, password in PASSWORDS.items():
        monkeypatch.setenv(f"SF_ACL_{user.upper()}", password)
    collector_mqtt = MqttConfig(port=broker.port, username="collector", password_env="SF_ACL_COLLECTOR")
    ingest_mqtt = MqttConfig(port=broker.port, username="ingest", password_env="SF_ACL_INGEST")
    influx = InfluxConfig(url=influxdb.url, database=fresh_database, flush_interval_s=0.1)
    client = InfluxV1Client(influx)
    await client.ensure_database()

    publisher = MqttPublisher(collector_mqtt, "acl", "acl-test")
    publishing = asyncio.create_task(publisher.run())
    worker = IngestWorker(ingest_mqtt, influx, "acl", "acl-test")
    ingesting = None
    try:
        publisher.set_device_status("m1", True)
        publisher.submit(batch("acl", "m1", 1))
        # no ingest worker yet: the broker says so to the collector's probe, and the collector holds
        # its spool instead of publishing into the void

        async def refused() -> bool:
            return publisher.ingest_absent >= 2

        await eventually(refused, "the collector to find no ingest worker")
        assert publisher.published == publisher.status_published == 0 and publisher.backlog == 2

        ingesting = asyncio.create_task(worker.run())
        await asyncio.wait_for(publisher.drain(), 30)

        async def stored() -> bool:
            readings = await client.query("SELECT count(quality) FROM reading WHERE site='acl'")
            status = await client.query("SELECT online FROM device_status WHERE site='acl'")
            return bool(readings and status) and readings[0].values[0][1] == 2

        await eventually(stored, "the batch and the device status in InfluxDB")
        assert (worker.messages, worker.status_messages, worker.rejected) == (1, 1, 0)
    finally:
        for task in (publishing, ingesting):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        publisher.close()
        await worker.aclose()
        await client.aclose()
        await asyncio.to_thread(broker.process.stop)

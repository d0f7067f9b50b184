"""The v2 write dialect (influxdb-client, `/api/v2/write`, org/bucket/token) against a real server
that speaks it: VictoriaMetrics from Debian (InfluxDB 2.x is not packaged there).

What this proves: the line protocol, the endpoint and its org/bucket/precision parameters are
accepted, values and timestamps arrive (VictoriaMetrics keeps milliseconds, so timestamps are
compared at ms), an unreachable server counts as an outage (spooled, replayed), and a batch
delivered twice is stored once (VictoriaMetrics run with 1 ms deduplication). What it cannot prove:
VictoriaMetrics ignores the token and org/bucket, does not store string fields (quality) and
answers 204 even for lines it drops; those parts are InfluxDB 2.x/3.x behaviour we have not run.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from ferrogate.gateway.config import InfluxConfig, MqttConfig
from ferrogate.gateway.influx import ErrorKind, InfluxError
from ferrogate.gateway.influx_v2 import InfluxV2Client
from ferrogate.gateway.lineprotocol import batch_lines
from ferrogate.gateway.runtime import Gateway
from ferrogate.gateway.services import LOOPBACK, ManagedProcess, Mosquitto, free_port, require_binary
from tests.meters import plant_config, plant_doc, served, start_meters, stop_meters
from tests.test_ingest_messages import T0, batch
from tests.waiting import eventually

TOKEN_VARIABLE = "FERROGATE_TEST_V2_TOKEN"


class VictoriaMetrics:
    def __init__(self, directory: Path) -> None:
        binary = require_binary("victoria-metrics", "victoria-metrics")
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        argv = [
            binary,
            f"-storageDataPath={directory / 'data'}",
            f"-httpListenAddr={LOOPBACK}:{self.port}",
            "-retentionPeriod=100y",
            "-dedup.minScrapeInterval=1ms",  # one sample per series and millisecond: redelivery overwrites
            "-loggerLevel=ERROR",
        ]
        directory.mkdir(parents=True, exist_ok=True)
        self.process = ManagedProcess("victoria-metrics", argv, directory / "vm.log", self._healthy)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=0.5) as resp:
                return resp.status == 200
        except OSError:
            return False

    async def export(self, metric: str) -> dict[tuple[str, str, int], float]:
        """(device, point, time in ms) -> value of every sample of `metric` (e.g. reading_value)."""
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
            await http.get("/internal/force_flush")
            resp = await http.post("/api/v1/export", data={"match[]": f'{{__name__="{metric}"}}'})
        out = {}
        for line in resp.text.splitlines():
            doc = json.loads(line)
            labels = doc["metric"]
            for value, ts in zip(doc["values"], doc["timestamps"], strict=True):
                out[(labels["device"], labels["point"], ts)] = value
        return out


@pytest_asyncio.fixture
async def victoria(tmp_path: Path) -> AsyncIterator[VictoriaMetrics]:
    vm = VictoriaMetrics(tmp_path / "victoria-metrics")
    await asyncio.to_thread(vm.process.start)
    yield vm
    await asyncio.to_thread(vm.process.stop)


def v2_config(url: str, **extra: object) -> InfluxConfig:
    return InfluxConfig.model_validate(
        {"url": url, "dialect": "v2", "org": "ferrogate", "bucket": "plant", "token_env": TOKEN_VARIABLE, **extra}
    )


async def test_v2_client_writes_line_protocol(victoria: VictoriaMetrics, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_VARIABLE, "a-token")
    client = InfluxV2Client(v2_config(victoria.url))
    try:
        lines = batch_lines(batch("v2", "m1", 1)) + batch_lines(batch("v2", "m1", 2))
        await client.write(lines)
        await client.write(lines)  # a redelivery

        async def arrived() -> bool:
            return len(await victoria.export("reading_value")) == 2

        await eventually(arrived, "the two good readings in VictoriaMetrics")
        assert await victoria.export("reading_value") == {
            ("m1", "energy", (T0 + 1_000_000_123) // 1_000_000): 101.0,
            ("m1", "energy", (T0 + 2_000_000_123) // 1_000_000): 102.0,
        }
    finally:
        await client.aclose()


async def test_v2_client_reports_an_unreachable_server_as_an_outage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_VARIABLE, "a-token")
    client = InfluxV2Client(v2_config(f"http://{LOOPBACK}:{free_port()}", timeout_s=2))
    try:
        with pytest.raises(InfluxError) as info:
            await client.write(['reading,site=v2 value=1.0,quality="good" 1'])
    finally:
        await client.aclose()
    assert info.value.retryable and info.value.kind is ErrorKind.UNAVAILABLE


async def test_ingest_through_v2_loses_nothing_across_an_outage(
    tmp_path: Path, mosquitto: Mosquitto, victoria: VictoriaMetrics, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_VARIABLE, "a-token")
    meters = await start_meters(1)
    influx = {
        "url": victoria.url,
        "dialect": "v2",
        "org": "ferrogate",
        "bucket": "plant",
        "token_env": TOKEN_VARIABLE,
        "flush_interval_s": 0.2,
        "max_retries": 1,
        "retry_initial_s": 0.2,
        "retry_max_s": 1.0,
        "spool": {"path": str(tmp_path / "spool.sqlite")},
    }
    plant = plant_config(plant_doc("v2_e2e", meters, {"port": mosquitto.port}, influx), tmp_path / "plant.yaml")
    assert isinstance(plant.mqtt, MqttConfig)
    gateway = Gateway(plant, roles=("collect", "ingest"), gateway_id="v2")
    await gateway.start()
    assert gateway.ingest is not None
    writer = gateway.ingest.writer
    try:

        async def flowing() -> bool:
            return len(await victoria.export("reading_value")) >= 15

        await eventually(flowing, "readings flowing into VictoriaMetrics")
        await asyncio.to_thread(victoria.process.stop)

        async def spooling() -> bool:
            return writer.database_down and writer.spool.rows >= 3

        await eventually(spooling, "batches spooled while VictoriaMetrics is down")
        await asyncio.to_thread(victoria.process.start)
        for meter in meters:
            meter.pause()
        expected = {(d, p, t // 1_000_000): v for (d, p, t), v in served(meters).items()}

        async def complete() -> bool:
            return len(await victoria.export("reading_value")) >= len(expected) and writer.spool.rows == 0

        await eventually(complete, f"all {len(expected)} served readings in VictoriaMetrics")
        assert await victoria.export("reading_value") == expected
        print(
            f"[v2 outage] readings served: {len(expected)}, batches spooled: {writer.spooled_batches}, "
            f"replayed: {writer.replayed_batches}"
        )
    finally:
        await gateway.stop()
        await stop_meters(meters)


def test_the_v2_token_comes_from_a_file_or_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token_file = tmp_path / "influx.token"
    token_file.write_text("file-token\n")
    assert v2_config("http://influx:8086", token_env=None, token_file=str(token_file)).resolve_token() == "file-token"
    monkeypatch.setenv(TOKEN_VARIABLE, "env-token")
    assert v2_config("http://influx:8086").resolve_token() == "env-token"
    monkeypatch.delenv(TOKEN_VARIABLE)
    with pytest.raises(LookupError, match=TOKEN_VARIABLE):
        v2_config("http://influx:8086").resolve_token()

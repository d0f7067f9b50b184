"""The group energy center end to end: three plants (sites of their own, each with its own Mosquitto,
collector, local ingest, books and API on counting meters) bridged to a central Mosquitto through
the shipped bridge configuration (deploy/group/plant-bridge.conf), two central ingest workers on the
shared subscription, one central database, and the group API.

One plant's WAN is cut in the middle (a TCP proxy between its broker and the center's, stopped and
restarted). Afterwards every reading of every plant is in the central database exactly as in the
plant's own (per device, point and timestamp, quality and value), and the group API's monthly
figures and limit status (GB 21341 grades) of each plant equal the plant's own API. The plants' local
databases are databases of their own on the session's InfluxDB server; the center's is another one."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import yaml

from ferrogate.api.keys import Role, new_key
from ferrogate.api.routes_energy import CARBON_FIELDS, INTENSITY_FIELDS, PLANT_ENERGY_FIELDS
from ferrogate.gateway.center_config import CenterFile
from ferrogate.gateway.center_runtime import Center
from ferrogate.gateway.compliance_service import ComplianceWatch
from ferrogate.gateway.config import InfluxConfig
from ferrogate.gateway.config_loader import load_config
from ferrogate.gateway.influx import InfluxV1Client
from ferrogate.gateway.runtime import Gateway
from ferrogate.gateway.services import LOOPBACK, InfluxDB, Mosquitto, start_mosquitto
from ferrogate.gateway.timeutil import iso_utc
from tests.conftest import ROOT
from tests.meters import (
    START_MS,
    CountingMeter,
    differences,
    plant_config,
    plant_doc,
    served,
    start_meters,
    stop_meters,
)
from tests.tcp_proxy import TcpProxy
from tests.test_group_limits import limit_status
from tests.waiting import eventually

GROUP = ROOT / "deploy" / "group"
SITES = ("plant_a", "plant_b", "plant_c")
CUT = "plant_b"  # the plant whose WAN is cut
PASSWORD_ENV = "FERROGATE_TEST_CENTER_INGEST_PW"
SCAN_S = 0.2
# each read advances the meters' clocks by 30 s, so a few seconds of scans cover 15-minute buckets
# of the books and months have energy, tonnes and carbon
METER_STEP_MS = 30_000
# the books make a bucket only once a reading at or past its end has come: before the plants stop,
# every meter must have served this many whole buckets of its clock (counted in reads, not seconds:
# on a quiet box the phases below take fewer reads than one bucket holds). Two, not one: a read the
# meter served after the collector's timeout is no reading, so the last one served may be missing
WHOLE_BUCKETS = 2
KEY, STORED = new_key("group-test", Role.viewer)
LIMITED_KEY, LIMITED = new_key("plant-a-only", Role.viewer, sites=("plant_a",))
# every figure of a month the plant's API shows (completeness is the plant's own reading of its intervals)
MONTH_FIELDS = (
    "label",
    "start",
    "complete",
    "quality",
    "flags",
    *INTENSITY_FIELDS,
    *PLANT_ENERGY_FIELDS,
    *CARBON_FIELDS,
)
Rows = dict[tuple[str, str, int], tuple[str, float | None]]


def bridge_conf(site: str, center_port: int, password: str) -> str:
    """The shipped bridge for `site`, to the center's plain loopback listener (no TLS here) and
    reconnecting within a second or two instead of up to a minute."""
    text = (GROUP / "plant-bridge.conf").read_text()
    for placeholder, value in {
        "@SITE@": site,
        "@CENTER_HOST@": LOOPBACK,
        "@CENTER_PORT@": str(center_port),
        "@BRIDGE_PASSWORD@": password,
    }.items():
        text = text.replace(placeholder, value)
    lines = [line for line in text.splitlines() if not line.startswith(("bridge_cafile", "bridge_tls_version"))]
    lines = ["restart_timeout 1 2" if line.startswith("restart_timeout") else line for line in lines]
    return "\n".join(lines) + "\n"


def center_broker(directory: Path, passwords: dict[str, str]) -> Mosquitto:
    """The center's Mosquitto with the shipped ACL and a password per plant bridge and for ingest."""
    directory.mkdir(parents=True, exist_ok=True)
    passwd = directory / "passwd"
    for user, password in passwords.items():
        create = [] if passwd.exists() else ["-c"]
        subprocess.run(["mosquitto_passwd", "-b", *create, str(passwd), user, password], check=True)
    os.chmod(passwd, 0o644)
    acl = directory / "acl"
    acl.write_text((GROUP / "center-acl").read_text())
    return start_mosquitto(directory, extra_config=f"password_file {passwd}\nacl_file {acl}\n", anonymous=False)


def plant_document(site: str, meters: list[CountingMeter], broker: Mosquitto, influx_url: str) -> dict[str, Any]:
    """Counting meters (tests/meters.py) with books: meter1 feeds a SiMn furnace whose product
    counter is the same register read in tonnes, so the books have energy, tonnes and carbon."""
    mqtt = {"host": LOOPBACK, "port": broker.port}
    influxdb = {"url": influx_url, "database": f"group_{site}_{os.getpid()}", "flush_interval_s": 0.2}
    doc = plant_doc(site, meters, mqtt, influxdb, scan_interval_s=SCAN_S)
    doc["devices"][0]["points"].append({"id": "output", "address": 0, "type": "uint32", "unit": "t"})
    for device in doc["devices"]:
        # a read the meter served but whose answer came after the timeout would be a reading the
        # plant never had; on a loaded box answers can take over a second
        device["timeout_s"] = 5
    doc["assets"] = [
        {
            "id": "saf1",
            "type": "submerged_arc_furnace",
            "name": "1# SAF",
            "product": "SiMn",
            "rated_power_kw": 60000,
            "meters": {
                "electricity_import": "meter1.energy",
                "active_power": "meter1.power",
                "product_counter": "meter1.output",
            },
        }
    ]
    doc["accounting"] = {"products": [{"id": "SiMn"}], "units": [{"asset": "saf1", "production": "product_counter"}]}
    return doc


@dataclass
class Plant:
    site: str
    meters: list[CountingMeter]
    broker: Mosquitto
    proxy: TcpProxy
    gateway: Gateway
    influx: InfluxV1Client

    @property
    def api_url(self) -> str:
        return f"http://{LOOPBACK}:{self.gateway.api_port}"


@dataclass
class GroupStack:
    plants: dict[str, Plant]
    center_broker: Mosquitto
    workers: list[Center]
    api: Center
    influx: InfluxV1Client

    @property
    def api_url(self) -> str:
        return f"http://{LOOPBACK}:{self.api.api_port}"


async def reading_rows(client: InfluxV1Client, site: str) -> Rows:
    """Every reading of `site`: (device, point, time) -> (quality, value); a bad one has no value."""
    series = await client.query(
        f'SELECT "quality", "value" FROM "reading" WHERE site=\'{site}\' GROUP BY device, point'
    )
    return {
        (s.tags["device"], s.tags["point"], row["time"]): (row["quality"], row["value"])
        for s in series
        for row in s.rows()
    }


@pytest_asyncio.fixture(loop_scope="session")
async def group_stack(influxdb: InfluxDB, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[GroupStack]:
    passwords = {site: f"bridge-{site}-pw" for site in SITES} | {"ingest": "ingest-pw"}
    monkeypatch.setenv(PASSWORD_ENV, passwords["ingest"])
    center_mqtt = await asyncio.to_thread(center_broker, tmp_path / "center-broker", passwords)
    started: list[Any] = []
    plants: dict[str, Plant] = {}
    try:
        center_doc = {
            "site": {"id": "group_center", "name": "Test group center"},
            "mqtt": {"host": LOOPBACK, "port": center_mqtt.port, "username": "ingest", "password_env": PASSWORD_ENV},
            "influxdb": {"url": influxdb.url, "database": f"group_center_{os.getpid()}", "flush_interval_s": 0.2},
            "group": {"plants": [{"site": s, "name": f"Plant {s[-1].upper()}"} for s in SITES]},
        }
        (tmp_path / "center.yaml").write_text(yaml.safe_dump(center_doc))
        center = load_config(tmp_path / "center.yaml")
        assert isinstance(center, CenterFile)
        workers = [Center(center, ("ingest",), gateway_id=f"w{i}") for i in (1, 2)]
        api = Center(center, ("api",), api_port=0, api_keys=[STORED, LIMITED])
        for role in (*workers, api):
            started.append(role)
            await role.start()
        for worker in workers:
            assert worker.ingest is not None and worker.derived is not None
            await asyncio.wait_for(worker.ingest.subscribed.wait(), 30)
            await asyncio.wait_for(worker.derived.subscribed.wait(), 30)
        for site in SITES:
            proxy = TcpProxy(center_mqtt.port)
            await proxy.restore()
            conf = bridge_conf(site, proxy.port, passwords[site])
            broker = await asyncio.to_thread(start_mosquitto, tmp_path / f"{site}-broker", None, conf)
            meters = await start_meters(2, step_ms=METER_STEP_MS)
            doc = plant_document(site, meters, broker, influxdb.url)
            plant_file = plant_config(doc, tmp_path / f"{site}.yaml")
            # api_port 0: the API binds a free port itself (no window for another process to take it)
            gateway = Gateway(
                plant_file, ("collect", "ingest", "energy", "api"), api_port=0, gateway_id=site, api_keys=[STORED]
            )
            assert plant_file.influxdb is not None
            plants[site] = Plant(site, meters, broker, proxy, gateway, InfluxV1Client(plant_file.influxdb))
            started.append(plants[site])
            await gateway.start()
        yield GroupStack(
            plants,
            center_mqtt,
            workers,
            api,
            InfluxV1Client(InfluxConfig(url=influxdb.url, database=center.influxdb.database)),
        )
    finally:
        for item in reversed(started):
            if isinstance(item, Plant):
                await item.gateway.stop()
                await stop_meters(item.meters)
                await item.proxy.cut()
                await item.influx.aclose()
                await asyncio.to_thread(item.broker.process.stop)
            else:
                await item.stop()
        await asyncio.to_thread(center_mqtt.process.stop)


async def freeze(plant: Plant) -> None:
    """Stop the meters and scanning, and let every batch reach the plant's database and books."""
    gateway = plant.gateway
    for meter in plant.meters:
        meter.pause()
    published = await gateway.stop_collecting()
    assert gateway.ingest is not None and gateway.energy is not None
    ingest, energy = gateway.ingest, gateway.energy

    async def consumed() -> bool:
        return ingest.messages >= published and energy.batches >= published

    await eventually(consumed, f"{plant.site}: local ingest and books to receive every batch")
    await ingest.writer.flush()
    for _ in range(2):  # a whole cycle that started after the last batch arrived
        await energy.wait_cycle()


async def whole_buckets_served(stack: GroupStack) -> bool:
    """Whether every plant's meters have served reads past the end of its books' first
    `WHOLE_BUCKETS` buckets (read n is stamped START_MS + n x METER_STEP_MS, buckets start at START_MS)."""
    for plant in stack.plants.values():
        energy = plant.gateway.energy
        assert energy is not None
        needed = WHOLE_BUCKETS * energy.books.interval_ns // (METER_STEP_MS * 1_000_000)
        if any(meter.reads < needed for meter in plant.meters):
            return False
    return True


def month_figures(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["label"]: {f: p.get(f) for f in MONTH_FIELDS if f in p} for p in body["periods"]}


async def test_three_plants_reach_the_center_whole_through_a_wan_cut(group_stack: GroupStack) -> None:
    stack = group_stack
    cut = stack.plants[CUT]

    async def rows_of(site: str) -> tuple[Rows, Rows]:
        return await reading_rows(stack.plants[site].influx, site), await reading_rows(stack.influx, site)

    async def every_plant_arrives() -> bool:
        counts = [len((await rows_of(site))[1]) for site in SITES]
        return min(counts) >= 40

    await eventually(every_plant_arrives, "readings of every plant in the central database", within_s=60)

    await cut.proxy.cut()
    local_at_cut = len((await rows_of(CUT))[0])

    async def plant_goes_on_alone() -> bool:  # local ingest and books do not wait for the WAN
        return len((await rows_of(CUT))[0]) >= local_at_cut + 150

    await eventually(plant_goes_on_alone, f"{CUT} to keep storing locally while its WAN is cut", within_s=60)
    local, central = await rows_of(CUT)
    assert len(central) <= len(local) - 100, "the cut held nothing back: the center got the plant's readings anyway"
    await cut.proxy.restore()

    await eventually(
        lambda: whole_buckets_served(stack), f"every meter to serve {WHOLE_BUCKETS} whole buckets", within_s=120
    )
    for plant in stack.plants.values():
        await freeze(plant)

    for site in SITES:

        async def same_readings(site: str = site) -> bool:
            local, central = await rows_of(site)
            return local == central

        await eventually(same_readings, f"{site}: the central database to hold the plant's readings", within_s=60)
        local, central = await rows_of(site)
        assert central == local  # every reading once, same quality and value (no extra, none missing)
        # and the plant's own database holds what its meters served, each with the served value; a
        # read the meter served whose answer came after the collector's timeout (a loaded box) was
        # read again: only such retried reads may be missing
        good = {(d, p, t): v for (d, p, t), (q, v) in local.items() if q == "good" and p != "output"}
        expected = served(stack.plants[site].meters)
        assert set(good) <= set(expected) and all(expected[k] == v for k, v in good.items()), differences(
            expected, good
        )
        collector = stack.plants[site].gateway.collector
        assert collector is not None
        for meter in stack.plants[site].meters:
            lost = {t for (d, _, t) in set(expected) - set(good) if d == meter.device_id}
            device = collector.metrics.device(meter.device_id)
            assert len(lost) <= device.requests - device.scans, (site, meter.device_id, sorted(lost))
    assert cut.proxy.connections >= 2  # the bridge came back through the restored link
    shares = [worker.ingest.messages for worker in stack.workers if worker.ingest is not None]
    assert len(shares) == 2 and all(share > 0 for share in shares), f"the two workers did not share the load: {shares}"

    window = {
        "from": iso_utc((START_MS - 40 * 86_400_000) * 1_000_000),
        "to": iso_utc((START_MS + 3 * 86_400_000) * 1_000_000),
    }
    headers = {"X-API-Key": KEY}
    async with httpx.AsyncClient(headers=headers, timeout=30) as http:

        async def plant_months(plant: Plant, scope: dict[str, Any]) -> dict[str, dict[str, Any]]:
            figures: dict[str, dict[str, Any]] = {}
            for route in ("energy-intensity", "carbon-intensity"):
                answer = await http.get(
                    f"{plant.api_url}/api/v1/kpi/{route}", params={**window, **scope, "group": "month"}
                )
                assert answer.status_code == 200, answer.text
                for label, values in month_figures(answer.json()).items():
                    figures.setdefault(label, {}).update(values)
            return figures

        async def group_months(site: str, scope: dict[str, Any]) -> dict[str, dict[str, Any]]:
            answer = await http.get(
                f"{stack.api_url}/api/v1/group/plants/{site}/kpi", params={**window, **scope, "group": "month"}
            )
            assert answer.status_code == 200, answer.text
            return month_figures(answer.json())

        for site, plant in stack.plants.items():
            for own_scope, group_scope in (
                ({"plant": "true"}, {}),
                ({"product": "SiMn"}, {"scope": "product", "subject": "SiMn"}),
            ):
                own = await plant_months(plant, own_scope)
                assert own and all(m.get("electricity_kwh") or m.get("consumption_kwh") for m in own.values()), (
                    json.dumps(own)
                )

                async def same_months(site: str = site, own: dict = own, group_scope: dict = group_scope) -> bool:
                    theirs = await group_months(site, group_scope)
                    return {
                        label: {k: v for k, v in m.items() if k in own[label]}
                        for label, m in theirs.items()
                        if label in own
                    } == own and set(theirs) == set(own)

                await eventually(
                    same_months, f"{site} {own_scope}: the group API's months to equal the plant's", within_s=30
                )

        # the furnace's production records (fixed intervals of a product-counter unit) as the plant has them
        heat_fields = (
            "id",
            "asset",
            "product",
            "kind",
            "start",
            "end",
            "tonnes_t",
            "electricity_kwh",
            "quality",
            "flags",
        )
        for site, plant in stack.plants.items():
            own_heats = await http.get(f"{plant.api_url}/api/v1/heats", params={**window, "limit": 1000})
            assert own_heats.status_code == 200, own_heats.text
            own_items = [{k: item[k] for k in heat_fields} for item in own_heats.json()["items"]]
            assert own_items, f"{site}: the plant's books made no production records"

            async def same_heats(site: str = site, own_items: list = own_items) -> bool:
                answer = await http.get(
                    f"{stack.api_url}/api/v1/group/plants/{site}/heats", params={**window, "limit": 1000}
                )
                return [{k: item[k] for k in heat_fields} for item in answer.json()["items"]] == own_items

            await eventually(same_heats, f"{site}: the group API's records to equal the plant's", within_s=30)

        # limit status: each plant's grades of the month its books hold (the watch's clock set there:
        # the meters' time is not the wall clock's month on the 1st) equal its own `compliance/limits`
        data_ns = (START_MS + 3_600_000) * 1_000_000
        month = ""
        for site, plant in stack.plants.items():
            watch, compliance = plant.gateway.compliance_watch, plant.gateway.compliance
            assert watch is not None and compliance is not None
            watch.clock_ns = lambda: data_ns
            month = f"{compliance.calendar.production_date(data_ns):%Y-%m}"
            asked = {"checks": -1}

            async def same_limits(
                plant: Plant = plant, watch: ComplianceWatch = watch, month: str = month, asked: dict = asked
            ) -> bool:
                own = await http.get(f"{plant.api_url}/api/v1/compliance/limits", params={"month": month})
                theirs = await http.get(
                    f"{stack.api_url}/api/v1/group/plants/{plant.site}/limits", params={"month": month}
                )
                assert own.status_code == 200 and theirs.status_code == 200, (own.text, theirs.text)
                if limit_status(own.json()["products"]) == limit_status(theirs.json()["products"]):
                    return True
                if watch.checks != asked["checks"]:  # the check asked for last is done: grade again
                    asked["checks"] = watch.checks
                    watch.poke()
                return False

            await eventually(same_limits, f"{site}: the group API's limit status to equal the plant's", within_s=60)
            own = (await http.get(f"{plant.api_url}/api/v1/compliance/limits", params={"month": month})).json()
            graded = limit_status(own["products"])
            # not vacuous: the plant produced SiMn that month, and GB 21341 graded it
            assert graded["SiMn"]["standard"] == "GB 21341-2022" and graded["SiMn"]["month"]["status"] not in (
                "no_production",
                "missing_input",
            ), json.dumps(graded)
        across = (await http.get(f"{stack.api_url}/api/v1/group/limits", params={"month": month})).json()
        assert [p["product"] for p in across["products"]] == ["SiMn"]
        assert [p["site"] for p in across["products"][0]["plants"]] == list(SITES)

        group = (await http.get(f"{stack.api_url}/api/v1/group/kpi", params={**window, "group": "month"})).json()
        for total in group["totals"]:
            members = [p for plant in group["plants"] for p in plant["periods"] if p["label"] == total["label"]]
            assert total["plants"] == sorted(SITES)
            assert total["consumption_kwh"] == pytest.approx(sum(p["consumption_kwh"] for p in members))
        products = (
            await http.get(f"{stack.api_url}/api/v1/group/products", params={**window, "group": "month"})
        ).json()
        assert [p["product"] for p in products["products"]] == ["SiMn"]
        simn = products["products"][0]
        for total in simn["totals"]:
            assert total["kgce_per_t"] == pytest.approx(total["comprehensive_kgce"] / total["tonnes_t"])

        limited = {"X-API-Key": LIMITED_KEY}
        listed = (await http.get(f"{stack.api_url}/api/v1/group/plants", headers=limited)).json()
        assert [p["site"] for p in listed["plants"]] == ["plant_a"]
        hidden = await http.get(f"{stack.api_url}/api/v1/group/plants/{CUT}/kpi", params=window, headers=limited)
        assert hidden.status_code == 404 and hidden.json()["detail"]["error"] == "unknown_plant"
        hidden = await http.get(
            f"{stack.api_url}/api/v1/group/plants/{CUT}/limits", params={"month": month}, headers=limited
        )
        assert hidden.status_code == 404 and hidden.json()["detail"]["error"] == "unknown_plant"
        mine_limits = (
            await http.get(f"{stack.api_url}/api/v1/group/limits", params={"month": month}, headers=limited)
        ).json()
        assert [p["site"] for item in mine_limits["products"] for p in item["plants"]] == ["plant_a"]
        mine = (await http.get(f"{stack.api_url}/api/v1/group/kpi", params=window, headers=limited)).json()
        assert [p["site"] for p in mine["plants"]] == ["plant_a"] and all(
            t["plants"] == ["plant_a"] for t in mine["totals"]
        )

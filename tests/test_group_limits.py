"""Limit grades at the group center: a plant's grade message (gateway/compliance/wire.py) turns back
into exactly the `compliance_grade` rows the plant wrote, and the group API's limit status read from
those rows in a real InfluxDB equals the plant's own grading (`compliance/limits`), per plant and per
product across plants, on the golden compliance cases (not compliant, grades 2 and 3, a product
without a limit standard). tests/test_group_center.py checks the same through the bridges."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest
import pytest_asyncio

from ferrogate.api.group_app import create_group_app
from ferrogate.api.group_context import GroupContext
from ferrogate.api.keys import KeyStore, Role, new_key
from ferrogate.gateway.center_config import CenterFile
from ferrogate.gateway.compliance import wire as grade_wire
from ferrogate.gateway.compliance.wire import INDICATOR_KEYS, WINDOWS
from ferrogate.gateway.compliance_service import ComplianceService, assess_all
from ferrogate.gateway.config import InfluxConfig, MqttConfig
from ferrogate.gateway.energy.aggregate import Period
from ferrogate.gateway.energy.wire_lines import DerivedPayloadError
from ferrogate.gateway.influx import InfluxV1Client
from ferrogate.gateway.influx_setup import DERIVED_POLICY
from ferrogate.gateway.mqtt import Message, Outbox, make_client
from ferrogate.gateway.services import LOOPBACK, InfluxDB, Mosquitto
from tests.compliance_cases import CASES_DIR, Case, books_for, load_case
from tests.tcp_proxy import TcpProxy
from tests.waiting import eventually

LIMIT_CASES = ("gb21341_ferroalloys", "gb21347_silicon", "gb21256_eaf")
SITES = ("plant_a", "plant_b")
KEY, STORED = new_key("group", Role.viewer)
ONE_KEY, ONE_STORED = new_key("plant-b-only", Role.viewer, sites=("plant_b",))


def limit_status(products: list[dict[str, Any]]) -> dict[str, Any]:
    """What the center serves of a plant's `compliance/limits` products (the plant's answer or the
    center's): per product a limit standard grades, its standard and status, and per window its
    status, grade and every indicator (value, unit, levels, grade, status, margin, tonnes, verified)."""
    return {
        p["product"]: {
            "standard": p["standard"],
            "status": p["status"],
            **{
                w: {
                    "status": p[w]["status"],
                    "grade": p[w].get("grade"),
                    "indicators": {i["indicator"]: {k: i[k] for k in INDICATOR_KEYS} for i in p[w]["indicators"]},
                }
                for w in WINDOWS
            },
        }
        for p in products
        if all(w in p for w in WINDOWS)
    }


def graded_month(case: Case) -> tuple[Period, list[dict[str, Any]]]:
    """The case's month and its products graded as a plant grades them (13 months of books and inputs)."""
    month = case.expected["month"]
    periods = ComplianceService(case.model, None, None).months_ending(date.fromisoformat(month + "-01"), 13)
    labels = [p.label for p in periods]
    inputs = {label: case.month_inputs(label) for label in labels}
    return periods[-1], assess_all(case.model, labels, books_for(case, labels), inputs)


@pytest.mark.parametrize("name", LIMIT_CASES)
def test_grade_message_gives_back_the_plant_grade_rows(name: str) -> None:
    period, products = graded_month(load_case(CASES_DIR / name))
    graded = grade_wire.graded(products)
    assert graded and len(graded) <= len(products)
    for product in graded:
        payload = grade_wire.grade_payload("plant_a", period, product)
        wanted = grade_wire.grade_lines("plant_a", period.label, period.start_ns, [product])
        assert grade_wire.grade_payload_lines(payload) == ("plant_a", wanted)
        assert len(wanted) == sum(len(product[w]["indicators"]) for w in WINDOWS)
    # a product no limit standard grades has no rows, so no message either
    assert grade_wire.grade_lines("plant_a", period.label, period.start_ns, products) == [
        line for p in graded for line in grade_wire.grade_lines("plant_a", period.label, period.start_ns, [p])
    ]


def _grade_doc(**change: Any) -> bytes:
    doc: dict[str, Any] = {
        "schema": grade_wire.SCHEMA,
        "type": "grade",
        "site": "a",
        "product": "SiMn",
        "standard": "GB 21341-2022",
        "period": {"kind": "month", "label": "2026-11", "start": "2026-10-31T16:00:00.000Z"},
        "month": {"indicators": []},
        "rolling_12_months": {"indicators": []},
    }
    return json.dumps({**doc, **change}).encode()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"[", "not JSON"),
        (json.dumps({"schema": "ferrogate-energy/1", "type": "kpi"}).encode(), "not a ferrogate-compliance/1 object"),
        (_grade_doc(type="kpi"), "type must be 'grade'"),
        (_grade_doc(product=7), "product must be text"),
        (_grade_doc(period={"kind": "month", "label": "2026-11", "start": "soon"}), "period.start"),
        (_grade_doc(month={"indicators": {}}), "month.indicators must be a list"),
        (_grade_doc(rolling_12_months={"indicators": [{"indicator": "electricity"}]}), "lacks"),
        (
            _grade_doc(month={"indicators": [dict.fromkeys(INDICATOR_KEYS, 1) | {"indicator": "electricity"}]}),
            "levels must be an object or null",
        ),
    ],
)
def test_a_grade_message_off_the_schema_is_refused_with_its_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(DerivedPayloadError, match=reason):
        grade_wire.grade_payload_lines(payload)


@pytest_asyncio.fixture(loop_scope="session")
async def center_db(influxdb: InfluxDB, fresh_database: str) -> AsyncIterator[InfluxV1Client]:
    client = InfluxV1Client(InfluxConfig(url=influxdb.url, database=fresh_database))
    await client.ensure_database()
    try:
        yield client
    finally:
        await client.aclose()


def center_file(influx: InfluxV1Client) -> CenterFile:
    return CenterFile.model_validate(
        {
            "site": {"id": "group_center", "name": "Test center"},
            "mqtt": {"host": "127.0.0.1", "port": 1883},
            "influxdb": {"url": influx.config.url, "database": influx.config.database},
            "group": {"plants": [{"site": s, "name": s} for s in SITES]},
        }
    )


@pytest.mark.parametrize("name", LIMIT_CASES)
async def test_center_limit_status_from_stored_rows_is_the_plant_grading(name: str, center_db: InfluxV1Client) -> None:
    period, products = graded_month(load_case(CASES_DIR / name))
    # each plant's rows as the center's ingest writes them, from the plant's messages; plant_b's
    # month was graded before (other figures), and that older revision is written first
    older = [{**p, "standard": "an earlier grading", "month": {"indicators": []}} for p in grade_wire.graded(products)]
    for revision, sites in ((older, SITES[1:]), (grade_wire.graded(products), SITES)):
        lines = [
            line
            for site in sites
            for product in revision
            for line in grade_wire.grade_payload_lines(grade_wire.grade_payload(site, period, product))[1]
        ]
        await center_db.write(lines, retention_policy=DERIVED_POLICY)

    context = GroupContext(center_file(center_db), KeyStore([STORED, ONE_STORED]), center_db)
    transport = httpx.ASGITransport(app=create_group_app(context))
    async with httpx.AsyncClient(transport=transport, base_url="http://center", headers={"X-API-Key": KEY}) as http:
        wanted = limit_status(products)
        assert wanted, "the case grades no product"
        for site in SITES:
            answer = await http.get(f"/api/v1/group/plants/{site}/limits", params={"month": period.label})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert (body["site"], body["month"]) == (site, period.label)
            assert limit_status(body["products"]) == wanted

        across = (await http.get("/api/v1/group/limits", params={"month": period.label})).json()
        assert [p["product"] for p in across["products"]] == sorted(wanted)
        for item in across["products"]:
            product = wanted[item["product"]]
            assert [p["site"] for p in item["plants"]] == list(SITES)
            for plant in item["plants"]:
                assert limit_status([{"product": item["product"], **plant}])[item["product"]] == product
            above = "not_compliant" in (product["month"]["status"], product["rolling_12_months"]["status"])
            assert item["not_compliant"] == (list(SITES) if above else [])
        assert across["not_compliant"] == sum(len(p["not_compliant"]) for p in across["products"])

        # another month has no rows: nothing graded, not an error
        empty = await http.get("/api/v1/group/plants/plant_a/limits", params={"month": "2020-01"})
        assert empty.status_code == 200 and empty.json()["products"] == []
        # a key limited to plant_b: only its grades, and plant_a is not named to it
        limited = {"X-API-Key": ONE_KEY}
        mine = (await http.get("/api/v1/group/limits", params={"month": period.label}, headers=limited)).json()
        assert {p["site"] for item in mine["products"] for p in item["plants"]} == {"plant_b"}
        hidden = await http.get("/api/v1/group/plants/plant_a/limits", params={"month": period.label}, headers=limited)
        assert hidden.status_code == 404 and hidden.json()["detail"]["error"] == "unknown_plant"
        # bad input is a 4xx with its reason
        for params in ({"month": "2026-13"}, {"month": "November"}):
            bad = await http.get("/api/v1/group/limits", params=params)
            assert bad.status_code == 400 and bad.json()["detail"]["error"] == "bad_month", bad.text
        assert (await http.get("/api/v1/group/limits")).status_code == 422
        assert (await http.get("/api/v1/group/plants/Plant-A/limits", params={"month": "2026-11"})).status_code == 422


async def test_grades_wait_as_the_latest_per_product_while_the_broker_is_away(mosquitto: Mosquitto) -> None:
    """A plant's grade outbox (`latest_only`): checks made while its broker is away leave one message
    per product, the last; when the broker returns they go out retained, so a center that subscribes
    later still gets each product's last grading."""
    link = TcpProxy(mosquitto.port)  # not listening yet: the broker is away
    root = f"grades{os.getpid()}/ferrogate/v1"
    outbox = Outbox(MqttConfig(host=LOOPBACK, port=link.port, topic_root=root), "test-grades-out", latest_only=True)
    sender = asyncio.create_task(outbox.run())
    try:
        simn, fesi = grade_wire.grade_topic(root, "plant_a", "SiMn"), grade_wire.grade_topic(root, "plant_a", "FeSi75")
        for check in range(1, 4):
            outbox.put(Message(simn, f"SiMn check {check}".encode(), retain=True))
            if check == 1:
                outbox.put(Message(fesi, b"FeSi75 check 1", retain=True))
        assert [(m.topic, m.payload) for m in outbox.waiting()] == [(simn, b"SiMn check 3"), (fesi, b"FeSi75 check 1")]
        await link.restore()

        async def sent() -> bool:
            return outbox.published == 2 and not outbox.waiting()

        await eventually(sent, "the grades to reach the broker once it is back", within_s=60)
        got: dict[str, bytes] = {}
        reader_config = MqttConfig(host=LOOPBACK, port=mosquitto.port, clean_start=True)
        async with make_client(reader_config, f"test-grades-reader-{os.getpid()}") as reader:
            await reader.subscribe(f"{root}/+/energy/compliance/grade/+", qos=1)
            async with asyncio.timeout(30):
                async for message in reader.messages:
                    assert message.retain and isinstance(message.payload, bytes)
                    got[message.topic.value] = message.payload
                    if len(got) == 2:
                        break
        assert got == {simn: b"SiMn check 3", fesi: b"FeSi75 check 1"}
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        await link.cut()

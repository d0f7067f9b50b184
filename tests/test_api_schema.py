"""Property-based checks of the API against its own OpenAPI schema (schemathesis): no 5xx and no
response that violates the schema, for every operation, with an admin key and seeded live data.
The live event stream is excluded (it never ends by itself); tests/test_api_http.py covers it."""

from __future__ import annotations

import asyncio
import time

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from ferrogate.api.app import create_app
from ferrogate.api.group_app import create_group_app
from ferrogate.api.group_context import GroupContext
from ferrogate.api.keys import KeyStore, Role, new_key
from ferrogate.gateway.alarms import Kind, Severity
from ferrogate.gateway.center_config import CenterFile
from ferrogate.gateway.config_loader import load_config
from ferrogate.gateway.demo import Demo
from tests.conftest import ROOT
from tests.test_api_http import KEYS, Stack

stack = Stack()
stack.feed(10.0)
stack.context.alarms.raise_(Kind.device_offline, "meter1", Severity.critical, "seeded", time.time_ns())
# schemathesis presents unknown keys on purpose (its check ST401 wants 401 or 403 for them): lift the
# per-client limit that would answer 429 (tests/reliability/test_security_api.py tests the limit)
UNLIMITED = 10**9
stack.context.limiter.limit = UNLIMITED
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(stack.context)).exclude(path="/api/v1/live")
# the group center's API (docs/group.md) on the shipped center file, without a database (its data
# routes answer their documented 503; tests/test_group_center.py reads real figures through it),
# with one key for every plant and one limited to a plant
CENTER = load_config(ROOT / "deploy" / "group" / "center.yaml")
assert isinstance(CENTER, CenterFile)
GROUP_KEY, GROUP_STORED = new_key("group-admin", Role.admin)
LIMITED_KEY, LIMITED_STORED = new_key("one-plant", Role.viewer, sites=("fj_eaf_steel",))
group_context = GroupContext(CENTER, KeyStore([GROUP_STORED, LIMITED_STORED]))
group_context.limiter.limit = UNLIMITED
group_schema = schemathesis.openapi.from_asgi("/openapi.json", create_group_app(group_context))


# Checked: no 5xx and every response (status, headers, body) as documented. Not checked:
# "a schema-valid request is accepted": a syntactically valid range can still be refused with a
# documented 400 (e.g. `from` after `to`, or longer than api.max_range_days).
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: schemathesis.Case) -> None:
    case.call_and_validate(headers={"X-API-Key": KEYS[Role.admin][0]}, excluded_checks=[positive_data_acceptance])


@group_schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_group_api_conforms_to_its_schema(case: schemathesis.Case) -> None:
    case.call_and_validate(headers={"X-API-Key": GROUP_KEY}, excluded_checks=[positive_data_acceptance])


def test_group_api_is_in_its_openapi_schema() -> None:
    paths = group_schema.raw_schema["paths"]
    for route in (
        "plants",
        "plants/{site}",
        "plants/{site}/kpi",
        "plants/{site}/heats",
        "kpi",
        "products",
        "benchmarks",
        "plants/{site}/limits",
        "limits",
        "carbon",
    ):
        assert f"/api/v1/group/{route}" in paths, route
        assert "group" in next(iter(paths[f"/api/v1/group/{route}"].values()))["tags"]


async def test_running_stack_api_conforms_to_its_schema(accounted_demo: Demo) -> None:
    """The same checks over real HTTP against the running demo stack, so the energy routes answer
    from real books in InfluxDB. Hypothesis runs in a thread: its requests are synchronous and the
    server shares this event loop."""
    url = f"http://127.0.0.1:{accounted_demo.options.api_port}"
    headers = {"X-API-Key": accounted_demo.api_key}
    assert accounted_demo.gateway is not None and accounted_demo.gateway.api_context is not None
    accounted_demo.gateway.api_context.limiter.limit = UNLIMITED

    def run() -> int:
        # /readyz answers 503 by design while a broker connection is being re-made (tested in
        # test_api_energy.py); the live stream never ends
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        schema = schema.exclude(path="/api/v1/live").exclude(path="/readyz")
        operations = 0
        for result in schema.get_all_operations():
            operation = result.ok()
            operations += 1

            @given(case=operation.as_strategy())
            @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def check(case: schemathesis.Case) -> None:
                case.call_and_validate(base_url=url, headers=headers, excluded_checks=[positive_data_acceptance])

            check()
        return operations

    assert await asyncio.to_thread(run) >= 15

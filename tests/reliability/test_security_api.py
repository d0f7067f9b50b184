"""API security: HTTPS from the plant file's `api.tls`, unknown keys counted and rate-limited per
client address (429 with Retry-After), keys compared in constant time on their hashes. The API runs
as `ferrogate run --role api` does (Gateway, uvicorn) against the test broker."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from ferrogate.api.config import ApiConfig, ApiTlsConfig
from ferrogate.api.keys import KeyStore, Role, new_key
from ferrogate.api.ratelimit import AuthFailureLimiter
from ferrogate.gateway.config import MqttConfig
from ferrogate.gateway.config_loader import load_plant
from ferrogate.gateway.plant_file import PlantFile
from ferrogate.gateway.runtime import Gateway, RoleConfigError
from ferrogate.gateway.services import Mosquitto, free_port
from tests.conftest import ROOT
from tests.tlscerts import make_ca_and_server
from tests.waiting import eventually

PLANT = ROOT / "tests" / "testcases" / "config" / "valid_minimal" / "plant.yaml"
VIEWER_KEY, VIEWER = new_key("security-viewer", Role.viewer)
FAILURES_MAX = 3


def api_plant(mosquitto: Mosquitto, api: ApiConfig) -> PlantFile:
    return load_plant(PLANT).model_copy(
        update={
            "mqtt": MqttConfig(port=mosquitto.port, topic_root="security/ferrogate/v1"),
            "influxdb": None,
            "api": api,
        }
    )


@dataclass
class HttpsApi:
    url: str
    ca_file: Path
    gateway: Gateway

    def client(self, source_address: str = "127.0.0.1") -> httpx.AsyncClient:
        """A client that trusts the test CA, connecting from `source_address` (any 127.x is loopback)."""
        transport = httpx.AsyncHTTPTransport(
            verify=ssl.create_default_context(cafile=self.ca_file), local_address=source_address
        )
        return httpx.AsyncClient(base_url=self.url, transport=transport, timeout=10)


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def https_api(mosquitto: Mosquitto, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[HttpsApi]:
    ca, cert, key = make_ca_and_server(tmp_path_factory.mktemp("api-tls"))
    api = ApiConfig(
        tls=ApiTlsConfig(cert_file=cert, key_file=key), auth_failures_max=FAILURES_MAX, auth_failure_window_s=600
    )
    port = free_port()
    gateway = Gateway(api_plant(mosquitto, api), ("api",), api_port=port, gateway_id="security", api_keys=[VIEWER])
    await gateway.start()
    server = gateway.api_server
    assert server is not None
    await eventually(lambda: asyncio.sleep(0, server.started), "the API server to start", within_s=20)
    yield HttpsApi(f"https://127.0.0.1:{port}", ca, gateway)
    await gateway.stop()


async def test_api_serves_https_with_the_configured_certificate(https_api: HttpsApi) -> None:
    async with https_api.client() as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        assets = await http.get("/api/v1/assets", headers={"X-API-Key": VIEWER_KEY})
        assert assets.status_code == 200 and [a["id"] for a in assets.json()] == ["saf1"]
    # a client that does not trust the site CA refuses the server
    async with httpx.AsyncClient(base_url=https_api.url, timeout=10) as untrusting:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusting.get("/healthz")
    # plain HTTP gets no answer from the TLS port
    async with httpx.AsyncClient(base_url=https_api.url.replace("https:", "http:"), timeout=10) as plain:
        with pytest.raises(httpx.HTTPError):
            await plain.get("/healthz")


async def test_unknown_keys_are_counted_and_rate_limited_per_client(https_api: HttpsApi) -> None:
    limiter = https_api.gateway.api_context.limiter
    failed_before, refused_before = limiter.failed, limiter.refused
    async with https_api.client("127.0.0.2") as guesser, https_api.client("127.0.0.3") as neighbour:
        for attempt in range(FAILURES_MAX):
            wrong = await guesser.get("/api/v1/assets", headers={"X-API-Key": f"fgk_guess_{attempt}"})
            assert wrong.status_code == 401, wrong.text
        refused = await guesser.get("/api/v1/assets", headers={"X-API-Key": "fgk_guess_next"})
        assert refused.status_code == 429 and refused.json()["detail"]["error"] == "too_many_failures"
        assert 1 <= int(refused.headers["Retry-After"]) <= 600
        # while refused, even a good key from that address waits; another address is not held up
        assert (await guesser.get("/api/v1/assets", headers={"X-API-Key": VIEWER_KEY})).status_code == 429
        assert (await neighbour.get("/api/v1/assets", headers={"X-API-Key": VIEWER_KEY})).status_code == 200
        # a missing key is refused (401) but is no guess
        assert (await neighbour.get("/api/v1/assets")).status_code == 401
        metrics = (await neighbour.get("/metrics")).text
    assert (limiter.failed - failed_before, limiter.refused - refused_before) == (FAILURES_MAX, 2)
    assert f"ferrogate_api_auth_failures_total {limiter.failed}\n" in metrics
    assert f"ferrogate_api_auth_refused_total {limiter.refused}\n" in metrics


def test_rate_limit_window_slides_and_the_client_table_is_bounded() -> None:
    now = [1000.0]
    limiter = AuthFailureLimiter(limit=2, window_s=10.0, max_clients=3, clock=lambda: now[0])
    limiter.record_failure("a")
    now[0] += 4
    limiter.record_failure("a")
    assert limiter.retry_after("a") == 6  # the first failure leaves the window at 1010
    now[0] += 6
    assert limiter.retry_after("a") is None
    limiter.record_failure("a")
    assert limiter.retry_after("a") == 4  # the failures at 1004 and 1010: free at 1014
    for client in ("b", "c", "d"):  # a fourth address evicts the longest-tracked one
        limiter.record_failure(client)
        limiter.record_failure(client)
    assert limiter.retry_after("a") is None and limiter.retry_after("d") == 10
    assert (limiter.failed, limiter.refused) == (9, 3)


def test_keys_are_compared_in_constant_time_on_their_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every comparison goes through hmac.compare_digest and sees SHA-256 digests, never the key."""
    compared: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    other_key, other = new_key("other", Role.admin)
    store = KeyStore([VIEWER, other])
    assert store.check("fgk_wrong_key") is None
    assert store.check(other_key) == other
    presented = {hashlib.sha256(k.encode()).hexdigest() for k in ("fgk_wrong_key", other_key)}
    assert len(compared) == 4  # both stored keys for the wrong one; the match is the second for the other
    for stored_digest, presented_digest in compared:
        assert stored_digest in (VIEWER.sha256, other.sha256) and presented_digest in presented


def test_a_certificate_that_cannot_be_loaded_stops_the_api_role_with_its_name(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such.crt"
    api = ApiConfig(tls=ApiTlsConfig(cert_file=missing, key_file=tmp_path / "no-such.key"))
    with pytest.raises(RoleConfigError, match=f"api.tls: cannot load {missing}"):
        Gateway(api_plant(mosquitto, api), ("api",))

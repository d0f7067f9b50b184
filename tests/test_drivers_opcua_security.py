"""OPC UA with security on: Basic256Sha256 Sign and SignAndEncrypt with a client certificate made
by `ferrogate make-cert`, the server certificate checked against a trust list, and a username with
its password from the environment or a file. The server (the simulator's asyncua server) offers
no unsecured endpoint and no anonymous login, and trusts only our client certificate."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from asyncua import ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions

from ferrogate.cert_cmd import make_certificate
from ferrogate.drivers.opcua.driver import OpcUaDriver
from ferrogate.gateway.collect import DeviceScanner
from ferrogate.gateway.reading import Quality
from ferrogate.simulators.opcua_server import AddressSpace, SimulatedOpcUaDevice, Variable
from tests.conftest import ROOT
from tests.field_devices import node, opcua_device, plant, start_opcua

SPACE = AddressSpace("secure_plc", (Variable("P_kW", "power", "kW"), Variable("E_kWh", "energy", "kWh")))
POINTS = [
    {"id": "power", "node": node("DEV", "P_kW"), "unit": "kW"},
    {"id": "energy", "node": node("DEV", "E_kWh"), "unit": "kWh"},
]
SERVER_URI = "urn:freeopcua:python:server"  # the asyncua server's application URI
USER, PASSWORD = "gateway", "s3cret-Passw0rd"
T0 = 1_795_000_000_000_000_000


class OneUser:
    """The server accepts one username/password."""

    def get_user(self, iserver, username=None, password=None, certificate=None) -> User | None:
        return User(role=UserRole.User, name=username) if (username, password) == (USER, PASSWORD) else None


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Certificates: ours from the make-cert command, the server's, and a stranger's; trust lists."""
    base = tmp_path_factory.mktemp("pki")
    made = subprocess.run(
        [sys.executable, "-m", "ferrogate", "make-cert", "--out", str(base / "own"), "--host", "gateway01"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    server_cert, server_key = make_certificate(base / "server", "server", SERVER_URI, "127.0.0.1", server=True)
    stranger_cert, _ = make_certificate(base / "stranger", "stranger", SERVER_URI, "127.0.0.1", server=True)
    rogue_cert, rogue_key = make_certificate(base / "rogue", "rogue")  # a client the server never trusted
    paths = {
        "cert": base / "own" / "ferrogate-cert.der",
        "key": base / "own" / "ferrogate-key.pem",
        "rogue_cert": rogue_cert,
        "rogue_key": rogue_key,
        "server_cert": server_cert,
        "server_key": server_key,
    }
    for name, certs in [("trusted", [server_cert]), ("strangers", [stranger_cert]), ("clients", [paths["cert"]])]:
        (base / name).mkdir()
        for cert in certs:
            shutil.copy(cert, base / name / cert.name)
        paths[name] = base / name
    return paths


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def secure_server(pki: dict[str, Path]) -> AsyncIterator[SimulatedOpcUaDevice]:
    async def lock_down(sim: SimulatedOpcUaDevice) -> None:
        server = sim.server
        server.set_security_policy(
            [ua.SecurityPolicyType.Basic256Sha256_Sign, ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt]
        )
        server.set_identity_tokens([ua.UserNameIdentityToken])
        server.iserver.set_user_manager(OneUser())
        await server.load_certificate(str(pki["server_cert"]))
        await server.load_private_key(str(pki["server_key"]))
        clients = TrustStore([pki["clients"]], [])
        await clients.load()
        checks = CertificateValidatorOptions.TRUSTED | CertificateValidatorOptions.PEER_CLIENT
        server.set_certificate_validator(CertificateValidator(checks, clients))

    sim = await start_opcua(SPACE, {"power": 4200.0, "energy": 99.5}, configure=lock_down)
    await sim.publish(T0)
    yield sim
    await sim.stop()


@pytest.fixture
def password_env() -> Iterator[str]:
    os.environ["FERROGATE_TEST_OPCUA_PASSWORD"] = PASSWORD
    yield "FERROGATE_TEST_OPCUA_PASSWORD"
    del os.environ["FERROGATE_TEST_OPCUA_PASSWORD"]


def secured(sim: SimulatedOpcUaDevice, pki: dict[str, Path], mode: str, **options: object) -> dict[str, object]:
    settings = {
        "security_policy": "Basic256Sha256",
        "security_mode": mode,
        "certificate": str(pki["cert"]),
        "private_key": str(pki["key"]),
        "trusted_certs_dir": str(pki["trusted"]),
        "username": USER,
        "timeout_s": 2.0,
        **options,
    }
    return opcua_device("plc", sim.endpoint, POINTS, **settings)


def test_make_cert_writes_a_client_certificate_and_a_private_key(pki: dict[str, Path], tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    cert = x509.load_der_x509_certificate(pki["cert"].read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["urn:ferrogate:gateway"]
    assert san.get_values_for_type(x509.DNSName) == ["gateway01"]
    assert ExtendedKeyUsageOID.CLIENT_AUTH in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert pki["key"].stat().st_mode & 0o777 == 0o600
    with pytest.raises(FileExistsError):
        make_certificate(pki["cert"].parent)  # never overwrites without --force


@pytest.mark.parametrize("mode", ["Sign", "SignAndEncrypt"])
async def test_secure_modes_read_with_password_from_env(
    secure_server: SimulatedOpcUaDevice, pki: dict[str, Path], password_env: str, mode: str
) -> None:
    device = plant(secured(secure_server, pki, mode, password_env=password_env)).devices[0]
    driver = OpcUaDriver(device)
    await driver.connect()
    readings = {r.point: r for r in await driver.read()}
    await driver.close()
    assert {k: (r.value, r.quality, r.source_time_ns) for k, r in readings.items()} == {
        "power": (4200.0, Quality.GOOD, T0),
        "energy": (99.5, Quality.GOOD, T0),
    }


async def test_password_from_a_file(secure_server: SimulatedOpcUaDevice, pki: dict[str, Path], tmp_path: Path) -> None:
    secret = tmp_path / "opcua.pw"
    secret.write_text(PASSWORD + "\n")
    device = plant(secured(secure_server, pki, "SignAndEncrypt", password_file=str(secret))).devices[0]
    driver = OpcUaDriver(device)
    await driver.connect()
    assert all(r.quality is Quality.GOOD for r in await driver.read())
    await driver.close()


async def reason_of_failed_scan(device_options: dict[str, object]) -> str:
    """What the collector publishes when the connection is refused."""
    scanner = DeviceScanner(plant(device_options), "plc", lambda batch: None)
    batch = await scanner.scan_once()
    await scanner.driver.close()
    assert {r.quality for r in batch.readings} == {Quality.BAD}
    assert len({r.reason for r in batch.readings}) == 1
    return batch.readings[0].reason or ""


async def test_untrusted_server_certificate_is_refused(
    secure_server: SimulatedOpcUaDevice, pki: dict[str, Path], password_env: str
) -> None:
    options = secured(
        secure_server, pki, "SignAndEncrypt", password_env=password_env, trusted_certs_dir=str(pki["strangers"])
    )
    reason = await reason_of_failed_scan(options)
    assert reason.startswith("comm_error: connect: ") and "BadCertificateUntrusted" in reason


async def test_wrong_password_is_refused(
    secure_server: SimulatedOpcUaDevice, pki: dict[str, Path], tmp_path: Path
) -> None:
    secret = tmp_path / "wrong.pw"
    secret.write_text("not-the-password")
    reason = await reason_of_failed_scan(secured(secure_server, pki, "Sign", password_file=str(secret)))
    assert reason.startswith("comm_error: connect: ") and "BadUserAccessDenied" in reason


async def test_no_security_is_refused_by_a_secure_only_server(secure_server: SimulatedOpcUaDevice) -> None:
    options = opcua_device("plc", secure_server.endpoint, POINTS, timeout_s=2.0)
    reason = await reason_of_failed_scan(options)
    assert reason.startswith("comm_error: connect: ")


async def test_client_certificate_unknown_to_the_server_is_refused(
    secure_server: SimulatedOpcUaDevice, pki: dict[str, Path], password_env: str
) -> None:
    rogue = {"certificate": str(pki["rogue_cert"]), "private_key": str(pki["rogue_key"])}
    reason = await reason_of_failed_scan(secured(secure_server, pki, "Sign", password_env=password_env, **rogue))
    assert (
        reason
        == "comm_error: connect: BadCertificateUntrusted: The certificate is not trusted.(BadCertificateUntrusted)"
    )

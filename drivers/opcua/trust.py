"""The trust list of server certificates (`trusted_certs_dir`), and what to say when it is empty.

The first thing an engineer gets wrong when commissioning OPC UA security is an empty trust
directory (asyncua then says only "can't create an empty store"). The error names the directory
and the certificate the server presents (fetched with GetEndpoints, which needs no security), so
the engineer can check it with the server's owner and put it there.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from asyncua import Client, ua
from cryptography import x509

# the files asyncua's TrustStore loads: names with a dot that end in der or pem
_TRUSTED_NAME = re.compile(r".*\..*(der|pem)$")


class EmptyTrustList(ValueError):
    """`trusted_certs_dir` holds no certificate; the message says which one the server presents."""


def certificate_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file() and _TRUSTED_NAME.match(p.name.lower()))


def thumbprint(der: bytes) -> str:
    """SHA-1 of the DER certificate, as OPC UA tools (UaExpert, server trust lists) show it."""
    return hashlib.sha1(der, usedforsecurity=False).hexdigest().upper()


def describe(der: bytes) -> str:
    cert = x509.load_der_x509_certificate(der)
    until = cert.not_valid_after_utc.date().isoformat()
    return f"subject {cert.subject.rfc4514_string()!r}, SHA-1 thumbprint {thumbprint(der)}, valid until {until}"


async def server_certificates(endpoint: str, timeout_s: float) -> list[bytes]:
    """The distinct certificates the server's endpoints present (GetEndpoints, no session)."""
    endpoints: list[ua.EndpointDescription] = await Client(
        endpoint, timeout=timeout_s
    ).connect_and_get_server_endpoints()
    seen: list[bytes] = []
    for description in endpoints:
        der = description.ServerCertificate
        if der and der not in seen:
            seen.append(der)
    return seen


async def empty_trust_list(directory: Path, endpoint: str, timeout_s: float) -> EmptyTrustList:
    """The error for an empty `directory`, naming the server's certificate when it can be fetched."""
    head = f"trusted_certs_dir {directory} holds no certificate (.der or .pem)"
    try:
        certificates = await server_certificates(endpoint, timeout_s)
    except (OSError, TimeoutError, ua.UaError) as exc:
        return EmptyTrustList(f"{head}; the server's certificate could not be fetched from {endpoint}: {exc!r}")
    if not certificates:
        return EmptyTrustList(f"{head}; the server at {endpoint} presents no certificate in GetEndpoints")
    presented = "; ".join(describe(der) for der in certificates)
    return EmptyTrustList(
        f"{head}. The server at {endpoint} presents the certificate {presented}. "
        f"Check that thumbprint with the server's owner, then put that certificate (DER or PEM) in {directory}"
    )

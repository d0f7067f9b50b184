"""`ferrogate make-cert`: a self-signed OPC UA application instance certificate for the gateway.

Writes `<name>-cert.der` (DER, as OPC UA servers expect it in their trust lists) and
`<name>-key.pem` (PKCS#8, readable by the owner only), made with asyncua's cert_gen: RSA 2048,
SHA-256, the application URI and host name in the SubjectAltName, client (or client and server)
extended key usage. Copy the certificate into each PLC's trusted-clients list.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

DEFAULT_URI = "urn:ferrogate:gateway"  # the config's default `application_uri`


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("make-cert", help="create a self-signed OPC UA application certificate and key")
    p.add_argument("--out", type=Path, required=True, help="directory for the certificate and key")
    p.add_argument("--name", default="ferrogate", help="file name prefix (default: ferrogate)")
    p.add_argument("--uri", default=DEFAULT_URI, help=f"application URI (default: {DEFAULT_URI})")
    p.add_argument("--host", default=socket.gethostname(), help="host name in the SubjectAltName")
    p.add_argument("--days", type=int, default=365 * 2, help="validity in days (default: 730)")
    p.add_argument("--organization", default=None, help="O= in the subject")
    p.add_argument("--server", action="store_true", help="also allow use as a server certificate")
    p.add_argument("--force", action="store_true", help="overwrite existing files")


def make_certificate(
    out: Path,
    name: str = "ferrogate",
    uri: str = DEFAULT_URI,
    host: str | None = None,
    days: int = 730,
    organization: str | None = None,
    server: bool = False,
    force: bool = False,
) -> tuple[Path, Path]:
    """Write the certificate and key; returns (certificate path, key path)."""
    # here, not at the top: every `ferrogate` command imports this module for its parser
    from asyncua.crypto import cert_gen
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import ExtendedKeyUsageOID

    if days < 1:
        raise ValueError("--days must be at least 1")
    cert_path, key_path = out / f"{name}-cert.der", out / f"{name}-key.pem"
    existing = [p for p in (cert_path, key_path) if p.exists()]
    if existing and not force:
        raise FileExistsError(f"{', '.join(map(str, existing))} exists (use --force to replace)")
    out.mkdir(parents=True, exist_ok=True)
    key = cert_gen.generate_private_key()
    uses = [ExtendedKeyUsageOID.CLIENT_AUTH] + ([ExtendedKeyUsageOID.SERVER_AUTH] if server else [])
    subject = {"organizationName": organization} if organization else {}
    host = host or socket.gethostname()
    alt_names = [x509.UniformResourceIdentifier(uri), x509.DNSName(host)]
    cert = cert_gen.generate_self_signed_app_certificate(key, uri, subject, alt_names, extended=uses, days=days)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(cert_gen.dump_private_key_as_pem(key))
    cert_path.write_bytes(cert.public_bytes(encoding=Encoding.DER))
    return cert_path, key_path


def run(args: argparse.Namespace) -> int:
    try:
        cert, key = make_certificate(
            args.out, args.name, args.uri, args.host, args.days, args.organization, args.server, args.force
        )
    except (FileExistsError, ValueError, OSError) as exc:
        print(f"make-cert: {exc}", file=sys.stderr)
        return 1
    print(f"certificate: {cert}\nprivate key: {key} (mode 600)\napplication URI: {args.uri}")
    print("plant file (per OPC UA device):")
    print(
        f"  security_policy: Basic256Sha256\n  security_mode: SignAndEncrypt\n"
        f"  certificate: {cert}\n  private_key: {key}\n  application_uri: {args.uri}\n"
        "  trusted_certs_dir: /etc/ferrogate/pki/trusted   # the PLCs' server certificates"
    )
    return 0

#!/usr/bin/env python3
"""Make a private CA and the certificates of a deployment, for mutual TLS between the web
processes and the app servers (docs/DEPLOYMENT.md).

    certs.py DIR --app app-1,app-2 --web web-1,web-2 [--ip 10.0.0.11,...] [--days 825]

writes into DIR:
    ca/ca.pem           the CA certificate (web: caCertsDir=DIR/ca; app: SHILLINGS_APP_TLS_CA)
    ca.key              the CA's private key: keep it off the servers once the certificates
                        are made (it is only needed to make more)
    app-1.pem, .key     an app server's certificate (SAN DNS:app-1, and each --ip) and key
    web-1.pem, .key     a web process's client certificate and key

An existing CA in DIR is reused, so more certificates can be added later. Keys are written
0600. Needs the `cryptography` package (installed with the project).
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Shillings deployment"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def load_or_make_ca(out: Path, days: int) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = out / "ca" / "ca.pem", out / "ca.key"
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return cert, key
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Shillings private CA"))
        .issuer_name(_name("Shillings private CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    (out / "ca").mkdir(parents=True, exist_ok=True)
    _write_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def make_cert(
    out: Path,
    name: str,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    *,
    server: bool,
    ips: list[str],
    days: int,
) -> None:
    """``name``.pem and ``name``.key, signed by ``ca``: a server certificate (SAN: the name
    and ``ips``) or a client one."""
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    alt: list[x509.GeneralName] = [x509.DNSName(name)]
    alt += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(out / f"{name}.key", key)
    (out / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="certs.py", description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--app", default="", help="app server names (comma-separated)")
    parser.add_argument("--web", default="", help="web process names (comma-separated)")
    parser.add_argument("--ip", default="", help="IP addresses added to every app certificate")
    parser.add_argument("--days", type=int, default=825)
    args = parser.parse_args(argv)
    names = lambda text: [n.strip() for n in text.split(",") if n.strip()]  # noqa: E731
    args.dir.mkdir(parents=True, exist_ok=True)
    ca = load_or_make_ca(args.dir, args.days)
    for name in names(args.app):
        make_cert(args.dir, name, ca, server=True, ips=names(args.ip), days=args.days)
    for name in names(args.web):
        make_cert(args.dir, name, ca, server=False, ips=[], days=args.days)
    print(f"certs: CA and certificates in {args.dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

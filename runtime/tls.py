"""TLS helpers every server uses: client contexts, handshake probes, a private CA and the certificates it signs.

Keys are written 0600 (see :mod:`~modelledger.runtime.private_files`).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from modelledger.runtime.private_files import write_private_file


def tls_context(ca_file: Path, client_cert: Path | None = None, client_key: Path | None = None) -> ssl.SSLContext:
    """An SSL context that trusts ``ca_file`` and optionally presents a client certificate."""
    ctx = ssl.create_default_context(cafile=str(ca_file))
    if client_cert is not None and client_key is not None:
        ctx.load_cert_chain(str(client_cert), str(client_key))
    return ctx


def tls_handshake(host: str, port: int, ctx: ssl.SSLContext, timeout: float = 2.0) -> str | None:
    """Completes a TLS handshake with ``host:port``; None if it succeeded, else why it did not.

    A gRPC server accepts connections into its queue before it serves; only a
    finished handshake shows that it is serving.
    """
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as sock,
            ctx.wrap_socket(sock, server_hostname=host),
        ):
            return None
    except (OSError, ssl.SSLError) as exc:
        return str(exc)


def _write_key(key: ec.EllipticCurvePrivateKey, key_path: Path) -> None:
    write_private_file(
        key_path,
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


def issue_tls_certificate(
    ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, cert_path: Path, key_path: Path, hosts: list[str]
) -> None:
    """Signs a TLS certificate (server and client use) for ``hosts`` with a CA key; writes a new key (0600)."""
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(key, key_path)
    write_private_file(cert_path, cert.public_bytes(serialization.Encoding.PEM))


def create_tls_ca(
    cert_path: Path, key_path: Path, common_name: str
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Creates a self-signed CA for one purpose (e.g. peer-to-chaincode TLS); key written 0600."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(key, key_path)
    write_private_file(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return cert, key

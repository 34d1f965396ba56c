"""Fabric-CA-like certificates for unit tests: a CA per organisation, role users with NodeOUs and the role attribute."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROLE_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")
Issued = tuple[ec.EllipticCurvePrivateKey, x509.Certificate]


def make_cert(
    name: str, issuer: Issued | None = None, ca: bool = False, role: str = "", ou: str = "", days: int = 30
) -> Issued:
    """ECDSA P-256, KeyUsage digitalSignature, no EKU; ``role`` as Fabric CA's attribute, ``ou`` as NodeOU."""
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, name)]
    if ou:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    subject = x509.Name(attrs)
    ikey, icert = issuer if issuer else (key, None)
    now = dt.datetime.now(dt.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(icert.subject if icert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, ca, ca, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if icert is not None:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ikey.public_key()), critical=False)
    if role:
        attrs_ext = json.dumps({"attrs": {"modelledger.role": role}}).encode()
        b = b.add_extension(x509.UnrecognizedExtension(ROLE_OID, attrs_ext), critical=False)
    return key, b.sign(ikey, hashes.SHA256())


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def write_pair(folder: Path, name: str, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> tuple[Path, Path]:
    """Writes ``name.key`` (PKCS#8 PEM) and ``name.pem``; returns their paths."""
    k, c = folder / f"{name}.key", folder / f"{name}.pem"
    k.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    c.write_bytes(pem(cert))
    return k, c


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()

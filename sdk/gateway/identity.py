"""Client identities and signers.

An :class:`Identity` is what the network sees: an MSP id and an X.509
certificate. A signer is any callable that takes a message digest and returns
a signature, so a key can live in a file, in memory or in an HSM (PKCS#11)
behind the same interface, as in Fabric's own Gateway clients.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed,
    decode_dss_signature,
    encode_dss_signature,
)
from fabric_protos.msp import identities_pb2

from modelledger.sdk.gateway.errors import IdentityError
from modelledger.sdk.ledger.msp import fingerprint

Signer = Callable[[bytes], bytes]
"""Signs a message digest (SHA-256 by default) and returns a DER signature."""

Hasher = Callable[[bytes], bytes]
"""Hashes a message before signing."""

# Order of the P-256 group: Fabric accepts only signatures with s <= n/2 ("low S").
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def sha256(message: bytes) -> bytes:
    """The default hash: SHA-256."""
    return hashlib.sha256(message).digest()


@dataclass(frozen=True)
class Identity:
    """An MSP id and a PEM certificate: the creator of every request."""

    msp_id: str
    certificate: bytes

    def __post_init__(self) -> None:
        if not self.msp_id:
            raise IdentityError("identity has an empty MSP id")
        try:
            x509.load_pem_x509_certificate(self.certificate)
        except ValueError as exc:
            raise IdentityError(f"identity of {self.msp_id}: certificate is not a PEM X.509 certificate") from exc

    @property
    def x509(self) -> x509.Certificate:
        """The parsed certificate."""
        return x509.load_pem_x509_certificate(self.certificate)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the certificate (DER), lowercase hex, as the registry chaincode records it."""
        return fingerprint(self.x509)

    def serialize(self) -> bytes:
        """The ``SerializedIdentity`` protobuf bytes used as ``creator`` in headers."""
        return identities_pb2.SerializedIdentity(mspid=self.msp_id, id_bytes=self.certificate).SerializeToString()


def load_identity(msp_id: str, cert_path: str | Path) -> Identity:
    """Loads an identity from a PEM certificate file."""
    path = Path(cert_path)
    try:
        return Identity(msp_id, path.read_bytes())
    except OSError as exc:
        raise IdentityError(f"cannot read certificate {path}: {exc.strerror}") from exc


def _single_file(folder: Path, what: str) -> Path:
    try:
        files = sorted(p for p in folder.iterdir() if p.is_file())
    except OSError as exc:
        raise IdentityError(f"cannot read {what} folder {folder}: {exc.strerror}") from exc
    if len(files) != 1:
        raise IdentityError(f"expected exactly one file in {folder} ({what}), found {len(files)}")
    return files[0]


def load_msp(msp_id: str, msp_dir: str | Path) -> tuple[Identity, Signer]:
    """Loads the identity and a signer from an MSP folder (``signcerts/`` and ``keystore/``)."""
    root = Path(msp_dir)
    identity = load_identity(msp_id, _single_file(root / "signcerts", "signcerts"))
    signer = load_private_key_signer(_single_file(root / "keystore", "keystore"))
    return identity, signer


def load_private_key_signer(key_path: str | Path, password: bytes | None = None) -> Signer:
    """A signer from a PEM private key file (EC P-256, PKCS#8 or SEC1)."""
    path = Path(key_path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IdentityError(f"cannot read private key {path}: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except (ValueError, TypeError) as exc:
        # The message never includes key material.
        raise IdentityError(f"{path} is not a readable PEM private key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise IdentityError(f"{path}: expected an EC private key, got {type(key).__name__}")
    return private_key_signer(key)


def private_key_signer(key: ec.EllipticCurvePrivateKey) -> Signer:
    """A signer for an in-memory EC private key; signatures are low-S normalised."""
    if not isinstance(key.curve, ec.SECP256R1):
        raise IdentityError(f"only P-256 keys are supported, got {key.curve.name}")

    def sign(digest: bytes) -> bytes:
        der = key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        return to_low_s(der)

    return sign


def to_low_s(der_signature: bytes, order: int = P256_ORDER) -> bytes:
    """Rewrites an ECDSA signature so that ``s <= order / 2``, as Fabric requires."""
    r, s = decode_dss_signature(der_signature)
    if s > order // 2:
        s = order - s
    return encode_dss_signature(r, s)


def is_low_s(der_signature: bytes, order: int = P256_ORDER) -> bool:
    """Whether a DER ECDSA signature is in low-S form."""
    _, s = decode_dss_signature(der_signature)
    return s <= order // 2

"""Signing model folders with model-signing bundles, as the registrant's Fabric CA identity.

The bundle is an OpenSSF model-signing (sigstore) bundle in certificate mode:
the registrant's key signs an in-toto statement whose subject is the model's
root digest and whose predicate lists every file. ``model_signing verify
certificate`` accepts it given the organisation's CA certificate and
``--no-ignore-git-paths`` (every file counts here, git files included; its
default skips them and then reports them missing).

model-signing's certificate verification checks that the leaf chains to the
given CA but does not say *which* leaf signed (any identity of that CA passes).
:func:`open_bundle` therefore only checks the signature and says what it
covers and who made it; :mod:`modelledger.mlops.store.verification` decides
whether that signer is the registrant the ledger names.
"""

from __future__ import annotations

import base64
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography import x509
from model_signing import hashing as ms_hashing
from model_signing import signing as ms_signing

from modelledger.mlops.store.digest import Manifest
from modelledger.sdk.ledger.msp import fingerprint

FABRIC_ATTRS_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")
ROLE_ATTRIBUTE = "modelledger.role"


class SignatureError(Exception):
    """A bundle could not be made, or does not prove what it should; the message says why."""


@dataclass(frozen=True)
class Signer:
    """Who signed a bundle, from its leaf certificate."""

    cert_fingerprint: str
    role: str
    subject: str


def _hashing_config() -> ms_hashing.Config:
    # Every file counts (no git-path exclusions) and in-folder symlinks are followed,
    # exactly like modelledger.mlops.store.digest, so both compute the same root digest.
    return (
        ms_hashing.Config()
        .set_ignored_paths(paths=[], ignore_git_paths=False)
        .use_file_serialization(hashing_algorithm="sha256", allow_symlinks=True)
        # The serializer's own flag is overwritten from this one at hashing time (model-signing 1.1).
        .set_allow_symlinks(True)
    )


def sign_model(model_dir: Path, bundle_path: Path, key: Path, certificate: Path, chain: list[Path]) -> Signer:
    """Signs ``model_dir`` into ``bundle_path`` (which must lie outside the folder).

    Args:
        model_dir: The model folder.
        bundle_path: Where to write the bundle (JSON).
        key: The signer's private key (PEM).
        certificate: The signer's certificate (PEM), e.g. from its MSP's signcerts.
        chain: CA certificates up to the organisation's root (model-signing needs at least one).
    """
    model_dir, bundle_path = Path(model_dir).resolve(), Path(bundle_path).resolve()
    if bundle_path.is_relative_to(model_dir):
        raise SignatureError(f"{bundle_path}: the bundle must not be inside the model folder it signs")
    if not chain:
        raise SignatureError("a certificate chain (the organisation's CA certificate) is required")
    bundle_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        (
            ms_signing.Config()
            .use_certificate_signer(private_key=key, signing_certificate=certificate, certificate_chain=chain)
            .set_hashing_config(_hashing_config())
            .sign(model_dir, bundle_path)
        )
    except Exception as exc:  # model-signing raises many types
        raise SignatureError(f"signing {model_dir} failed: {exc}") from exc
    return bundle_signer(bundle_path)


def sign_manifest(
    manifest: Manifest, bundle_path: Path, key: Path, certificate: Path, chain: list[Path], model_name: str = "model"
) -> Signer:
    """Signs a model from its manifest (the files' SHA-256, computed as the bytes were read) into ``bundle_path``.

    The bundle is the one :func:`sign_model` makes from a folder holding those
    bytes (same in-toto statement: the root digest and every file's digest,
    file serialization, SHA-256, symlinks followed), without reading the files
    again: what is signed is exactly what was hashed and stored.

    Args:
        manifest: The model's files, sizes and SHA-256 digests.
        bundle_path: Where to write the bundle (JSON).
        key: The signer's private key (PEM).
        certificate: The signer's certificate (PEM).
        chain: CA certificates up to the organisation's root.
        model_name: The statement's informative model name (model-signing uses the folder's name).
    """
    # model-signing 1.1 has no public call for "sign these digests"; these are the parts its own
    # signing.Config.sign uses (pinned version; tests/unit/test_store_signing.py checks the equivalence).
    from model_signing import manifest as ms_manifest
    from model_signing._hashing import hashing as ms_digest
    from model_signing._signing import sign_certificate as ms_certificate
    from model_signing._signing import signing as ms_signed

    if not chain:
        raise SignatureError("a certificate chain (the organisation's CA certificate) is required")
    items = [
        ms_manifest.FileManifestItem(
            path=PurePosixPath(f.path), digest=ms_digest.Digest("sha256", bytes.fromhex(f.sha256))
        )
        for f in manifest.files
    ]
    description = ms_manifest._FileSerialization("sha256", allow_symlinks=True)
    bundle_path = Path(bundle_path)
    bundle_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        signer = ms_certificate.Signer(Path(key), Path(certificate), [Path(c) for c in chain])
        payload = ms_signed.Payload(ms_manifest.Manifest(model_name, items, description))
        signer.sign(payload).write(bundle_path)
    except Exception as exc:  # model-signing raises many types
        raise SignatureError(f"signing the manifest of {model_name} failed: {exc}") from exc
    return bundle_signer(bundle_path)


def _leaf(bundle: dict) -> x509.Certificate:
    material = bundle.get("verificationMaterial", {})
    raw = (material.get("certificate") or {}).get("rawBytes")
    if raw is None:
        certs = (material.get("x509CertificateChain") or {}).get("certificates") or []
        raw = certs[0]["rawBytes"] if certs else None
    if raw is None:
        raise SignatureError("the bundle carries no signing certificate")
    return x509.load_der_x509_certificate(base64.b64decode(raw))


def _read_bundle(bundle_path: Path) -> dict:
    try:
        return json.loads(Path(bundle_path).read_text())
    except (OSError, ValueError) as exc:
        raise SignatureError(f"cannot read bundle {bundle_path}: {exc}") from exc


def bundle_signer(bundle_path: Path) -> Signer:
    """The signer named by a bundle's leaf certificate (as written; :func:`open_bundle` says who signed)."""
    return certificate_signer(_leaf(_read_bundle(bundle_path)))


def certificate_signer(cert: x509.Certificate) -> Signer:
    """The signer a certificate names: its fingerprint, role attribute and subject."""
    role = ""
    try:
        ext = cert.extensions.get_extension_for_oid(FABRIC_ATTRS_OID)
        role = json.loads(ext.value.value).get("attrs", {}).get(ROLE_ATTRIBUTE, "")  # type: ignore[attr-defined]
    except (x509.ExtensionNotFound, ValueError):
        pass
    return Signer(fingerprint(cert), role, cert.subject.rfc4514_string())


def bundle_root_digest(bundle_path: Path) -> str:
    """The model root digest the bundle signs (its in-toto subject)."""
    bundle = _read_bundle(bundle_path)
    try:
        payload = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
        return str(payload["subject"][0]["digest"]["sha256"])
    except (KeyError, IndexError, ValueError) as exc:
        raise SignatureError(f"{bundle_path}: not a model-signing bundle ({exc})") from exc


@dataclass(frozen=True)
class SignedStatement:
    """What a bundle's signature covers, once model-signing verified it under its leaf certificate.

    Attributes:
        signer: Who the leaf certificate names.
        certificate: The leaf certificate (whose key made the signature).
        root_digest: The model digest the statement's subject names.
        files: Every ``(path, sha256)`` the statement lists, sorted by path.
    """

    signer: Signer
    certificate: x509.Certificate
    root_digest: str
    files: tuple[tuple[str, str], ...]


def _leaf_key_verifier() -> Any:
    """model-signing's certificate verifier, minus its chain check (the caller checks the chain against the MSP)."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from model_signing._signing import sign_certificate as ms_certificate

    class LeafKeyVerifier(ms_certificate.Verifier):  # type: ignore[misc]
        def __init__(self) -> None:
            self._log_fingerprints = False
            self.leaf: x509.Certificate | None = None  # the certificate whose key the signature verified under

        def _verify_certificates(self, material: Any, log_fingerprints: bool = False) -> ec.EllipticCurvePublicKey:
            chain = material.x509_certificate_chain.certificates
            if not chain:
                raise ValueError("the bundle carries no signing certificate")
            leaf = x509.load_der_x509_certificate(chain[0].raw_bytes)
            try:
                usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
            except x509.ExtensionNotFound as exc:
                raise ValueError("the signing certificate has no key usage") from exc
            if not usage.digital_signature:
                raise ValueError("the signing certificate may not be used for signatures (key usage)")
            key = leaf.public_key()
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise ValueError(f"the signing certificate holds a {type(key).__name__}, not an EC key")
            self.leaf = leaf
            return key

    return LeafKeyVerifier()


def open_bundle(data: bytes) -> SignedStatement:
    """Checks a bundle's signature with model-signing and returns what it signs.

    model-signing verifies the DSSE envelope's signature over the in-toto
    statement with the key of the bundle's leaf certificate, and that the
    statement's subject is the root digest of the files it lists. Whether
    that certificate is to be trusted (its CA, its fingerprint) is for the
    caller to decide: see :mod:`modelledger.mlops.store.verification`.

    Raises:
        SignatureError: The bundle cannot be read or its signature does not verify; the message says why.
    """
    from model_signing._signing import sign_sigstore_pb as ms_bundle

    with tempfile.TemporaryDirectory(prefix="modelledger-bundle-") as tmp:
        path = Path(tmp) / "bundle.json"
        path.write_bytes(data)
        try:
            bundle = ms_bundle.Signature.read(path)
        except (KeyError, TypeError, ValueError) as exc:
            raise SignatureError(f"not a model-signing bundle: {exc}") from exc
        verifier = _leaf_key_verifier()
        try:
            signed = verifier.verify(bundle)
        except Exception as exc:  # model-signing raises ValueError, KeyError, InvalidSignature and others
            raise SignatureError(
                f"model-signing does not verify the bundle's signature: {exc or type(exc).__name__}"
            ) from exc
        # Who signed is the certificate whose key the signature verified under, not one read apart from it.
        leaf = verifier.leaf
        if leaf is None:
            raise SignatureError("model-signing verified the bundle without its leaf certificate")
        root = bundle_root_digest(path)
    files = tuple(sorted((d.identifier, d.digest.digest_hex) for d in signed.resource_descriptors()))
    return SignedStatement(certificate_signer(leaf), leaf, root, files)

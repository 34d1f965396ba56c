"""Signing model folders with model-signing bundles, as the registrant's Fabric CA identity.

The bundle is an OpenSSF model-signing (sigstore) bundle in certificate mode:
the registrant's key signs an in-toto statement whose subject is the model's
root digest and whose predicate lists every file. ``model_signing verify
certificate`` accepts it given the organisation's CA certificate and
``--no-ignore-git-paths`` (every file counts here, git files included; its
default skips them and then reports them missing).

model-signing's certificate verification checks that the leaf chains to the
given CA but does not say *which* leaf signed (any identity of that CA passes).
:func:`verify_model` therefore also pins the signer: the bundle's leaf
certificate must be the registrant's (same SHA-256 fingerprint, same
``modelledger.role`` attribute) recorded on the ledger, and the signed root
digest must equal the expected model digest.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from model_signing import hashing as ms_hashing
from model_signing import signing as ms_signing
from model_signing import verifying as ms_verifying

from modelledger.mlops.store.digest import Manifest

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
    again: what is signed is exactly what was hashed and stored. It verifies
    with :func:`verify_model` against such a folder.

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
    """The signer named by a bundle's leaf certificate."""
    cert = _leaf(_read_bundle(bundle_path))
    role = ""
    try:
        ext = cert.extensions.get_extension_for_oid(FABRIC_ATTRS_OID)
        role = json.loads(ext.value.value).get("attrs", {}).get(ROLE_ATTRIBUTE, "")  # type: ignore[attr-defined]
    except (x509.ExtensionNotFound, ValueError):
        pass
    return Signer(cert.fingerprint(hashes.SHA256()).hex(), role, cert.subject.rfc4514_string())


def bundle_root_digest(bundle_path: Path) -> str:
    """The model root digest the bundle signs (its in-toto subject)."""
    bundle = _read_bundle(bundle_path)
    try:
        payload = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
        return str(payload["subject"][0]["digest"]["sha256"])
    except (KeyError, IndexError, ValueError) as exc:
        raise SignatureError(f"{bundle_path}: not a model-signing bundle ({exc})") from exc


def verify_model(
    model_dir: Path,
    bundle_path: Path,
    ca_chain: list[Path],
    expected_fingerprint: str,
    expected_role: str,
    expected_model_digest: str,
) -> Signer:
    """Verifies the bundle over ``model_dir`` against the CA chain and pins its signer.

    Raises:
        SignatureError: The signature, the files, the signer or the digest do not match.
    """
    try:
        (
            ms_verifying.Config()
            .use_certificate_verifier(certificate_chain=ca_chain)
            .set_hashing_config(_hashing_config())
            .verify(model_dir, bundle_path)
        )
    except Exception as exc:  # model-signing raises ValueError and others
        raise SignatureError(f"signature over {model_dir} does not verify: {exc}") from exc
    signer = bundle_signer(bundle_path)
    if signer.cert_fingerprint != expected_fingerprint:
        raise SignatureError(
            f"bundle signed by certificate {signer.cert_fingerprint[:16]}… ({signer.subject}), "
            f"not by the registrant {expected_fingerprint[:16]}…"
        )
    if signer.role != expected_role:
        raise SignatureError(f"bundle signer has role {signer.role!r}, the registrant {expected_role!r}")
    root = bundle_root_digest(bundle_path)
    if root != expected_model_digest:
        raise SignatureError(f"bundle signs model digest {root}, expected {expected_model_digest}")
    return signer

"""model-signing bundles in certificate mode, with the signer pinned (real crypto, no servers)."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from modelledger.mlops.store.digest import digest_folder
from modelledger.mlops.store.signing import (
    SignatureError,
    bundle_root_digest,
    sign_manifest,
    sign_model,
    verify_model,
)

ROLE_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")


def _cert(name: str, issuer: tuple | None = None, ca: bool = False, role: str = "") -> tuple:
    """A Fabric-CA-like certificate: ECDSA P-256, KeyUsage digitalSignature, no EKU, role attribute."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    ikey, icert = issuer if issuer else (key, None)
    now = dt.datetime.now(dt.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(icert.subject if icert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, ca, ca, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if icert is not None:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ikey.public_key()), critical=False)
    if role:
        attrs = json.dumps({"attrs": {"modelledger.role": role}}).encode()
        b = b.add_extension(x509.UnrecognizedExtension(ROLE_OID, attrs), critical=False)
    return key, b.sign(ikey, hashes.SHA256())


def _write(folder: Path, name: str, key, cert) -> tuple[Path, Path]:
    k, c = folder / f"{name}.key", folder / f"{name}.pem"
    k.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return k, c


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    ca = _cert("ca.org1", ca=True)
    out = {"ca": _write(tmp_path, "ca", *ca)[1]}
    for name, role in (("registrar", "registrar"), ("other", "registrar"), ("auditor", "auditor")):
        out[f"{name}_key"], out[name] = _write(tmp_path, name, *_cert(name, issuer=ca, role=role))
    foreign = _cert("ca.org2", ca=True)
    out["foreign_ca"] = _write(tmp_path, "foreign_ca", *foreign)[1]
    return out


@pytest.fixture
def model(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "sub").mkdir(parents=True)
    (root / "model.bin").write_bytes(os.urandom(4096))
    (root / "sub" / "config.json").write_text("{}")
    (root / ".gitignore").write_text("*.tmp\n")  # counted by our manifest, so also by the bundle
    return root


def _fingerprint(pem: Path) -> str:
    return x509.load_pem_x509_certificate(pem.read_bytes()).fingerprint(hashes.SHA256()).hex()


def test_bundle_signs_our_model_digest_and_verifies_for_the_registrant(pki, model: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundles" / "model.sig.json"
    signer = sign_model(model, bundle, pki["registrar_key"], pki["registrar"], [pki["ca"]])
    assert signer.cert_fingerprint == _fingerprint(pki["registrar"]) and signer.role == "registrar"
    manifest = digest_folder(model)
    assert bundle_root_digest(bundle) == manifest.model_digest
    assert (
        verify_model(model, bundle, [pki["ca"]], signer.cert_fingerprint, "registrar", manifest.model_digest) == signer
    )


def test_a_bundle_by_another_identity_of_the_same_ca_is_refused(pki, model: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "other.json"
    sign_model(model, bundle, pki["other_key"], pki["other"], [pki["ca"]])
    digest = digest_folder(model).model_digest
    with pytest.raises(SignatureError, match=r"bundle signed by certificate .*\(CN=other\), not by the registrant"):
        verify_model(model, bundle, [pki["ca"]], _fingerprint(pki["registrar"]), "registrar", digest)


def test_wrong_role_wrong_ca_and_changed_files_are_refused(pki, model: Path, tmp_path: Path) -> None:
    digest = digest_folder(model).model_digest
    bundle = tmp_path / "auditor.json"
    sign_model(model, bundle, pki["auditor_key"], pki["auditor"], [pki["ca"]])
    with pytest.raises(SignatureError, match="bundle signer has role 'auditor', the registrant 'registrar'"):
        verify_model(model, bundle, [pki["ca"]], _fingerprint(pki["auditor"]), "registrar", digest)
    good = tmp_path / "good.json"
    sign_model(model, good, pki["registrar_key"], pki["registrar"], [pki["ca"]])
    fp = _fingerprint(pki["registrar"])
    with pytest.raises(SignatureError, match="does not verify"):
        verify_model(model, good, [pki["foreign_ca"]], fp, "registrar", digest)
    with pytest.raises(SignatureError, match="bundle signs model digest"):
        verify_model(model, good, [pki["ca"]], fp, "registrar", "0" * 64)
    (model / "model.bin").write_bytes(b"tampered")
    with pytest.raises(SignatureError, match="does not verify"):
        verify_model(model, good, [pki["ca"]], fp, "registrar", digest)


def test_the_bundle_may_not_live_inside_the_signed_folder(pki, model: Path) -> None:
    with pytest.raises(SignatureError, match="must not be inside the model folder"):
        sign_model(model, model / "sig.json", pki["registrar_key"], pki["registrar"], [pki["ca"]])
    with pytest.raises(SignatureError, match=r"certificate chain .* is required"):
        sign_model(model, model.parent / "sig.json", pki["registrar_key"], pki["registrar"], [])


def test_bundle_root_digest_matches_ours_when_names_sort_differently_by_segment(pki, tmp_path: Path) -> None:
    root = tmp_path / "tricky"
    (root / "a-b").mkdir(parents=True)
    (root / "a").mkdir()
    (root / "a-b" / "x").write_text("1")
    (root / "a" / "b").write_text("2")
    bundle = tmp_path / "tricky.json"
    signer = sign_model(root, bundle, pki["registrar_key"], pki["registrar"], [pki["ca"]])
    digest = digest_folder(root).model_digest
    assert bundle_root_digest(bundle) == digest
    verify_model(root, bundle, [pki["ca"]], signer.cert_fingerprint, "registrar", digest)


def _statement(bundle: Path) -> dict:
    import base64

    return json.loads(base64.b64decode(json.loads(bundle.read_text())["dsseEnvelope"]["payload"]))


def test_a_bundle_signed_from_the_manifest_is_the_one_made_from_the_folder(pki, model: Path, tmp_path: Path) -> None:
    from_folder, from_manifest = tmp_path / "folder.json", tmp_path / "manifest.json"
    sign_model(model, from_folder, pki["registrar_key"], pki["registrar"], [pki["ca"]])
    manifest = digest_folder(model)
    signer = sign_manifest(manifest, from_manifest, pki["registrar_key"], pki["registrar"], [pki["ca"]], "model")
    # The same statement (subject = root digest, every file's digest, the serialization), signed by the registrant.
    assert _statement(from_manifest) == _statement(from_folder)
    assert bundle_root_digest(from_manifest) == manifest.model_digest
    assert (
        verify_model(
            model, from_manifest, [pki["ca"]], _fingerprint(pki["registrar"]), "registrar", manifest.model_digest
        )
        == signer
    )


def test_a_manifest_bundle_does_not_verify_over_other_bytes(pki, model: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "manifest.json"
    manifest = digest_folder(model)
    sign_manifest(manifest, bundle, pki["registrar_key"], pki["registrar"], [pki["ca"]])
    (model / "model.bin").write_bytes(b"tampered")
    with pytest.raises(SignatureError, match="does not verify"):
        verify_model(model, bundle, [pki["ca"]], _fingerprint(pki["registrar"]), "registrar", manifest.model_digest)


def test_a_model_with_an_in_folder_symlink_signs_and_verifies(pki, model: Path, tmp_path: Path) -> None:
    (model / "latest.bin").symlink_to("model.bin")  # our digest follows it; so must the bundle
    bundle = tmp_path / "linked.json"
    signer = sign_model(model, bundle, pki["registrar_key"], pki["registrar"], [pki["ca"]])
    manifest = digest_folder(model)
    assert "latest.bin" in [f.path for f in manifest.files] and bundle_root_digest(bundle) == manifest.model_digest
    assert verify_model(model, bundle, [pki["ca"]], signer.cert_fingerprint, "registrar", manifest.model_digest)

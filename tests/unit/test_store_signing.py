"""model-signing bundles in certificate mode: signing, and what a verified bundle says (real crypto, no servers).

Whether the signer is the right one is decided by the one verification
(``tests/unit/test_store_verification.py``); here, that a bundle made from a
manifest is the one model-signing makes from the folder, and that
:func:`open_bundle` checks the signature and reports what it covers.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from cryptography import x509
from model_signing import hashing as ms_hashing
from model_signing import verifying as ms_verifying

from modelledger.mlops.store import signing
from modelledger.mlops.store.digest import digest_folder
from modelledger.mlops.store.signing import (
    SignatureError,
    bundle_root_digest,
    open_bundle,
    sign_manifest,
    sign_model,
)
from tests.unit.pki_fakes import fingerprint, make_cert, write_pair


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    ca = make_cert("ca.org1", ca=True)
    out = {"ca": write_pair(tmp_path, "ca", *ca)[1]}
    for name, role in (("registrar", "registrar"), ("other", "registrar")):
        out[f"{name}_key"], out[name] = write_pair(tmp_path, name, *make_cert(name, issuer=ca, role=role))
    out["foreign_ca"] = write_pair(tmp_path, "foreign_ca", *make_cert("ca.org2", ca=True))[1]
    return out


@pytest.fixture
def model(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "sub").mkdir(parents=True)
    (root / "model.bin").write_bytes(os.urandom(4096))
    (root / "sub" / "config.json").write_text("{}")
    (root / ".gitignore").write_text("*.tmp\n")  # counted by our manifest, so also by the bundle
    return root


def _model_signing_verifies(folder: Path, bundle: Path, ca: Path) -> None:
    """model-signing's own folder verification (what `model_signing verify certificate` does)."""
    hashing = (
        ms_hashing.Config()
        .set_ignored_paths(paths=[], ignore_git_paths=False)
        .use_file_serialization(hashing_algorithm="sha256", allow_symlinks=True)
        .set_allow_symlinks(True)
    )
    ms_verifying.Config().use_certificate_verifier(certificate_chain=[ca]).set_hashing_config(hashing).verify(
        folder, bundle
    )


def test_bundle_signs_our_model_digest_and_names_its_signer(pki, model: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundles" / "model.sig.json"
    signer = sign_model(model, bundle, pki["registrar_key"], pki["registrar"], [pki["ca"]])
    assert signer.role == "registrar"
    manifest = digest_folder(model)
    assert bundle_root_digest(bundle) == manifest.model_digest
    _model_signing_verifies(model, bundle, pki["ca"])
    statement = open_bundle(bundle.read_bytes())
    assert statement.signer == signer and fingerprint(statement.certificate) == signer.cert_fingerprint
    assert statement.root_digest == manifest.model_digest
    assert statement.files == tuple(sorted((f.path, f.sha256) for f in manifest.files))


def test_open_bundle_names_another_identity_of_the_same_ca(pki, model: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "other.json"
    sign_model(model, bundle, pki["other_key"], pki["other"], [pki["ca"]])
    statement = open_bundle(bundle.read_bytes())
    assert statement.signer.subject == "CN=other" and statement.signer.role == "registrar"


def test_the_signer_named_is_the_certificate_whose_key_verified_the_signature(
    pki, model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whoever reads the bundle's JSON apart from model-signing (its leaf, as written) cannot change who signed:
    # the identity is the certificate model-signing verified the signature under.
    bundle = tmp_path / "other.json"
    sign_model(model, bundle, pki["other_key"], pki["other"], [pki["ca"]])
    registrar = x509.load_pem_x509_certificate(pki["registrar"].read_bytes())
    monkeypatch.setattr(signing, "_leaf", lambda _bundle: registrar)
    statement = open_bundle(bundle.read_bytes())
    assert statement.signer.subject == "CN=other" and statement.certificate.subject.rfc4514_string() == "CN=other"
    assert statement.signer.cert_fingerprint != fingerprint(registrar)


def test_a_changed_signature_or_statement_does_not_open(pki, model: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "good.json"
    sign_model(model, bundle, pki["registrar_key"], pki["registrar"], [pki["ca"]])
    doc = json.loads(bundle.read_text())
    sig = bytearray(base64.b64decode(doc["dsseEnvelope"]["signatures"][0]["sig"]))
    sig[10] ^= 0x01
    doc["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    with pytest.raises(SignatureError, match="model-signing does not verify the bundle's signature"):
        open_bundle(json.dumps(doc).encode())
    doc = json.loads(bundle.read_text())
    statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    statement["subject"][0]["digest"]["sha256"] = "0" * 64
    doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    with pytest.raises(SignatureError, match="does not verify"):
        open_bundle(json.dumps(doc).encode())
    with pytest.raises(SignatureError, match="not a model-signing bundle"):
        open_bundle(b'{"no": "bundle"}')


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
    sign_model(root, bundle, pki["registrar_key"], pki["registrar"], [pki["ca"]])
    assert bundle_root_digest(bundle) == digest_folder(root).model_digest
    _model_signing_verifies(root, bundle, pki["ca"])


def _statement(bundle: Path) -> dict:
    return json.loads(base64.b64decode(json.loads(bundle.read_text())["dsseEnvelope"]["payload"]))


def test_a_bundle_signed_from_the_manifest_is_the_one_made_from_the_folder(pki, model: Path, tmp_path: Path) -> None:
    from_folder, from_manifest = tmp_path / "folder.json", tmp_path / "manifest.json"
    sign_model(model, from_folder, pki["registrar_key"], pki["registrar"], [pki["ca"]])
    manifest = digest_folder(model)
    signer = sign_manifest(manifest, from_manifest, pki["registrar_key"], pki["registrar"], [pki["ca"]], "model")
    # The same statement (subject = root digest, every file's digest, the serialization), signed by the registrant.
    assert _statement(from_manifest) == _statement(from_folder)
    assert bundle_root_digest(from_manifest) == manifest.model_digest
    _model_signing_verifies(model, from_manifest, pki["ca"])
    assert open_bundle(from_manifest.read_bytes()).signer == signer


def test_a_manifest_bundle_does_not_verify_over_other_bytes(pki, model: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "manifest.json"
    sign_manifest(digest_folder(model), bundle, pki["registrar_key"], pki["registrar"], [pki["ca"]])
    (model / "model.bin").write_bytes(b"tampered")
    with pytest.raises(ValueError):
        _model_signing_verifies(model, bundle, pki["ca"])


def test_a_model_with_an_in_folder_symlink_signs_and_verifies(pki, model: Path, tmp_path: Path) -> None:
    (model / "latest.bin").symlink_to("model.bin")  # our digest follows it; so must the bundle
    bundle = tmp_path / "linked.json"
    sign_model(model, bundle, pki["registrar_key"], pki["registrar"], [pki["ca"]])
    manifest = digest_folder(model)
    assert "latest.bin" in [f.path for f in manifest.files] and bundle_root_digest(bundle) == manifest.model_digest
    _model_signing_verifies(model, bundle, pki["ca"])

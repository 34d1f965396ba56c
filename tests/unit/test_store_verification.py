"""The one verification against the ledger: every check, and each one failing alone (real crypto, no servers)."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from typer.testing import CliRunner

from modelledger.mlops.cli import store as cli_store
from modelledger.mlops.cli.app import app
from modelledger.mlops.store.copy_checks import human_size, verify_folder, verify_s3
from modelledger.mlops.store.digest import FileEntry, Manifest, digest_folder
from modelledger.mlops.store.index import StoragePointer, read_index
from modelledger.mlops.store.ledger_records import to_ledger_manifest, to_ledger_storage
from modelledger.mlops.store.signing import sign_manifest
from modelledger.mlops.store.upload import ModelUploader
from modelledger.mlops.store.verification import (
    BYTES,
    LEDGER_MANIFEST,
    LEDGER_STATUS,
    SIGNATURE,
    SIGNED_DIGEST,
    SIGNER_CHAIN,
    SIGNER_IDENTITY,
    LedgerEvidence,
    Verification,
    anchored_bundle,
    verify_version,
)
from modelledger.sdk.ledger.msp import MspError, MspTrust
from modelledger.sdk.registry.records import Actor, Approval, ModelVersion, Revocation
from tests.unit.pki_fakes import fingerprint, make_cert, write_pair
from tests.unit.s3_fakes import VersionedBucket

ALL = [LEDGER_STATUS, LEDGER_MANIFEST, BYTES, SIGNATURE, SIGNER_CHAIN, SIGNER_IDENTITY, SIGNED_DIGEST]
ORG1_OUS = (("client", "client"), ("peer", "peer"), ("admin", "admin"), ("orderer", "orderer"))


@pytest.fixture
def org1(tmp_path: Path) -> dict:
    ca = make_cert("ca.org1", ca=True)
    out: dict = {"ca": ca, "trust": MspTrust("Org1MSP", (ca[1],), node_ous=ORG1_OUS)}
    for name, role in (("registrar", "registrar"), ("data_scientist", "data_scientist")):
        issued = make_cert(name, issuer=ca, role=role, ou="client")
        out[name] = issued
        out[f"{name}_files"] = write_pair(tmp_path, name, *issued)
    out["ca_file"] = write_pair(tmp_path, "ca", *ca)[1]
    return out


@pytest.fixture
def model(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "data").mkdir(parents=True)
    (root / "MLmodel").write_text("flavors: {}\n")
    (root / "data" / "model.pkl").write_bytes(os.urandom(2048))
    return root


def record_for(manifest: Manifest, signer: x509.Certificate, role: str = "registrar") -> ModelVersion:
    """The ledger record the bridge would have registered for ``manifest``, signed by ``signer``."""
    return ModelVersion(
        name="m",
        version="1",
        owner="Org1MSP",
        status="REGISTERED",
        model_digest=manifest.model_digest,
        manifest=to_ledger_manifest(manifest=manifest),
        manifest_digest=manifest.manifest_digest,
        storage=to_ledger_storage(
            pointer=StoragePointer(
                bucket="anchored", key=f"models/{manifest.manifest_digest}/index.json", version_id="v1", sha256="0" * 64
            )
        ),
        registrant=Actor(fingerprint(signer), "Org1MSP", role),
    )


def sign(manifest: Manifest, files: tuple[Path, Path], ca_file: Path, tmp_path: Path) -> bytes:
    bundle = tmp_path / f"bundle-{os.urandom(4).hex()}.json"
    sign_manifest(manifest, bundle, files[0], files[1], [ca_file], "model")
    return bundle.read_bytes()


def run(evidence: LedgerEvidence, bundle: bytes | None, folder: Path) -> Verification:
    return verify_version(evidence, bundle, lambda m: verify_folder(folder, m), str(folder), "no bundle in the copy")


def failing(result: Verification) -> list[str]:
    return [c.name for c in result.failed]


@pytest.fixture
def good(org1, model: Path, tmp_path: Path) -> tuple[LedgerEvidence, bytes]:
    manifest = digest_folder(model)
    bundle = sign(manifest, org1["registrar_files"], org1["ca_file"], tmp_path)
    return LedgerEvidence(record_for(manifest, org1["registrar"][1]), org1["trust"]), bundle


def test_a_registrant_signed_intact_version_verifies_on_every_check(good, model: Path) -> None:
    evidence, bundle = good
    result = run(evidence, bundle, model)
    assert result.ok and [c.name for c in result.checks] == ALL and all(c.ok for c in result.checks)
    assert "CN=registrar" in result.check(SIGNER_IDENTITY).detail
    doc = result.to_json()
    assert doc["ok"] is True and doc["failed"] == [] and [c["name"] for c in doc["checks"]] == ALL


def test_a_revoked_version_fails_ledger_status(good, model: Path) -> None:
    evidence, bundle = good
    revoked = dataclasses.replace(evidence.record, status="REVOKED", revocation=Revocation(reason="leaked data"))
    result = run(dataclasses.replace(evidence, record=revoked), bundle, model)
    assert failing(result) == [LEDGER_STATUS] and "leaked data" in result.check(LEDGER_STATUS).detail


def test_a_rejected_version_fails_ledger_status_and_names_who_rejected_it(good, model: Path) -> None:
    evidence, bundle = good
    rejected = dataclasses.replace(
        evidence.record,
        status="REJECTED",
        approvals=[Approval(msp_id="Org2MSP", decision="REJECTED", comment="biased on the holdout set")],
    )
    result = run(dataclasses.replace(evidence, record=rejected), bundle, model)
    assert failing(result) == [LEDGER_STATUS] and not result.ok
    detail = result.check(LEDGER_STATUS).detail
    assert detail == "the version is rejected on the ledger by Org2MSP: biased on the holdout set"
    # A status this code does not know is not taken as usable either; the usable ones say their status.
    unknown = dataclasses.replace(evidence.record, status="SUSPENDED")
    result = run(dataclasses.replace(evidence, record=unknown), bundle, model)
    assert failing(result) == [LEDGER_STATUS] and "SUSPENDED" in result.check(LEDGER_STATUS).detail
    for status in ("REGISTERED", "APPROVED", "DEPLOYED"):
        usable = run(
            dataclasses.replace(evidence, record=dataclasses.replace(evidence.record, status=status)), bundle, model
        )
        assert usable.ok and usable.check(LEDGER_STATUS).detail.startswith(f"{status.lower()} on the ledger")


def test_a_record_whose_digest_is_not_its_manifests_fails_ledger_manifest(good, model: Path) -> None:
    evidence, bundle = good
    record = dataclasses.replace(evidence.record, manifest_digest="f" * 64)
    result = run(dataclasses.replace(evidence, record=record), bundle, model)
    assert failing(result) == [LEDGER_MANIFEST] and "manifestDigest" in result.check(LEDGER_MANIFEST).detail


def test_changed_bytes_fail_bytes_and_name_the_file(good, model: Path) -> None:
    evidence, bundle = good
    (model / "data" / "model.pkl").write_bytes(b"tampered")
    result = run(evidence, bundle, model)
    assert failing(result) == [BYTES] and result.check(BYTES).detail == "changed: data/model.pkl"
    assert result.to_json()["changed"] == ["data/model.pkl"]


def test_a_broken_signature_fails_signature(good, model: Path) -> None:
    evidence, bundle = good
    doc = json.loads(bundle)
    sig = bytearray(base64.b64decode(doc["dsseEnvelope"]["signatures"][0]["sig"]))
    sig[12] ^= 0x01
    doc["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    result = run(evidence, json.dumps(doc).encode(), model)
    assert failing(result) == [SIGNATURE] and not result.ok
    assert "model-signing does not verify" in result.check(SIGNATURE).detail
    assert result.to_json()["unchecked"] == [SIGNER_CHAIN, SIGNER_IDENTITY, SIGNED_DIGEST]
    assert "no verified signature" in result.check(SIGNER_IDENTITY).detail
    missing = run(evidence, None, model)
    assert failing(missing) == [SIGNATURE] and missing.check(SIGNATURE).detail == "no bundle in the copy"


def test_a_signer_from_another_ca_fails_signer_chain(org1, model: Path, tmp_path: Path) -> None:
    # The record names this very certificate, so only the organisation's CA can tell it is not Org1's.
    foreign_ca = make_cert("ca.elsewhere", ca=True)
    impostor = make_cert("registrar", issuer=foreign_ca, role="registrar", ou="client")
    files = write_pair(tmp_path, "impostor", *impostor)
    ca_file = write_pair(tmp_path, "foreign", *foreign_ca)[1]
    manifest = digest_folder(model)
    evidence = LedgerEvidence(record_for(manifest, impostor[1]), org1["trust"])
    result = run(evidence, sign(manifest, files, ca_file, tmp_path), model)
    assert failing(result) == [SIGNER_CHAIN]
    assert "does not chain to a root certificate of Org1MSP" in result.check(SIGNER_CHAIN).detail
    unknown = LedgerEvidence(evidence.record, None, "Org9MSP is not an organisation of the channel")
    assert failing(run(unknown, sign(manifest, files, ca_file, tmp_path), model)) == [SIGNER_CHAIN]


def test_another_identity_of_the_same_organisation_fails_signer_identity_and_is_named(
    org1, good, model: Path, tmp_path: Path
) -> None:
    evidence, _ = good
    bundle = sign(digest_folder(model), org1["data_scientist_files"], org1["ca_file"], tmp_path)
    result = run(evidence, bundle, model)
    assert failing(result) == [SIGNER_IDENTITY]
    detail = result.check(SIGNER_IDENTITY).detail
    assert "signed by CN=data_scientist,OU=client" in detail and "role data_scientist" in detail
    assert "not by the registrant registrar@Org1MSP" in detail
    assert fingerprint(org1["data_scientist"][1])[:16] in detail
    # The role is pinned too: the registrant's certificate with another role on record does not pass.
    wrong_role = dataclasses.replace(
        evidence.record, registrant=dataclasses.replace(evidence.record.registrant, role="x")
    )
    assert failing(run(dataclasses.replace(evidence, record=wrong_role), good[1], model)) == [SIGNER_IDENTITY]


def test_a_bundle_over_other_files_fails_signed_digest(org1, good, model: Path, tmp_path: Path) -> None:
    evidence, _ = good
    manifest = digest_folder(model)
    other = Manifest((*manifest.files, FileEntry("extra.txt", 1, "a" * 64)))
    result = run(evidence, sign(other, org1["registrar_files"], org1["ca_file"], tmp_path), model)
    assert failing(result) == [SIGNED_DIGEST]
    detail = result.check(SIGNED_DIGEST).detail
    assert f"it signs model digest {other.model_digest}" in detail and "extra.txt" in detail


def test_msp_trust_refuses_a_ca_a_revoked_and_a_role_less_certificate(org1) -> None:
    trust: MspTrust = org1["trust"]
    ca_key, ca_cert = org1["ca"]
    with pytest.raises(MspError, match="is a CA certificate"):
        trust.chain(ca_cert)
    no_ou = make_cert("nobody", issuer=org1["ca"])[1]
    with pytest.raises(MspError, match="exactly one of the organisational units"):
        trust.chain(no_ou)
    victim = org1["data_scientist"][1]
    assert trust.chain(victim) == [victim, ca_cert]
    now = dt.datetime.now(dt.UTC)
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now)
        .next_update(now + dt.timedelta(days=1))
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(victim.serial_number).revocation_date(now).build()
        )
        .sign(ca_key, hashes.SHA256())
    )
    with pytest.raises(MspError, match="is revoked by a CRL of Org1MSP"):
        dataclasses.replace(trust, crls=(crl,)).chain(victim)


def anchored(org1, model: Path, tmp_path: Path, bucket: VersionedBucket) -> tuple[LedgerEvidence, StoragePointer]:
    """``model`` anchored in ``bucket`` with the registrar's bundle, and the ledger record that points at it."""
    manifest = digest_folder(model)
    bundle = tmp_path / "anchored-bundle.json"
    bundle.write_bytes(sign(manifest, org1["registrar_files"], org1["ca_file"], tmp_path))
    up = ModelUploader(bucket, "anchored", dt.timedelta(days=3653), workers=1).upload(model, bundle, progress=False)
    record = dataclasses.replace(
        record_for(manifest, org1["registrar"][1]), storage=to_ledger_storage(pointer=up.pointer)
    )
    return LedgerEvidence(record, org1["trust"]), up.pointer


def verify_anchored(evidence: LedgerEvidence, bucket: VersionedBucket) -> Verification:
    pointer = evidence.pointer
    bundle, why = anchored_bundle(bucket, pointer)
    return verify_version(evidence, bundle, lambda m: verify_s3(bucket, pointer, m), pointer.uri, why)


def test_a_verification_says_what_it_covered(org1, good, model: Path, tmp_path: Path) -> None:
    bucket = VersionedBucket()
    evidence, _ = anchored(org1, model, tmp_path, bucket)
    result = verify_anchored(evidence, bucket)
    size = digest_folder(model).total_size
    until = result.content.retain_until
    assert result.ok and until is not None and result.signed_by == "registrar@Org1MSP"
    lock = f"locked (COMPLIANCE) until {until:%Y-%m-%d %H:%M} UTC"
    covered = (
        f"2 files, {human_size(size)}, digests match; signature by registrar@Org1MSP verified; {lock}; "
        "registered on the ledger"
    )
    assert result.covered() == covered
    assert result.summary() == f"{evidence.pointer.uri}: verified against the ledger record of m/1: {covered}"
    assert result.check(BYTES).detail == f"2 files, {human_size(size)}, digests match the ledger's manifest; {lock}"
    doc = result.to_json()
    facts = (doc["files"], doc["bytes"], doc["lock_mode"], doc["retain_until"])
    assert facts == (2, size, "COMPLIANCE", until.isoformat())
    assert (doc["signed_by"], doc["ledger_status"], doc["summary"], doc["warnings"]) == (
        "registrar@Org1MSP",
        "REGISTERED",
        covered,
        [],
    )
    # A local folder: the same facts, and no lock to speak of.
    folder = run(good[0], good[1], model)
    assert folder.ok and "; a local folder: no lock applies; registered on the ledger" in folder.covered()
    assert folder.to_json()["lock_mode"] is None and folder.to_json()["copy"] == "folder"


def test_a_delete_marker_on_the_index_key_warns_and_still_verifies_in_the_cli(
    org1, model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = VersionedBucket()
    evidence, pointer = anchored(org1, model, tmp_path, bucket)
    bucket.delete_object(Key=pointer.key)
    result = verify_anchored(evidence, bucket)
    assert result.ok and len(result.warnings) == 1 and result.summary().endswith("on the ledger (1 warning)")
    assert result.warnings[0].startswith(f"a delete marker over the index key {pointer.key}")
    # The command's own rendering (its ledger and S3 clients replaced by the record and the fake bucket).
    monkeypatch.setattr(cli_store, "_evidence", lambda *a, **k: evidence)
    monkeypatch.setattr(cli_store, "_s3", lambda *a, **k: bucket)
    text = CliRunner().invoke(app, ["store", "verify", "--ledger", "m", "1"])
    assert text.exit_code == 0, text.stdout
    lines = text.stdout.splitlines()
    assert lines[0] == f"verified: {pointer.uri} against the ledger record of m/1"
    assert lines[1] == f"  {result.covered()}"
    assert f"  warning: {result.warnings[0]}" in lines
    doc = json.loads(CliRunner().invoke(app, ["store", "verify", "--ledger", "m", "1", "--json"]).stdout)
    assert doc["ok"] is True and doc["warnings"] == result.warnings and doc["failed"] == []
    fetched = CliRunner().invoke(app, ["store", "fetch", str(tmp_path / "out"), "--ledger", "m", "1"])
    assert fetched.exit_code == 0, fetched.stdout
    assert fetched.stdout.splitlines()[0] == f"fetched into {tmp_path / 'out'}: verified against the ledger: " + (
        result.covered()
    )
    assert f"  warning: {result.warnings[0]}" in fetched.stdout.splitlines()


def test_a_delete_marker_over_a_chunk_key_warns_in_verify_and_fetch_alike(org1, model: Path, tmp_path: Path) -> None:
    from modelledger.mlops.store.fetch import fetch_verified

    bucket = VersionedBucket()
    evidence, pointer = anchored(org1, model, tmp_path, bucket)
    index = read_index(bucket, pointer)
    chunk = next(f for f in index.files if f.path == "data/model.pkl").chunks[0]
    bucket.delete_object(Key=chunk.key)
    result = verify_anchored(evidence, bucket)
    fetched = fetch_verified(bucket, evidence, tmp_path / "out")
    assert result.ok and fetched.ok and (tmp_path / "out" / "data" / "model.pkl").is_file()
    expected = f"a delete marker over the chunk key {chunk.key}: a plain GET of the key fails"
    assert [w.split(" (reads by version id")[0] for w in result.warnings] == [expected]
    assert fetched.warnings == result.warnings


def test_fetch_checks_the_copys_locks_as_verify_does(org1, model: Path, tmp_path: Path) -> None:
    from modelledger.mlops.store.fetch import fetch_verified

    bucket = VersionedBucket()
    evidence, pointer = anchored(org1, model, tmp_path, bucket)
    fetched = fetch_verified(bucket, evidence, tmp_path / "out")
    assert fetched.ok and fetched.covered() == verify_anchored(evidence, bucket).covered()
    assert "locked (COMPLIANCE) until" in fetched.covered()
    # One chunk's lock weakened (a fake can; MinIO refuses): both refuse the copy, naming the object.
    chunk = read_index(bucket, pointer).files[0].chunks[0]
    bucket.versions[chunk.key][-1]["ObjectLockMode"] = "GOVERNANCE"
    weak = f"{chunk.key} version {chunk.version_id} is not COMPLIANCE-locked"
    assert verify_anchored(evidence, bucket).content.unprotected == [weak]
    refused = fetch_verified(bucket, evidence, tmp_path / "refused")
    assert failing(refused) == [BYTES] and refused.content.unprotected == [weak]
    assert not (tmp_path / "refused").exists()

"""What a check of the anchored copy says it covered, and the warnings it gives (a versioned fake; real MinIO:
tests/integration/test_store.py)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from modelledger.mlops.store.copy_checks import human_size, verify_folder, verify_s3
from modelledger.mlops.store.digest import digest_folder
from modelledger.mlops.store.index import StoragePointer
from modelledger.mlops.store.upload import ModelUploader, UploadResult
from tests.unit.s3_fakes import VersionedBucket

RETENTION = dt.timedelta(days=3653)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "data").mkdir(parents=True)
    (root / "MLmodel").write_text("flavors: {}\n")
    (root / "data" / "model.pkl").write_bytes(os.urandom(3000))  # 3 chunks of 1024 bytes
    (root / "requirements.txt").write_text("xgboost==2.1.4\n")
    return root


def anchor(bucket: VersionedBucket, model: Path, tmp_path: Path) -> UploadResult:
    bundle = tmp_path / "bundle.json"
    bundle.write_text('{"signature": "stand-in"}')
    uploader = ModelUploader(bucket, "anchored", RETENTION, workers=1, chunk_size=1024)
    return uploader.upload(model, bundle=bundle, progress=False)


def test_an_intact_copy_says_what_it_covered_in_text_and_json(model: Path, tmp_path: Path) -> None:
    bucket = VersionedBucket()
    before = dt.datetime.now(dt.UTC)
    result = anchor(bucket, model, tmp_path)
    report = verify_s3(bucket, result.pointer, result.manifest)
    size = result.manifest.total_size
    assert report.ok and (report.files, report.size) == (3, size) and report.warnings == []
    assert report.covered() == f"3 files, {human_size(size)}, digests match" == "3 files, 3.0 KB, digests match"
    assert report.lock_mode == "COMPLIANCE" and report.retain_until is not None
    # The uploader rounds the end of retention up to a whole second.
    assert before + RETENTION <= report.retain_until <= dt.datetime.now(dt.UTC) + RETENTION + dt.timedelta(seconds=1)
    assert report.lock() == f"locked (COMPLIANCE) until {report.retain_until:%Y-%m-%d %H:%M} UTC"
    doc = report.to_json()
    assert (doc["files"], doc["bytes"], doc["copy"], doc["lock_mode"]) == (3, size, "anchored", "COMPLIANCE")
    assert doc["retain_until"] == report.retain_until.isoformat() and doc["warnings"] == []
    # The keys scripts already read are kept.
    assert {"ok", "changed", "missing", "extra", "unprotected", "error"} <= doc.keys()


def test_the_earliest_retention_of_the_copys_objects_is_reported(model: Path, tmp_path: Path) -> None:
    bucket = VersionedBucket()
    result = anchor(bucket, model, tmp_path)
    bundle = result.index.bundle
    assert bundle is not None
    # Longer on one object than on the rest: the earliest end (the index's) is what the copy is locked until.
    index_until = bucket.head_object(Key=result.pointer.key, VersionId=result.pointer.version_id)[
        "ObjectLockRetainUntilDate"
    ]
    later = index_until + dt.timedelta(days=30)
    bucket.put_object_retention(
        Key=bundle.key, VersionId=bundle.version_id, Retention={"Mode": "COMPLIANCE", "RetainUntilDate": later}
    )
    report = verify_s3(bucket, result.pointer, result.manifest)
    assert report.ok and report.retain_until == index_until


def test_a_local_folder_says_no_lock_applies(model: Path) -> None:
    report = verify_folder(model, digest_folder(model))
    assert report.ok and report.files == 3 and report.lock() == "a local folder: no lock applies"
    doc = report.to_json()
    assert (doc["copy"], doc["lock_mode"], doc["retain_until"], doc["warnings"]) == ("folder", None, None, [])


@pytest.mark.parametrize("what", ["index", "signature bundle"])
def test_a_delete_marker_over_the_index_or_bundle_key_is_a_warning_not_a_failure(
    what: str, model: Path, tmp_path: Path
) -> None:
    bucket = VersionedBucket()
    result = anchor(bucket, model, tmp_path)
    assert result.index.bundle is not None
    key = result.pointer.key if what == "index" else result.index.bundle.key
    bucket.delete_object(Key=key)
    report = verify_s3(bucket, result.pointer, result.manifest)
    assert report.ok and report.unprotected == [] and report.changed == []
    assert report.warnings == [
        f"a delete marker over the {what} key {key}: a plain GET of the key fails "
        "(reads by version id, as here, are unaffected)"
    ]
    assert report.to_json()["warnings"] == report.warnings


def test_a_newer_version_over_the_index_key_is_a_warning_naming_both_versions(model: Path, tmp_path: Path) -> None:
    bucket = VersionedBucket()
    result = anchor(bucket, model, tmp_path)
    p = result.pointer
    newer = bucket.put_object(Key=p.key, Body=b'{"forged": true}', ObjectLockMode="COMPLIANCE")["VersionId"]
    report = verify_s3(bucket, p, result.manifest)
    assert report.ok
    assert report.warnings == [
        f"a newer version {newer} over the index key {p.key}: a plain GET of the key returns it, not version "
        f"{p.version_id} (reads by version id, as here, are unaffected)"
    ]
    # Both at once: one warning per key, the newest state of each.
    bucket.delete_object(Key=result.index.bundle.key)  # type: ignore[union-attr]
    assert [w.split(":")[0] for w in verify_s3(bucket, p, result.manifest).warnings] == [
        f"a newer version {newer} over the index key {p.key}",
        f"a delete marker over the signature bundle key {result.index.bundle.key}",  # type: ignore[union-attr]
    ]


def test_a_newer_version_with_the_same_bytes_is_no_warning(model: Path, tmp_path: Path) -> None:
    bucket = VersionedBucket()
    result = anchor(bucket, model, tmp_path)
    p = result.pointer
    same = bucket.get_object(Key=p.key, VersionId=p.version_id)["Body"].read()
    head = bucket.head_object(Key=p.key, VersionId=p.version_id)
    bucket.put_object(Key=p.key, Body=same, ChecksumSHA256=head["ChecksumSHA256"])
    assert verify_s3(bucket, p, result.manifest).warnings == []  # a plain GET gives the very bytes


def test_a_chunk_key_answering_otherwise_is_a_warning_once_per_key(model: Path, tmp_path: Path) -> None:
    bucket = VersionedBucket()
    result = anchor(bucket, model, tmp_path)
    files = {f.path: f for f in result.index.files}
    chunk = files["data/model.pkl"].chunks[1]
    newer = bucket.put_object(Key=chunk.key, Body=b"other bytes", ObjectLockMode="COMPLIANCE")["VersionId"]
    marked = files["requirements.txt"].chunks[0]
    bucket.delete_object(Key=marked.key)
    report = verify_s3(bucket, result.pointer, result.manifest)
    # The versions the index names are intact and locked: the copy verifies; a plain GET would not give them.
    assert report.ok and report.changed == [] and report.reasons == {} and report.unprotected == []
    unaffected = " (reads by version id, as here, are unaffected)"
    assert sorted(report.warnings) == sorted(
        [
            f"a newer version {newer} over the chunk key {chunk.key}: a plain GET of the key "
            f"returns it, not version {chunk.version_id}{unaffected}",
            f"a delete marker over the chunk key {marked.key}: a plain GET of the key fails{unaffected}",
        ]
    )
    assert report.to_json()["warnings"] == report.warnings


def test_a_chunk_version_with_other_bytes_fails_and_says_why(model: Path, tmp_path: Path) -> None:
    bucket = VersionedBucket()
    result = anchor(bucket, model, tmp_path)
    chunk = {f.path: f for f in result.index.files}["data/model.pkl"].chunks[0]
    stored = bucket.versions[chunk.key][-1]
    stored["Body"] = b"x" + stored["Body"][1:]  # a fake can rewrite a locked version; MinIO cannot
    report = verify_s3(bucket, result.pointer, result.manifest)
    assert not report.ok and report.changed == ["data/model.pkl"] and list(report.reasons) == ["data/model.pkl"]


def test_an_unreadable_index_reports_no_coverage(model: Path, tmp_path: Path) -> None:
    bucket = VersionedBucket()
    result = anchor(bucket, model, tmp_path)
    gone = StoragePointer("anchored", result.pointer.key, "v9999", result.pointer.sha256)
    report = verify_s3(bucket, gone, result.manifest)
    assert not report.ok and report.covered().startswith("not read in full (cannot read the index")
    assert report.lock() == "locks not checked"


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 bytes"),
        (1, "1 byte"),
        (999, "999 bytes"),
        (1000, "1.0 KB"),
        (59_400, "59 KB"),
        (999_499, "999 KB"),
        (999_500, "1.0 MB"),
        (12_583_035, "13 MB"),
        (2_147_483_648, "2.1 GB"),
    ],
)
def test_sizes_read_as_people_read_them(n: int, text: str) -> None:
    assert human_size(n) == text

"""Anchoring model folders in the locked bucket and verifying them, against a real MinIO."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from modelledger.mlops.store.digest import ModelTreeError, digest_folder
from modelledger.mlops.store.s3server import S3Server, s3_client
from modelledger.mlops.store.upload import ModelUploader, StoragePointer
from modelledger.mlops.store.verify import verify_s3

pytestmark = pytest.mark.integration

STAGING = "modelledger-staging-test"


@pytest.fixture(scope="module")
def client(s3_server: S3Server):
    return s3_client(s3_server.settings)


@pytest.fixture(scope="module")
def uploader(client, s3_server: S3Server) -> ModelUploader:
    # Short per-object retention keeps the test bucket's locks brief; part size small to exercise multipart.
    return ModelUploader(
        client, s3_server.settings.bucket, STAGING, retention=dt.timedelta(seconds=30), part_size=5 * 1024 * 1024
    )


@pytest.fixture
def model(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "data").mkdir(parents=True)
    (root / "MLmodel").write_text("flavors:\n  sklearn: {}\n")
    (root / "data" / "model.pkl").write_bytes(os.urandom(12 * 1024 * 1024 + 123))  # 3 parts
    (root / "requirements.txt").write_text("scikit-learn==1.6.1\n")
    return root


def _versions(client, bucket: str, prefix: str) -> int:
    return len(client.list_object_versions(Bucket=bucket, Prefix=prefix).get("Versions", []))


def test_upload_anchors_every_file_locked_with_checksums(
    client, uploader: ModelUploader, model: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle.json"
    bundle.write_text('{"signature": "stand-in"}')
    result = uploader.upload(model, bundle=bundle, progress=False)
    manifest = digest_folder(model)
    assert result.created and result.manifest == manifest
    p = result.pointer
    assert p.key == f"models/{manifest.manifest_digest}/index.json" and p.version_id
    index = json.loads(client.get_object(Bucket=p.bucket, Key=p.key, VersionId=p.version_id)["Body"].read())
    assert index["manifestDigest"] == manifest.manifest_digest and index["modelDigest"] == manifest.model_digest
    assert set(index["objects"]) == {"MLmodel", "data/model.pkl", "requirements.txt"}
    objects = {f"models/{manifest.manifest_digest}/files/{path}": v for path, v in index["objects"].items()}
    objects[index["bundle"]["key"]] = index["bundle"]["versionId"]
    assert index["bundle"]["key"] == f"models/{manifest.manifest_digest}/model.sig.json"
    for key, version in objects.items():
        head = client.head_object(Bucket=p.bucket, Key=key, VersionId=version, ChecksumMode="ENABLED")
        assert head["ObjectLockMode"] == "COMPLIANCE"
        assert head["ObjectLockRetainUntilDate"] > dt.datetime.now(dt.UTC)
        assert head.get("ChecksumSHA256"), f"{key} has no SHA-256 checksum"
    # A locked version cannot be deleted (AWS answers AccessDenied, MinIO InvalidRequest "WORM protected").
    with pytest.raises(ClientError) as info:
        client.delete_object(Bucket=p.bucket, Key=p.key, VersionId=p.version_id)
    assert info.value.response["Error"]["Code"] in ("AccessDenied", "InvalidRequest")
    assert client.head_object(Bucket=p.bucket, Key=p.key, VersionId=p.version_id)["VersionId"] == p.version_id
    assert verify_s3(client, p, manifest).ok
    # Nothing stays in the staging bucket.
    assert client.list_objects_v2(Bucket=STAGING).get("KeyCount", 0) == 0


def test_identical_reupload_is_a_no_op(client, uploader: ModelUploader, model: Path) -> None:
    first = uploader.upload(model, progress=False)
    prefix = f"models/{first.manifest.manifest_digest}/"
    before = _versions(client, first.pointer.bucket, prefix)
    again = uploader.upload(model, progress=False)
    assert not again.created and again.pointer == first.pointer
    assert _versions(client, first.pointer.bucket, prefix) == before


def test_s3_verify_names_differences(client, uploader: ModelUploader, model: Path) -> None:
    result = uploader.upload(model, progress=False)
    p = result.pointer
    prefix = p.key.rsplit("/", 1)[0] + "/files/"
    client.put_object(
        Bucket=p.bucket,
        Key=prefix + "injected.py",
        Body=b"print('hi')",
        ObjectLockMode="COMPLIANCE",
        ObjectLockRetainUntilDate=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30),
    )
    report = verify_s3(client, p, result.manifest)
    assert report.extra == ["injected.py"] and not report.ok
    # Against what the ledger says: another expected digest for one file is a change.
    (model / "requirements.txt").write_text("scikit-learn==1.5.0\n")
    report = verify_s3(client, p, digest_folder(model))
    assert report.changed == ["requirements.txt"]
    forged = StoragePointer(p.bucket, p.key, p.version_id, "0" * 64)
    assert "does not match the pointer's sha256" in verify_s3(client, forged, result.manifest).error


def test_unsafe_tree_uploads_nothing(client, uploader: ModelUploader, model: Path, tmp_path: Path) -> None:
    (tmp_path / "outside.txt").write_text("secret")
    (model / "link").symlink_to(tmp_path / "outside.txt")
    before = client.list_objects_v2(Bucket=uploader.bucket).get("KeyCount", 0)
    with pytest.raises(ModelTreeError, match="link: symlink points outside the model folder"):
        uploader.upload(model, progress=False)
    assert client.list_objects_v2(Bucket=uploader.bucket).get("KeyCount", 0) == before


def test_a_wrong_part_checksum_is_rejected(client, uploader: ModelUploader) -> None:
    uploader.ensure_staging_bucket()
    up = client.create_multipart_upload(Bucket=STAGING, Key="bad", ChecksumAlgorithm="SHA256")
    with pytest.raises(ClientError) as info:
        client.upload_part(
            Bucket=STAGING,
            Key="bad",
            UploadId=up["UploadId"],
            PartNumber=1,
            Body=b"x" * 1024,
            ChecksumSHA256="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
    assert info.value.response["Error"]["Code"] in ("BadDigest", "XAmzContentChecksumMismatch", "InvalidRequest")
    client.abort_multipart_upload(Bucket=STAGING, Key="bad", UploadId=up["UploadId"])


def test_a_later_forged_index_version_is_ignored_on_reupload(client, uploader: ModelUploader, model: Path) -> None:
    first = uploader.upload(model, progress=False)
    client.put_object(
        Bucket=first.pointer.bucket,
        Key=first.pointer.key,
        Body=b'{"objects":{}}',
        ObjectLockMode="COMPLIANCE",
        ObjectLockRetainUntilDate=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30),
    )
    again = uploader.upload(model, progress=False)
    assert again.pointer == first.pointer and not again.created


def test_s3_verify_catches_new_versions_deletions_and_renames(client, uploader: ModelUploader, model: Path) -> None:
    result = uploader.upload(model, progress=False)
    p = result.pointer
    prefix = p.key.rsplit("/", 1)[0] + "/files/"
    lock = {
        "ObjectLockMode": "COMPLIANCE",
        "ObjectLockRetainUntilDate": dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30),
    }
    # A flipped byte can only arrive as a newer version of the key; the locked one stays.
    data = bytearray(client.get_object(Bucket=p.bucket, Key=prefix + "MLmodel")["Body"].read())
    data[0] ^= 0x01
    client.put_object(Bucket=p.bucket, Key=prefix + "MLmodel", Body=bytes(data), **lock)
    # A removal leaves a delete marker; a rename is a copy under another name plus a removal.
    client.delete_object(Bucket=p.bucket, Key=prefix + "requirements.txt")
    client.copy_object(
        Bucket=p.bucket,
        Key=prefix + "weights.pkl",
        CopySource={"Bucket": p.bucket, "Key": prefix + "data/model.pkl"},
        **lock,
    )
    client.delete_object(Bucket=p.bucket, Key=prefix + "data/model.pkl")
    report = verify_s3(client, p, result.manifest)
    assert report.changed == ["MLmodel", "data/model.pkl", "requirements.txt"]
    assert report.extra == ["weights.pkl"] and not report.ok


def test_concurrent_identical_uploads_share_one_index(uploader: ModelUploader, model: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    (model / "unique.txt").write_text(os.urandom(8).hex())
    with ThreadPoolExecutor(max_workers=2) as pool:
        a, b = pool.map(lambda _: uploader.upload(model, progress=False), range(2))
    assert a.pointer == b.pointer
    assert sorted([a.created, b.created]) == [False, True]


def test_the_bundle_is_recorded_apart_from_the_files(
    client, uploader: ModelUploader, model: Path, tmp_path: Path
) -> None:
    (model / "model.sig.json").write_text("a model file that happens to have this name")
    bundle = tmp_path / "sig.json"
    bundle.write_text('{"bundle": true}')
    result = uploader.upload(model, bundle=bundle, progress=False)
    p = result.pointer
    index = json.loads(client.get_object(Bucket=p.bucket, Key=p.key, VersionId=p.version_id)["Body"].read())
    assert "model.sig.json" in index["objects"] and index["bundle"]["key"].endswith("/model.sig.json")
    assert verify_s3(client, p, result.manifest).ok


def test_large_files_are_copied_in_ranges_and_verify(client, s3_server: S3Server, model: Path) -> None:
    # A copy limit of 6 MiB sends the 12 MiB file through the ranged multipart copy used above 5 GiB.
    ranged = ModelUploader(
        client,
        s3_server.settings.bucket,
        STAGING,
        retention=dt.timedelta(seconds=30),
        part_size=5 * 1024 * 1024,
        copy_limit=6 * 1024 * 1024,
        copy_part=5 * 1024 * 1024,
    )
    (model / "salt.txt").write_text(os.urandom(8).hex())
    result = ranged.upload(model, progress=False)
    assert result.created and verify_s3(client, result.pointer, result.manifest).ok
    key = result.pointer.key.rsplit("/", 1)[0] + "/files/data/model.pkl"
    head = client.head_object(Bucket=result.pointer.bucket, Key=key, VersionId=result.objects["data/model.pkl"])
    assert head["ObjectLockMode"] == "COMPLIANCE"


def test_the_staging_bucket_expires_leftovers(client, uploader: ModelUploader) -> None:
    uploader.ensure_staging_bucket()
    rules = client.get_bucket_lifecycle_configuration(Bucket=STAGING)["Rules"]
    assert rules[0]["Expiration"]["Days"] == 1 and rules[0]["Status"] == "Enabled"

"""Anchoring model folders in the locked bucket, verifying and fetching them, against a real MinIO."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from modelledger.mlops.store.digest import Manifest, ModelTreeError, digest_folder
from modelledger.mlops.store.fetch import fetch_model
from modelledger.mlops.store.index import AnchoredIndex, StoragePointer, StoreError, read_index
from modelledger.mlops.store.s3server import S3Server, s3_client
from modelledger.mlops.store.source import SourceError, local_folder
from modelledger.mlops.store.upload import ModelUploader, UploadError, b64
from modelledger.mlops.store.verify import verify_s3

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
CHUNK = 5 * MiB


@pytest.fixture(scope="module")
def client(s3_server: S3Server):
    return s3_client(s3_server.settings)


@pytest.fixture(scope="module")
def uploader(client, s3_server: S3Server) -> ModelUploader:
    # Short retention keeps the test bucket's locks brief; small chunks so that a file spans several.
    return ModelUploader(client, s3_server.settings.bucket, retention=dt.timedelta(seconds=30), chunk_size=CHUNK)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "data").mkdir(parents=True)
    (root / "MLmodel").write_text("flavors:\n  sklearn: {}\n" + os.urandom(8).hex())
    (root / "data" / "model.pkl").write_bytes(os.urandom(12 * MiB + 123))  # 3 chunks
    (root / "requirements.txt").write_text("scikit-learn==1.6.1\n")
    (root / "empty.txt").write_bytes(b"")
    return root


def _versions(client, bucket: str) -> list[tuple[str, str]]:
    pages = client.get_paginator("list_object_versions").paginate(Bucket=bucket)
    return sorted((v["Key"], v["VersionId"]) for page in pages for v in page.get("Versions", []))


def _lock(seconds: int = 30) -> dict:
    return {
        "ObjectLockMode": "COMPLIANCE",
        "ObjectLockRetainUntilDate": dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds),
    }


def test_upload_stores_locked_content_addressed_chunks_and_an_index(
    client, uploader: ModelUploader, model: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle.json"
    bundle.write_text('{"signature": "stand-in"}')
    result = uploader.upload(model, bundle=bundle, progress=False)
    manifest = digest_folder(model)
    assert result.created and result.manifest == manifest
    p = result.pointer
    assert p.key == f"models/{manifest.manifest_digest}/index.json" and p.version_id
    index = read_index(client, p)
    assert index == result.index and index.manifest == manifest
    by_path = {f.path: f for f in index.files}
    big = by_path["data/model.pkl"]
    assert [c.size for c in big.chunks] == [CHUNK, CHUNK, 2 * MiB + 123]
    assert by_path["empty.txt"].chunks == ()
    # A file of one chunk is stored under its own SHA-256.
    assert by_path["requirements.txt"].chunks[0].key == "blobs/sha256/" + by_path["requirements.txt"].sha256
    assert index.bundle is not None and index.bundle.sha256 == hashlib.sha256(bundle.read_bytes()).hexdigest()
    refs = [c for f in index.files for c in f.chunks] + [index.bundle]
    pins = [(c.key, c.version_id, c.sha256) for c in refs] + [(p.key, p.version_id, p.sha256)]
    for key, version, sha in pins:
        head = client.head_object(Bucket=p.bucket, Key=key, VersionId=version, ChecksumMode="ENABLED")
        assert head["ObjectLockMode"] == "COMPLIANCE", key
        assert head["ObjectLockRetainUntilDate"] > dt.datetime.now(dt.UTC)
        assert head["ChecksumSHA256"] == b64(bytes.fromhex(sha)), f"{key} lacks its SHA-256 checksum"
    # A locked version can be neither deleted (AWS answers AccessDenied, MinIO InvalidRequest) nor unlocked sooner.
    for key, version, _ in pins[:1] + pins[-1:]:
        with pytest.raises(ClientError) as info:
            client.delete_object(Bucket=p.bucket, Key=key, VersionId=version)
        assert info.value.response["Error"]["Code"] in ("AccessDenied", "InvalidRequest")
        with pytest.raises(ClientError):
            client.put_object_retention(
                Bucket=p.bucket,
                Key=key,
                VersionId=version,
                Retention={"Mode": "COMPLIANCE", "RetainUntilDate": dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)},
            )
        assert client.head_object(Bucket=p.bucket, Key=key, VersionId=version)["VersionId"] == version
    assert verify_s3(client, p, manifest).ok


def test_identical_reupload_writes_nothing(client, uploader: ModelUploader, model: Path) -> None:
    first = uploader.upload(model, progress=False)
    before = _versions(client, uploader.bucket)
    again = uploader.upload(model, progress=False)
    assert not again.created and again.pointer == first.pointer
    assert _versions(client, uploader.bucket) == before


def test_a_shared_file_is_stored_once_and_its_lock_extended(
    client, uploader: ModelUploader, model: Path, tmp_path: Path
) -> None:
    first = uploader.upload(model, progress=False)
    shared = next(f for f in first.index.files if f.path == "data/model.pkl")
    other = tmp_path / "other"
    other.mkdir()
    os.link(model / "data" / "model.pkl", other / "weights.pkl")
    (other / "config.json").write_text('{"retrained": true}')
    longer = ModelUploader(client, uploader.bucket, retention=dt.timedelta(seconds=90), chunk_size=CHUNK)
    before = _versions(client, uploader.bucket)
    second = longer.upload(other, progress=False)
    reused = next(f for f in second.index.files if f.path == "weights.pkl")
    assert reused.chunks == shared.chunks  # same keys and versions: nothing sent again
    new = set(_versions(client, uploader.bucket)) - set(before)
    assert {k for k, _ in new} == {
        second.pointer.key,
        "blobs/sha256/" + hashlib.sha256(b'{"retrained": true}').hexdigest(),
    }
    for c in reused.chunks:
        head = client.head_object(Bucket=uploader.bucket, Key=c.key, VersionId=c.version_id)
        assert head["ObjectLockRetainUntilDate"] > dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)


def test_s3_verify_compares_with_the_expected_manifest(client, uploader: ModelUploader, model: Path) -> None:
    result = uploader.upload(model, progress=False)
    p = result.pointer
    m = result.manifest
    # What the ledger expects differs: another digest for one file, a file the copy lacks, a file it has extra.
    (model / "requirements.txt").write_text("scikit-learn==1.5.0\n")
    (model / "tokenizer.json").write_text("{}")
    (model / "empty.txt").unlink()
    report = verify_s3(client, p, digest_folder(model))
    assert (report.changed, report.missing, report.extra) == (["requirements.txt"], ["tokenizer.json"], ["empty.txt"])
    forged = StoragePointer(p.bucket, p.key, p.version_id, "0" * 64)
    assert "does not match the pointer's sha256" in verify_s3(client, forged, m).error
    gone = StoragePointer(p.bucket, p.key, "no-such-version", p.sha256)
    assert "cannot read the index" in verify_s3(client, gone, m).error


def test_a_rewritten_index_shows_renamed_added_and_removed_files(client, uploader: ModelUploader, model: Path) -> None:
    result = uploader.upload(model, progress=False)
    p = result.pointer
    files = {f.path: f for f in result.index.files}
    # Someone writes another index (a later version of the key) and points at it: MLmodel renamed, requirements
    # dropped, a stray file added. Against the ledger's manifest every difference is named.
    stray = dataclasses.replace(files["empty.txt"], path="extra.py")
    renamed = dataclasses.replace(files["MLmodel"], path="MLmodel.bak")
    forged = AnchoredIndex((renamed, files["data/model.pkl"], files["empty.txt"], stray), CHUNK)
    body = forged.to_bytes()
    resp = client.put_object(Bucket=p.bucket, Key=p.key, Body=body, **_lock())
    pointer = StoragePointer(p.bucket, p.key, resp["VersionId"], hashlib.sha256(body).hexdigest())
    report = verify_s3(client, pointer, result.manifest)
    assert report.missing == ["MLmodel", "requirements.txt"]
    assert report.extra == ["MLmodel.bak", "extra.py"] and report.changed == [] and not report.ok
    # The recorded pointer still verifies: the first index is locked and unchanged.
    assert verify_s3(client, p, result.manifest).ok


def test_s3_verify_catches_a_flipped_byte_and_a_delete_marker_on_a_chunk_key(
    client, uploader: ModelUploader, model: Path
) -> None:
    (model / "salt.txt").write_text(os.urandom(8).hex())
    result = uploader.upload(model, progress=False)
    p = result.pointer
    files = {f.path: f for f in result.index.files}
    # The locked versions cannot change; what can is a newer version (or a delete marker) on the same key, which
    # a reader that ignores version ids would get.
    chunk = files["data/model.pkl"].chunks[1]
    data = bytearray(client.get_object(Bucket=p.bucket, Key=chunk.key, VersionId=chunk.version_id)["Body"].read())
    data[100] ^= 0x01
    client.put_object(Bucket=p.bucket, Key=chunk.key, Body=bytes(data), **_lock())
    client.delete_object(Bucket=p.bucket, Key=files["salt.txt"].chunks[0].key)
    report = verify_s3(client, p, result.manifest)
    assert report.changed == ["data/model.pkl", "salt.txt"] and not report.ok
    # The next upload of the same bytes does not reuse the tampered latest version.
    again = uploader.upload(model, progress=False)
    assert again.pointer == p


def test_unsafe_tree_uploads_nothing(client, uploader: ModelUploader, model: Path, tmp_path: Path) -> None:
    (tmp_path / "outside.txt").write_text("secret")
    (model / "link").symlink_to(tmp_path / "outside.txt")
    before = _versions(client, uploader.bucket)
    with pytest.raises(ModelTreeError, match="link: symlink points outside the model folder"):
        uploader.upload(model, progress=False)
    assert _versions(client, uploader.bucket) == before


def test_a_wrong_checksum_is_rejected(client, uploader: ModelUploader) -> None:
    key = "blobs/sha256/" + hashlib.sha256(b"x" * 1024).hexdigest()
    with pytest.raises(ClientError) as info:
        client.put_object(
            Bucket=uploader.bucket, Key=key, Body=b"x" * 1024, ChecksumSHA256=b64(hashlib.sha256(b"y").digest())
        )
    assert info.value.response["Error"]["Code"] in ("BadDigest", "XAmzContentChecksumMismatch", "InvalidRequest")
    with pytest.raises(ClientError):
        client.head_object(Bucket=uploader.bucket, Key=key)


class _ConnectionLostFor:
    """The real client, except that storing one blob fails as if the connection dropped."""

    def __init__(self, client, key: str) -> None:
        self._client = client
        self._key = key

    def put_object(self, **kw):
        if kw["Key"] == self._key:
            raise EndpointConnectionError(endpoint_url="https://127.0.0.1 (simulated loss)")
        return self._client.put_object(**kw)

    def __getattr__(self, name: str):
        return getattr(self._client, name)


def test_a_failed_upload_writes_no_index_and_the_retry_reuses_what_was_sent(
    client, uploader: ModelUploader, model: Path
) -> None:
    last = model / "zz-last.bin"
    last.write_bytes(os.urandom(1024))
    key = "blobs/sha256/" + hashlib.sha256(last.read_bytes()).hexdigest()
    flaky = ModelUploader(_ConnectionLostFor(client, key), uploader.bucket, uploader.retention, chunk_size=CHUNK)
    with pytest.raises(UploadError, match="simulated loss"):
        flaky.upload(model, progress=False)
    sent = _versions(client, uploader.bucket)
    manifest = digest_folder(model)
    assert manifest.manifest_digest not in {k.split("/")[1] for k, _ in sent if k.startswith("models/")}
    result = uploader.upload(model, progress=False)
    assert result.created and verify_s3(client, result.pointer, manifest).ok
    new = {k for k, _ in set(_versions(client, uploader.bucket)) - set(sent)}
    # The retry sends what the failure stopped (the lost blob at least) and nothing that was already stored.
    assert {result.pointer.key, key} <= new and not new & {k for k, _ in sent}


def test_a_later_forged_index_version_is_ignored_on_reupload(client, uploader: ModelUploader, model: Path) -> None:
    first = uploader.upload(model, progress=False)
    client.put_object(Bucket=first.pointer.bucket, Key=first.pointer.key, Body=b'{"files": []}', **_lock())
    again = uploader.upload(model, progress=False)
    assert again.pointer == first.pointer and not again.created


def test_concurrent_identical_uploads_share_one_index(uploader: ModelUploader, model: Path) -> None:
    (model / "unique.txt").write_text(os.urandom(8).hex())
    with ThreadPoolExecutor(max_workers=2) as pool:
        a, b = pool.map(lambda _: uploader.upload(model, progress=False), range(2))
    assert a.pointer == b.pointer
    assert sorted([a.created, b.created]) == [False, True]


def test_a_bundle_cannot_be_added_to_an_anchored_copy(uploader: ModelUploader, model: Path, tmp_path: Path) -> None:
    (model / "model.sig.json").write_text("a model file that happens to have this name")
    uploader.upload(model, progress=False)
    bundle = tmp_path / "sig.json"
    bundle.write_text('{"bundle": true}')
    with pytest.raises(UploadError, match="already anchored without a signature bundle"):
        uploader.upload(model, bundle=bundle, progress=False)
    with pytest.raises(UploadError, match="must not be inside the model folder"):
        uploader.upload(model, bundle=model / "model.sig.json", progress=False)


def test_fetch_writes_the_exact_files_and_refuses_another_manifest(
    client, uploader: ModelUploader, model: Path, tmp_path: Path
) -> None:
    result = uploader.upload(model, progress=False)
    out = tmp_path / "fetched"
    assert fetch_model(client, result.pointer, out, result.manifest) == result.manifest
    assert digest_folder(out) == result.manifest
    assert (out / "data" / "model.pkl").read_bytes() == (model / "data" / "model.pkl").read_bytes()
    with pytest.raises(FileExistsError):
        fetch_model(client, result.pointer, out)
    other = Manifest(result.manifest.files[1:])
    with pytest.raises(StoreError, match="describes manifest"):
        fetch_model(client, result.pointer, tmp_path / "refused", other)
    assert not (tmp_path / "refused").exists()


def test_an_mlflow_artifact_uri_is_fetched_privately_and_anchored(
    client, uploader: ModelUploader, model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    experiment = mlflow.create_experiment("store-source", artifact_location=(tmp_path / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_artifacts(str(model), "model")
    with local_folder(f"runs:/{run.info.run_id}/model", scratch=scratch) as folder:
        assert folder.is_relative_to(scratch) and (folder.parent.parent.stat().st_mode & 0o777) == 0o700
        result = uploader.upload(folder, progress=False)
    assert result.manifest == digest_folder(model) and verify_s3(client, result.pointer, result.manifest).ok
    assert list(scratch.iterdir()) == []  # the private copy is gone
    with (
        pytest.raises(SourceError, match="cannot fetch runs:/0123456789abcdef/model from MLflow"),
        local_folder("runs:/0123456789abcdef/model", scratch=scratch),
    ):
        pass
    assert list(scratch.iterdir()) == []
    with local_folder(model) as same:
        assert same == model


def test_the_store_cli_uploads_verifies_and_exits_non_zero_on_a_mismatch(
    s3_server: S3Server, model: Path, tmp_path: Path
) -> None:
    import json
    import subprocess
    import sys

    env = {
        **os.environ,
        "MODELLEDGER_STATE_DIR": str(s3_server.settings.state_dir),
        "MODELLEDGER_S3_PORT": str(s3_server.settings.port),
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "modelledger.mlops.cli", "store", *args]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)

    first = cli("upload", str(model), "--json")
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    assert doc["created"] is True and doc["manifest_digest"] == digest_folder(model).manifest_digest
    again = json.loads(cli("upload", str(model), "--json").stdout)
    assert again["created"] is False and again["pointer"] == doc["pointer"]
    manifest = tmp_path / "m.json"
    assert cli("digest", str(model), "--manifest-out", str(manifest)).returncode == 0
    assert cli("verify", str(model), "--manifest", str(manifest)).returncode == 0
    with (model / "data" / "model.pkl").open("r+b") as f:
        f.seek(7)
        byte = f.read(1)
        f.seek(7)
        f.write(bytes([byte[0] ^ 1]))
    bad = cli("verify", str(model), "--manifest", str(manifest), "--json")
    assert bad.returncode == 1 and json.loads(bad.stdout)["changed"] == ["data/model.pkl"]
    missing = cli("upload", str(tmp_path / "nope"), "--json")
    assert missing.returncode == 1 and "not a folder" in json.loads(missing.stdout)["error"]

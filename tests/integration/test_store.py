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

from modelledger.mlops.servers.minio import S3Server
from modelledger.mlops.servers.minio_root import root_client
from modelledger.mlops.store.copy_checks import verify_s3
from modelledger.mlops.store.digest import Manifest, ModelTreeError, digest_folder
from modelledger.mlops.store.fetch import fetch_model
from modelledger.mlops.store.index import AnchoredIndex, StoragePointer, StoreError, read_index
from modelledger.mlops.store.locked_writes import b64
from modelledger.mlops.store.s3_access import s3_client
from modelledger.mlops.store.source import SourceError, list_s3_tree, local_folder
from modelledger.mlops.store.upload import ModelUploader, UploadError
from modelledger.runtime.settings import S3User

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
CHUNK = 5 * MiB


@pytest.fixture(scope="module")
def client(s3_server: S3Server):
    """The root: the tests also tamper with stored objects."""
    return root_client(s3_server.settings)


@pytest.fixture(scope="module")
def uploader(s3_server: S3Server) -> ModelUploader:
    # As the bridge (its policy allows what uploads need, no delete). Short retention keeps the test
    # bucket's locks brief; small chunks so that a file spans several.
    bridge = s3_client(s3_server.settings, user=S3User.BRIDGE)
    return ModelUploader(bridge, s3_server.settings.bucket, retention=dt.timedelta(seconds=30), chunk_size=CHUNK)


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
    longer = ModelUploader(uploader.client, uploader.bucket, retention=dt.timedelta(seconds=90), chunk_size=CHUNK)
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


def test_s3_verify_warns_of_a_flipped_byte_and_a_delete_marker_over_chunk_keys(
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
    tampered = client.put_object(Bucket=p.bucket, Key=chunk.key, Body=bytes(data), **_lock())["VersionId"]
    client.delete_object(Bucket=p.bucket, Key=files["salt.txt"].chunks[0].key)
    report = verify_s3(client, p, result.manifest)
    # The recorded versions themselves are intact and locked: the copy verifies, with a warning per key.
    assert report.ok and report.changed == [] and report.unprotected == []
    assert sorted(w.split(": a plain GET")[0] for w in report.warnings) == sorted(
        [
            f"a newer version {tampered} over the chunk key {chunk.key}",
            f"a delete marker over the chunk key {files['salt.txt'].chunks[0].key}",
        ]
    )
    # A new model with the same weights does not reuse the tampered latest version of that chunk key.
    (model / "salt.txt").write_text("another model")
    other = uploader.upload(model, progress=False)
    reused = next(f for f in other.index.files if f.path == "data/model.pkl").chunks[1]
    assert reused.key == chunk.key and reused.version_id not in (tampered, chunk.version_id)
    assert verify_s3(client, other.pointer, other.manifest).changed == []


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


def test_a_signed_upload_gets_its_own_index_version(
    client, uploader: ModelUploader, model: Path, tmp_path: Path
) -> None:
    (model / "model.sig.json").write_text("a model file that happens to have this name")
    plain = uploader.upload(model, progress=False)
    bundle = tmp_path / "sig.json"
    bundle.write_text('{"bundle": true}')
    signed = uploader.upload(model, bundle=bundle, progress=False)
    assert signed.created and signed.pointer.key == plain.pointer.key
    assert signed.pointer.version_id != plain.pointer.version_id and signed.index.bundle is not None
    assert uploader.upload(model, progress=False).pointer == plain.pointer
    assert uploader.upload(model, bundle=bundle, progress=False).pointer == signed.pointer
    assert verify_s3(client, signed.pointer, signed.manifest).ok and verify_s3(client, plain.pointer, plain.manifest).ok
    with pytest.raises(UploadError, match="must not be inside the model folder"):
        uploader.upload(model, bundle=model / "model.sig.json", progress=False)


def test_junk_or_unsound_index_versions_do_not_block_anchoring(
    client, uploader: ModelUploader, model: Path, tmp_path: Path
) -> None:
    manifest = digest_folder(model)
    key = f"models/{manifest.manifest_digest}/index.json"
    # Junk written first under the key, then a well-formed index naming chunk versions that do not exist.
    client.put_object(Bucket=uploader.bucket, Key=key, Body=b"{}", **_lock())
    bogus = AnchoredIndex(
        tuple(
            dataclasses.replace(f, chunks=tuple(dataclasses.replace(c, version_id="bogus") for c in f.chunks))
            for f in ModelUploader(client, uploader.bucket, uploader.retention, chunk_size=CHUNK)
            .upload(tmp_path.joinpath("unused").mkdir() or model, progress=False)
            .index.files
        ),
        CHUNK,
    )
    client.put_object(Bucket=uploader.bucket, Key=key, Body=bogus.to_bytes(), **_lock())
    result = uploader.upload(model, progress=False)
    assert verify_s3(client, result.pointer, manifest).ok
    assert uploader.upload(model, progress=False).pointer == result.pointer


def test_an_expired_copy_is_anchored_again(client, uploader: ModelUploader, s3_server: S3Server, model: Path) -> None:
    import time

    (model / "unique.txt").write_text(os.urandom(16).hex())  # a chunk no other test shares (and extends)
    brief = ModelUploader(uploader.client, s3_server.settings.bucket, retention=dt.timedelta(seconds=2), chunk_size=CHUNK)
    first = brief.upload(model, progress=False)
    time.sleep(3)
    # Retention over: a chunk version can now be deleted, and the old copy is no longer whole.
    gone = next(f for f in first.index.files if f.path == "unique.txt").chunks[0]
    client.delete_object(Bucket=first.pointer.bucket, Key=gone.key, VersionId=gone.version_id)
    report = verify_s3(client, first.pointer, first.manifest)
    assert report.missing == ["unique.txt"] and any("is gone" in u for u in report.unprotected)
    again = ModelUploader(uploader.client, s3_server.settings.bucket, retention=dt.timedelta(seconds=30), chunk_size=CHUNK)
    second = again.upload(model, progress=False)
    assert second.created and second.pointer.version_id != first.pointer.version_id
    assert verify_s3(client, second.pointer, second.manifest).ok


def test_an_empty_folder_is_not_anchored(uploader: ModelUploader, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UploadError, match="holds no files"):
        uploader.upload(tmp_path / "empty", progress=False)


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
    # A file whose chunks hold other bytes: nothing appears under the name, nothing is left behind.
    pair = tmp_path / "pair"
    pair.mkdir()
    (pair / "a.txt").write_text("aaaa" + os.urandom(4).hex())
    (pair / "b.txt").write_text("bbbb" + os.urandom(4).hex())
    files = {f.path: f for f in uploader.upload(pair, progress=False).index.files}
    forged = AnchoredIndex((dataclasses.replace(files["a.txt"], chunks=files["b.txt"].chunks), files["b.txt"]), CHUNK)
    body = forged.to_bytes()
    p = result.pointer
    version = client.put_object(Bucket=p.bucket, Key=p.key, Body=body, **_lock())["VersionId"]
    pointer = StoragePointer(p.bucket, p.key, version, hashlib.sha256(body).hexdigest())
    with pytest.raises(StoreError, match=r"a\.txt: the fetched bytes do not match"):
        fetch_model(client, pointer, tmp_path / "bad")
    assert not (tmp_path / "bad").exists() and not list(tmp_path.glob(".bad.partial-*"))


def test_an_mlflow_artifact_uri_is_fetched_privately_and_anchored(
    client, uploader: ModelUploader, model: Path, tmp_path: Path
) -> None:
    import mlflow

    # An explicit tracking URI: another test module may have pointed MLflow's process-wide setting elsewhere.
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.create_experiment("store-source", artifact_location=(tmp_path / "artifacts").as_uri())
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_artifacts(str(model), "model")
    finally:
        mlflow.set_tracking_uri(previous)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with local_folder(f"runs:/{run.info.run_id}/model", scratch=scratch, tracking_uri=uri) as folder:
        assert folder.is_relative_to(scratch) and (folder.parent.parent.stat().st_mode & 0o777) == 0o700
        result = uploader.upload(folder, progress=False)
    assert result.manifest == digest_folder(model) and verify_s3(client, result.pointer, result.manifest).ok
    assert list(scratch.iterdir()) == []  # the private copy is gone
    with (
        pytest.raises(SourceError, match="cannot fetch runs:/0123456789abcdef/model from MLflow"),
        local_folder("runs:/0123456789abcdef/model", scratch=scratch, tracking_uri=uri),
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


class _BeforeIndexPut:
    """The real client; just before the first conditional index PUT, runs ``hook`` (a concurrent writer)."""

    def __init__(self, client, hook) -> None:
        self._client = client
        self._hook = hook

    def put_object(self, **kw):
        if kw.get("IfNoneMatch") and self._hook is not None:
            hook, self._hook = self._hook, None
            hook()
        return self._client.put_object(**kw)

    def __getattr__(self, name: str):
        return getattr(self._client, name)


def test_an_index_written_concurrently_wins_and_is_returned(client, uploader: ModelUploader, model: Path) -> None:
    (model / "race.txt").write_text(os.urandom(8).hex())
    rival: list = []
    racer = ModelUploader(
        _BeforeIndexPut(client, lambda: rival.append(uploader.upload(model, progress=False))),
        uploader.bucket,
        uploader.retention,
        chunk_size=CHUNK,
    )
    result = racer.upload(model, progress=False)  # its conditional PUT meets the rival's index: 412
    assert rival and rival[0].created and not result.created
    assert result.pointer == rival[0].pointer


class _HookOnKey(_BeforeIndexPut):
    """Runs ``hook`` just before the PUT of one key."""

    def __init__(self, client, key: str, hook) -> None:
        super().__init__(client, hook)
        self._key = key

    def put_object(self, **kw):
        if kw["Key"] == self._key and self._hook is not None:
            hook, self._hook = self._hook, None
            hook()
        return self._client.put_object(**kw)


def test_a_file_that_changes_while_it_is_read_is_refused(client, uploader: ModelUploader, model: Path) -> None:
    weights = model / "data" / "model.pkl"
    first_chunk = "blobs/sha256/" + hashlib.sha256(weights.read_bytes()[:CHUNK]).hexdigest()

    def append() -> None:  # the file grows after its first chunk was read and before the rest is
        with weights.open("ab") as f:
            f.write(b"appended while being read")

    # One chunk in memory at a time: the reader waits for the first chunk's PUT (which appends) before it
    # reads on, so the change always lands mid-read (with more slots it could finish reading first).
    racer = ModelUploader(
        _HookOnKey(client, first_chunk, append), uploader.bucket, uploader.retention, workers=1, chunk_size=CHUNK
    )
    with pytest.raises(ModelTreeError, match=r"data/model\.pkl: changed while it was being read"):
        racer.upload(model, progress=False)


def _put_tree(client, bucket: str, prefix: str, folder: Path) -> None:
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        client.put_object(Bucket=bucket, Key=f"{prefix}/{path.relative_to(folder).as_posix()}", Body=path.read_bytes())


@pytest.fixture(scope="module")
def source_bucket(client) -> str:
    """A plain bucket (no lock) standing in for MLflow's artifact store."""
    bucket = "stream-source"
    client.create_bucket(Bucket=bucket)
    return bucket


def test_a_tree_streamed_from_s3_is_anchored_like_the_folder_it_came_from(
    client, uploader: ModelUploader, model: Path, source_bucket: str, tmp_path: Path
) -> None:
    _put_tree(client, source_bucket, "runs/1/model", model)
    client.put_object(Bucket=source_bucket, Key="runs/1/model/", Body=b"")  # a console's folder marker
    client.put_object(Bucket=source_bucket, Key="runs/1/model2/other", Body=b"sibling, not part of it")
    objects = list_s3_tree(client, f"s3://{source_bucket}/runs/1/model")
    result = uploader.upload_files(objects, "runs/1/model", progress=False)
    assert result.manifest == digest_folder(model)  # same bytes, same manifest, nothing staged on disk
    assert read_index(client, result.pointer).manifest == result.manifest
    out = tmp_path / "out"
    fetch_model(client, result.pointer, out)
    assert digest_folder(out) == digest_folder(model)


def test_an_object_replaced_after_the_listing_is_not_anchored(
    client, uploader: ModelUploader, model: Path, source_bucket: str
) -> None:
    _put_tree(client, source_bucket, "runs/2/model", model)
    objects = list_s3_tree(client, f"s3://{source_bucket}/runs/2/model")
    client.put_object(Bucket=source_bucket, Key="runs/2/model/requirements.txt", Body=b"torch==9\n")
    before = _versions(client, uploader.bucket)
    with pytest.raises(SourceError, match=r"runs/2/model/requirements\.txt: an object changed while it was read"):
        uploader.upload_files(objects, "runs/2/model", progress=False)
    written = {k for k, _ in _versions(client, uploader.bucket)} - {k for k, _ in before}
    assert not any(k.startswith("models/") for k in written)  # no index: nothing anchored


class _CountingGets:
    """A client that counts GETs (everything else passes through)."""

    def __init__(self, client) -> None:
        self._client = client
        self.gets = 0

    def __getattr__(self, name: str):
        return getattr(self._client, name)

    def get_object(self, **kw):
        self.gets += 1
        return self._client.get_object(**kw)


def test_after_a_failed_object_the_rest_of_the_tree_is_not_read(
    client, uploader: ModelUploader, source_bucket: str
) -> None:
    # f00 is large, so the first reader is still busy with it while f01 fails at once; readers stop taking
    # objects (each a GET) once the upload failed. (tests/unit/test_store_upload.py pins the exact rule.)
    client.put_object(Bucket=source_bucket, Key="runs/3/model/f00", Body=os.urandom(6 * CHUNK))
    for i in range(1, 40):
        client.put_object(Bucket=source_bucket, Key=f"runs/3/model/f{i:02d}", Body=os.urandom(1024))
    counting = _CountingGets(client)
    objects = list_s3_tree(counting, f"s3://{source_bucket}/runs/3/model")
    client.put_object(Bucket=source_bucket, Key="runs/3/model/f01", Body=b"replaced")
    with pytest.raises(SourceError, match=r"runs/3/model/f01: an object changed while it was read"):
        uploader.upload_files(objects, "runs/3/model", progress=False)
    assert counting.gets < 10  # the readers in flight, not the 40 objects


def _store_cli_run(s3_server: S3Server, *args: str):
    """``modelledger store ARGS`` in a child process, against ``s3_server``."""
    import subprocess
    import sys

    env = {
        **os.environ,
        "MODELLEDGER_STATE_DIR": str(s3_server.settings.state_dir),
        "MODELLEDGER_S3_PORT": str(s3_server.settings.port),
    }
    cmd = [sys.executable, "-m", "modelledger.mlops.cli", "store", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def _store_cli(s3_server: S3Server, *args: str) -> tuple[int, dict]:
    import json

    done = _store_cli_run(s3_server, *args, "--json")
    try:
        return done.returncode, json.loads(done.stdout)
    except ValueError:
        raise AssertionError(f"no JSON from {args}: {done.stdout}{done.stderr}") from None


def _anchor_signed(profile, uploader: ModelUploader, folder: Path, name: str, version: str, signer, tmp_path: Path):
    """Uploads ``folder`` signed by ``signer`` (a SigningIdentity) and registers it as the bridge's registrar would."""
    from modelledger.mlops.store.ledger_records import version_input
    from modelledger.mlops.store.signing import sign_manifest
    from modelledger.sdk.registry import RegistryClient
    from modelledger.sdk.registry.records import Framework, MLflowSource

    def bundle(manifest: Manifest) -> Path:
        path = tmp_path / f"bundle-{name}-{version}.json"
        sign_manifest(manifest, path, signer.key, signer.certificate, signer.chain)
        return path

    up = uploader.upload(folder, bundle=bundle, progress=False)
    with profile.gateway("Org1MSP", "registrar") as gw:
        RegistryClient(gw.network(profile.channel), profile.chaincode).register_model_version(
            version_input(
                name=name,
                version=version,
                manifest=up.manifest,
                pointer=up.pointer,
                mlflow=MLflowSource(source=f"models:/{name}"),
                framework=Framework(name="sklearn", version="1.6.1"),
            )
        )
    return up


def test_verified_means_the_registrants_signature_on_every_path(
    network, s3_server: S3Server, uploader: ModelUploader, model: Path, tmp_path: Path
) -> None:
    import shutil

    from modelledger.mlops.bridge.anchor_parts import SigningIdentity
    from modelledger.mlops.store.signing import sign_model
    from modelledger.sdk import ConnectionProfile
    from modelledger.sdk.registry import RegistryClient

    network.chaincode.deploy()
    profile = ConnectionProfile.load(network.layout.connection_profile)
    registrar = SigningIdentity.from_msp(profile.user_msp("Org1MSP", "registrar"))
    scientist = SigningIdentity.from_msp(profile.user_msp("Org1MSP", "data_scientist"))
    name = f"signed-{os.urandom(4).hex()}"

    def anchor(folder: Path, version: str, signer: SigningIdentity) -> None:
        _anchor_signed(profile, uploader, folder, name, version, signer, tmp_path)

    def checks(doc: dict) -> dict[str, dict]:
        return {c["name"]: c for c in doc["checks"]}

    ledger = ["--profile", str(profile.path), "--ledger", name]
    anchor(model, "1", registrar)
    for args in ([], [str(model)]):
        rc, doc = _store_cli(s3_server, "verify", *args, *ledger, "1")
        assert rc == 0 and doc["ok"] and doc["failed"] == [], doc
        assert list(checks(doc)) == [
            "ledger-status",
            "ledger-manifest",
            "bytes",
            "signature",
            "signer-chain",
            "signer-identity",
            "signed-digest",
        ]
        assert "CN=registrar" in checks(doc)["signer-identity"]["detail"]
    rc, doc = _store_cli(s3_server, "fetch", str(tmp_path / "fetched"), *ledger, "1")
    assert rc == 0 and doc["ok"] and digest_folder(tmp_path / "fetched") == digest_folder(model)

    # A tampered folder re-signed by another valid identity of the same organisation: refused, the signer named.
    tampered = tmp_path / "tampered"
    shutil.copytree(model, tampered)
    with (tampered / "data" / "model.pkl").open("r+b") as f:
        f.write(b"\x00tampered")
    resigned = tmp_path / "resigned.json"
    sign_model(tampered, resigned, scientist.key, scientist.certificate, scientist.chain)
    rc, doc = _store_cli(s3_server, "verify", str(tampered), *ledger, "1", "--bundle", str(resigned))
    assert rc == 1 and not doc["ok"]
    assert doc["failed"] == ["bytes", "signer-identity", "signed-digest"] and doc["changed"] == ["data/model.pkl"]
    assert checks(doc)["signer-chain"]["ok"]  # a genuine Org1 identity: only the registrant pin catches it
    detail = checks(doc)["signer-identity"]["detail"]
    assert "CN=data_scientist" in detail and "role data_scientist" in detail
    assert "not by the registrant registrar@Org1MSP" in detail

    # Intact bytes on the ledger, but the anchored copy's bundle is the data scientist's: no path says verified.
    other = tmp_path / "other"
    shutil.copytree(model, other)
    (other / "MLmodel").write_text("flavors:\n  sklearn: {}\n" + os.urandom(8).hex())
    anchor(other, "2", scientist)
    rc, doc = _store_cli(s3_server, "verify", *ledger, "2")
    assert rc == 1 and doc["failed"] == ["signer-identity"] and doc["changed"] == []
    assert "CN=data_scientist" in checks(doc)["signer-identity"]["detail"]
    rc, doc = _store_cli(s3_server, "verify", str(other), *ledger, "2")
    assert rc == 1 and doc["failed"] == ["signer-identity"]
    rc, doc = _store_cli(s3_server, "fetch", str(tmp_path / "refused"), *ledger, "2")
    assert rc == 1 and doc["failed"] == ["signer-identity"]
    assert not (tmp_path / "refused").exists() and not list(tmp_path.glob(".refused.*"))

    # A revoked version no longer verifies, whatever its bytes and signature.
    with profile.gateway("Org1MSP", "approver") as gw:
        RegistryClient(gw.network(profile.channel), profile.chaincode).revoke(name, "1", "withdrawn in a test")
    rc, doc = _store_cli(s3_server, "verify", *ledger, "1")
    assert rc == 1 and doc["failed"] == ["ledger-status"]
    assert "withdrawn in a test" in checks(doc)["ledger-status"]["detail"]


def test_a_delete_marker_or_newer_version_over_the_index_key_is_a_warning_not_a_failure(
    network, s3_server: S3Server, client, uploader: ModelUploader, model: Path, tmp_path: Path
) -> None:
    from modelledger.mlops.bridge.anchor_parts import SigningIdentity
    from modelledger.sdk import ConnectionProfile

    network.chaincode.deploy()
    profile = ConnectionProfile.load(network.layout.connection_profile)
    registrar = SigningIdentity.from_msp(profile.user_msp("Org1MSP", "registrar"))
    name = f"warned-{os.urandom(4).hex()}"
    (model / "salt.txt").write_text(os.urandom(8).hex())
    # Two minutes: the locks must still hold when the last verification runs (the date is asserted).
    longer = ModelUploader(uploader.client, uploader.bucket, retention=dt.timedelta(minutes=2), chunk_size=CHUNK)
    p = _anchor_signed(profile, longer, model, name, "1", registrar, tmp_path).pointer
    ledger = ["--profile", str(profile.path), "--ledger", name, "1"]

    rc, doc = _store_cli(s3_server, "verify", *ledger)
    assert rc == 0 and doc["ok"] and doc["warnings"] == [], doc
    m = digest_folder(model)
    assert (doc["files"], doc["bytes"], doc["lock_mode"], doc["signed_by"]) == (
        len(m.files),
        m.total_size,
        "COMPLIANCE",
        "registrar@Org1MSP",
    )
    until = dt.datetime.fromisoformat(doc["retain_until"])
    assert dt.datetime.now(dt.UTC) < until <= dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)

    def verify_warns(expected: str) -> None:
        """``store verify`` still verifies, and shows one warning that starts with ``expected``, in text and JSON."""
        rc, doc = _store_cli(s3_server, "verify", *ledger)
        assert rc == 0 and doc["ok"] and doc["failed"] == [] and doc["changed"] == [], doc
        assert len(doc["warnings"]) == 1 and doc["warnings"][0].startswith(expected), doc["warnings"]
        text = _store_cli_run(s3_server, "verify", *ledger)
        assert text.returncode == 0, text.stdout + text.stderr
        lines = text.stdout.splitlines()
        assert lines[0] == f"verified: {p.uri} against the ledger record of {name}/1"
        assert lines[1] == "  " + doc["summary"] and "signature by registrar@Org1MSP verified" in lines[1]
        assert f"  warning: {doc['warnings'][0]}" in lines

    # A delete marker over the index key: a plain GET of the key fails; the locked version the ledger names stays.
    client.delete_object(Bucket=p.bucket, Key=p.key)
    with pytest.raises(ClientError):
        client.get_object(Bucket=p.bucket, Key=p.key)
    verify_warns(f"a delete marker over the index key {p.key}")
    # A newer version over it: a plain GET returns other bytes.
    newer = client.put_object(Bucket=p.bucket, Key=p.key, Body=b'{"forged": true}', **_lock())["VersionId"]
    assert client.get_object(Bucket=p.bucket, Key=p.key)["Body"].read() == b'{"forged": true}'
    verify_warns(f"a newer version {newer} over the index key {p.key}: a plain GET of the key returns it")

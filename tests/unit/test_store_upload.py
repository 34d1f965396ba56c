"""The uploader's control flow with fakes (the real MinIO paths are in tests/integration/test_store.py)."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from modelledger.mlops.store.source import SourceError
from modelledger.mlops.store.upload import ModelUploader, UploadError
from tests.unit.s3_fakes import ConditionalBucket


class FakeBucket:
    """Answers HEAD with 404 and records PUTs (slowly, so that readers run ahead of senders)."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self._lock = threading.Lock()

    def head_object(self, **kw: Any) -> dict[str, Any]:
        raise ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadObject")

    def put_object(self, **kw: Any) -> dict[str, Any]:
        time.sleep(0.01)
        with self._lock:
            self.keys.append(kw["Key"])
        return {"VersionId": "v1"}


class StreamedFile:
    """A remote file whose stream breaks after ``fail_at`` bytes (None: never); records that it was opened."""

    def __init__(self, rel: str, data: bytes, opened: list[str], fail_at: int | None = None) -> None:
        self.rel, self.data, self.opened, self.fail_at = rel, data, opened, fail_at

    @property
    def size(self) -> int:
        return len(self.data)

    @contextlib.contextmanager
    def open(self) -> Iterator[Any]:
        self.opened.append(self.rel)
        stream, owner = io.BytesIO(self.data), self

        class Reader:
            size = len(self.data)

            def _check(self, n: int) -> int:
                if owner.fail_at is not None and stream.tell() > owner.fail_at:
                    raise SourceError(f"{owner.rel}: stream broke")
                return n

            def read(self, n: int) -> bytes:
                data = stream.read(n)
                self._check(len(data))
                return data

            def readinto(self, buffer: Any) -> int:
                return self._check(stream.readinto(buffer))

            def finish(self, size_read: int) -> None:
                pass

        yield Reader()


def test_after_a_broken_stream_no_other_file_is_opened_and_no_index_is_written() -> None:
    opened: list[str] = []
    files = [StreamedFile("a0", b"x" * 5000, opened, fail_at=1500)]
    files += [StreamedFile(f"f{i:03d}", b"y" * 100, opened) for i in range(200)]
    bucket = FakeBucket()
    uploader = ModelUploader(bucket, "anchored", dt.timedelta(days=1), workers=4, chunk_size=1024)
    with pytest.raises(SourceError, match="a0: stream broke"):
        uploader.upload_files(files, "streamed", progress=False)
    assert len(opened) < 10, f"{len(opened)} of {len(files)} files opened after the failure"
    assert not [k for k in bucket.keys if k.startswith("models/")]  # nothing anchored
    assert not [t.name for t in threading.enumerate() if t.name.startswith("s3-")]  # no reader or sender left


def test_small_blobs_are_put_without_a_head_and_a_taken_key_is_checked_and_reused() -> None:
    bucket = ConditionalBucket()
    uploader = ModelUploader(bucket, "anchored", dt.timedelta(days=1), workers=1, chunk_size=4 * 1024 * 1024)
    small, large = b"s" * 1000, b"L" * (1024 * 1024 + 1)
    first = uploader._store_blob(small, dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    assert [op for op, _ in bucket.requests] == ["PUT"]
    uploader._store_blob(large, dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    assert [op for op, _ in bucket.requests] == ["PUT", "HEAD", "PUT"]  # over 1 MiB: asked first
    bucket.requests.clear()
    again = uploader._store_blob(small, dt.datetime(2031, 1, 1, tzinfo=dt.UTC))
    # The conditional PUT is refused, the HEAD finds the locked bytes: reused, nothing written.
    assert [op for op, _ in bucket.requests] == ["PUT", "HEAD"]
    assert again.ref == first.ref and again.retain_until == dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def test_the_bundle_is_made_once_every_file_is_read_while_chunks_are_still_being_stored(tmp_path: Any) -> None:
    bucket = ConditionalBucket()
    slow = threading.Event()
    put = bucket.put_object

    def slow_put(**kw: Any) -> dict[str, Any]:
        if kw["Key"].startswith("blobs/") and kw["Body"][:1] == b"c":
            slow.wait(5)  # chunk PUTs finish only once the bundle has been made
        return put(**kw)

    bucket.put_object = slow_put  # type: ignore[method-assign]
    uploader = ModelUploader(bucket, "anchored", dt.timedelta(days=1), workers=4, chunk_size=1024)
    files = [StreamedFile("model.bin", b"c" * 3000, [])]
    made: list[tuple[str, int]] = []

    def sign(manifest: Any) -> Any:
        stored = [k for op, k in bucket.requests if op == "PUT" and k in bucket.objects]
        made.append((manifest.files[0].sha256, len(stored)))
        slow.set()
        (tmp_path / "b.json").write_bytes(b'{"bundle": 1}')
        return tmp_path / "b.json"

    result = uploader.upload_files(files, "streamed", bundle=sign, progress=False)
    assert made == [(result.manifest.files[0].sha256, 0)]  # signed before any chunk was stored
    assert result.index.bundle is not None and len(result.index.files[0].chunks) == 3


def test_a_chunk_that_fails_while_the_bundle_is_made_stops_it_from_being_stored_and_leaves_no_index(tmp_path: Any) -> None:
    bucket = ConditionalBucket()
    put = bucket.put_object
    signing = threading.Event()

    failed = threading.Event()

    def failing_put(**kw: Any) -> dict[str, Any]:
        if kw["Body"][:1] == b"c":
            signing.wait(5)
            failed.set()
            raise ClientError({"Error": {"Code": "InternalError", "Message": "disk full"}}, "PutObject")
        return put(**kw)

    bucket.put_object = failing_put  # type: ignore[method-assign]
    uploader = ModelUploader(bucket, "anchored", dt.timedelta(days=1), workers=4, chunk_size=1024)

    def sign(manifest: Any) -> Any:
        signing.set()
        failed.wait(5)  # the chunk fails meanwhile
        time.sleep(0.05)  # (and its sender marks the upload failed)
        (tmp_path / "b.json").write_bytes(b'{"bundle": 1}')
        return tmp_path / "b.json"

    with pytest.raises(Exception, match="disk full"):
        uploader.upload_files([StreamedFile("model.bin", b"c" * 3000, [])], "streamed", bundle=sign, progress=False)
    assert bucket.objects == {}  # neither the bundle nor an index


def test_a_conditional_put_that_fails_for_another_reason_fails_the_upload() -> None:
    bucket = ConditionalBucket()
    put = bucket.put_object

    def refusing(**kw: Any) -> dict[str, Any]:
        if kw.get("IfNoneMatch"):
            raise ClientError({"Error": {"Code": "NotImplemented", "Message": "no conditional writes"}}, "PutObject")
        return put(**kw)

    bucket.put_object = refusing  # type: ignore[method-assign]
    uploader = ModelUploader(bucket, "anchored", dt.timedelta(days=1), workers=1)
    with pytest.raises(UploadError, match="NotImplemented"):
        uploader.upload_files([StreamedFile("a", b"x" * 10, [])], "streamed", progress=False)
    assert bucket.objects == {}  # not taken for "the key is taken", and nothing written unconditionally

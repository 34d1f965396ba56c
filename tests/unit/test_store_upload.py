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
from modelledger.mlops.store.upload import ModelUploader


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

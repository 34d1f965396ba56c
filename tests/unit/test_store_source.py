"""Fetching a model tree straight from S3 (fake client; the real MinIO path is in tests/integration)."""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from modelledger.mlops.store.digest import ModelTreeError, digest_folder
from modelledger.mlops.store.source import SourceError, download_s3_tree, local_folder


class FakeS3:
    """Just enough of a boto3 client: list_objects_v2 pages, head_object and get_object."""

    def __init__(self, objects: dict[str, bytes], short: str = "", changed: str = "") -> None:
        self.objects = objects
        self.short = short  # this key's body comes back one byte short
        self.changed = changed  # this key was overwritten after it was listed

    @staticmethod
    def etag(data: bytes) -> str:
        return f'"{hashlib.md5(data).hexdigest()}"'

    def get_paginator(self, name: str) -> Any:
        assert name == "list_objects_v2"
        objects = self.objects

        class Pages:
            def paginate(self, Bucket: str, Prefix: str) -> list[dict[str, Any]]:
                keys = sorted(k for k in objects if k.startswith(Prefix))
                return [
                    {
                        "Contents": [
                            {"Key": k, "Size": len(objects[k]), "ETag": FakeS3.etag(objects[k])}
                            for k in keys[i : i + 2]
                        ]
                    }
                    for i in range(0, len(keys), 2)
                ]

        return Pages()

    def head_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        if Key not in self.objects:
            raise ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadObject")
        return {"ContentLength": len(self.objects[Key]), "ETag": self.etag(self.objects[Key])}

    def get_object(self, Bucket: str, Key: str, IfMatch: str = "") -> dict[str, Any]:
        data = self.objects[Key] + (b"!" if Key == self.changed else b"")
        if IfMatch and IfMatch != self.etag(data):
            raise ClientError(
                {
                    "Error": {
                        "Code": "PreconditionFailed",
                        "Message": "At least one of the pre-conditions you specified did not hold",
                    }
                },
                "GetObject",
            )
        return {"Body": io.BytesIO(data[:-1] if Key == self.short else data)}


def test_a_folder_is_downloaded_whole_with_private_modes(tmp_path: Path) -> None:
    s3 = FakeS3({"a/m/MLmodel": b"flavors: {}\n", "a/m/sub/w.bin": b"x" * 1000, "a/m/sub/": b"", "a/mx": b"no"})
    folder = download_s3_tree(s3, "s3://b/a/m", tmp_path / "model")
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert files == ["MLmodel", "sub/w.bin"]  # the folder marker and the sibling "a/mx" are not part of it
    assert (folder / "sub" / "w.bin").read_bytes() == b"x" * 1000
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and stat.S_IMODE((folder / "MLmodel").stat().st_mode) == 0o600
    assert [f.path for f in digest_folder(folder).files] == ["MLmodel", "sub/w.bin"]


def test_a_uri_naming_one_object_gives_a_folder_with_that_file(tmp_path: Path) -> None:
    folder = download_s3_tree(FakeS3({"a/model.pkl": b"pickle"}), "s3://b/a/model.pkl", tmp_path / "model")
    assert [p.name for p in folder.iterdir()] == ["model.pkl"] and (folder / "model.pkl").read_bytes() == b"pickle"


@pytest.mark.parametrize(
    ("objects", "error", "message"),
    [
        ({"a/m/../../etc/x": b"1"}, ModelTreeError, "must not contain empty, '.' or '..' segments"),
        ({"a/m/x//y": b"1"}, ModelTreeError, "must not contain empty, '.' or '..' segments"),
        ({"a/m/w": b"1", "a/m/w/x": b"2"}, ModelTreeError, "'w/x' is under a key that is also a file"),
    ],
)
def test_unsafe_trees_are_refused_before_anything_is_written(
    tmp_path: Path, objects: dict[str, bytes], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        download_s3_tree(FakeS3(objects), "s3://b/a/m", tmp_path / "model")
    assert not (tmp_path / "model").exists()


def test_a_short_read_is_an_error_and_the_scratch_folder_is_removed(tmp_path: Path) -> None:
    s3 = FakeS3({"a/m/w.bin": b"0123456789"}, short="a/m/w.bin")
    with (
        pytest.raises(SourceError, match=re.escape("s3://b/a/m/w.bin: 9 bytes read, 10 listed (changed while read?)")),
        local_folder("s3://b/a/m", scratch=tmp_path, s3=s3),
    ):
        pass
    assert list(tmp_path.iterdir()) == []


def test_s3_refusals_are_source_errors_naming_the_uri(tmp_path: Path) -> None:
    class Denied(FakeS3):
        def get_object(self, Bucket: str, Key: str, IfMatch: str = "") -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject")

    with pytest.raises(SourceError, match=r"cannot fetch s3://b/a/m/w from S3: .*AccessDenied"):
        download_s3_tree(Denied({"a/m/w": b"1"}), "s3://b/a/m", tmp_path / "model")


def test_nothing_at_the_uri_is_an_error_worth_retrying(tmp_path: Path) -> None:
    # The registry may list a version before its files are visible: a SourceError is retried, not dead-lettered.
    with pytest.raises(SourceError, match=re.escape("nothing at s3://b/a/m (no object, no folder)")):
        download_s3_tree(FakeS3({"other/x": b"1", "a/mx": b"2"}), "s3://b/a/m", tmp_path / "model")
    assert not (tmp_path / "model").exists()


def test_the_prefixs_own_folder_marker_is_skipped(tmp_path: Path) -> None:
    folder = download_s3_tree(FakeS3({"a/m/": b"", "a/m/w": b"1"}), "s3://b/a/m", tmp_path / "model")
    assert [p.name for p in folder.iterdir()] == ["w"]


def test_an_object_overwritten_after_the_listing_is_an_error_worth_retrying(tmp_path: Path) -> None:
    s3 = FakeS3({"a/m/MLmodel": b"x", "a/m/w.bin": b"0123456789"}, changed="a/m/w.bin")
    with pytest.raises(
        SourceError, match=re.escape("s3://b/a/m/w.bin: an object changed while it was read; fetch again")
    ):
        download_s3_tree(s3, "s3://b/a/m", tmp_path / "model")


def test_a_name_too_long_for_the_file_system_is_an_unsafe_tree(tmp_path: Path) -> None:
    with pytest.raises(ModelTreeError, match="a name longer than 255 bytes cannot be written to a file system"):
        download_s3_tree(FakeS3({"a/m/" + "n" * 300: b"1"}), "s3://b/a/m", tmp_path / "model")


def test_a_streamed_object_fills_a_chunk_buffer_a_mebibyte_at_a_time(tmp_path: Path) -> None:
    from modelledger.mlops.store.model_files import _read_into
    from modelledger.mlops.store.source import list_s3_tree

    data = os.urandom(3 * 1024 * 1024 + 5)

    sizes: list[int] = []

    class Body(io.BytesIO):
        def readinto(self, buffer: Any) -> int:  # type: ignore[override]
            sizes.append(len(buffer))
            return super().readinto(buffer)

    class Streaming(FakeS3):
        def get_object(self, Bucket: str, Key: str, IfMatch: str = "") -> dict[str, Any]:
            return {"Body": Body(self.objects[Key])}

    (obj,) = list_s3_tree(Streaming({"a/m/w.bin": data}), "s3://b/a/m")
    buf = bytearray(16 * 1024 * 1024)
    with obj.open() as reader:
        assert reader.size == len(data) and _read_into(reader, buf) == len(data)
        reader.finish(len(data))
    assert bytes(buf[: len(data)]) == data
    assert max(sizes) == 1024 * 1024  # urllib3 copies through a temporary of this size, not 16 MiB


def test_a_copying_file_leaves_the_bytes_its_reader_read_whole_and_private(tmp_path: Path) -> None:
    from modelledger.mlops.store.digest import sha256_stream
    from modelledger.mlops.store.model_files import _read_into
    from modelledger.mlops.store.source import CopyingFile, list_s3_tree

    small, large = b"flavors: {}\n", os.urandom(3 * 1024 * 1024 + 5)
    objects = list_s3_tree(FakeS3({"a/m/MLmodel": small, "a/m/w.bin": large}), "s3://b/a/m")
    by_read, by_readinto = (CopyingFile(o, tmp_path / o.rel) for o in objects)
    assert (by_read.rel, by_read.size) == ("MLmodel", len(small))
    assert sha256_stream(by_read).sha256 == hashlib.sha256(small).hexdigest()  # read(): the digest's way
    buf = bytearray(16 * 1024 * 1024)
    with by_readinto.open() as reader:  # readinto(): the upload's way
        assert _read_into(reader, buf) == len(large)
        reader.finish(len(large))
    assert (tmp_path / "MLmodel").read_bytes() == small and (tmp_path / "w.bin").read_bytes() == large
    assert stat.S_IMODE((tmp_path / "MLmodel").stat().st_mode) == 0o600
    with pytest.raises(SourceError), by_read.open() as reader:  # the reader's own checks still apply
        reader.finish(1)

"""Where a model to anchor comes from: a local folder, an MLflow artifact URI, or objects in S3.

Artifact URIs are fetched with MLflow's own client into a private folder,
except ``s3://`` URIs when the caller hands over an S3 client for that store:
those are listed once (:func:`list_s3_tree`), and each object is then read
once, as it was listed, either into a private folder (:func:`download_s3_tree`)
or straight into an upload (:class:`S3Object` is a
:class:`~modelledger.mlops.store.model_files.ModelFile`), so that the bytes neither
pass through the tracking server nor touch the disk.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError, ClientError

from modelledger.mlops.store.digest import ModelTreeError, check_relative_path
from modelledger.mlops.store.s3errors import error_code

_READ = 8 * 1024 * 1024
_READINTO = 1024 * 1024
MAX_NAME_BYTES = 255  # one path segment, as most file systems allow


class SourceError(Exception):
    """The source cannot be fetched (names the URI and the cause)."""


def is_artifact_uri(source: str) -> bool:
    """True for a URI with a scheme (``runs:/``, ``models:/``, ``mlflow-artifacts:/``, ``s3://``...), not a path."""
    scheme = urlparse(source).scheme
    return len(scheme) > 1  # one letter would be a Windows drive, not a scheme


@contextlib.contextmanager
def local_folder(
    source: str | Path, scratch: str | Path | None = None, tracking_uri: str | None = None, s3: Any | None = None
) -> Iterator[Path]:
    """Yields a local folder that holds the model at ``source``.

    A local path is used in place. An MLflow artifact URI is downloaded with
    MLflow's own client (``tracking_uri``, else the usual MLFLOW_* settings),
    or for ``s3://`` with ``s3`` given, with that boto3 client, into a new
    folder of mode 0700 under ``scratch`` (default: the system temporary
    folder), which is removed afterwards. A URI naming one file yields a
    folder holding only that file.

    Raises:
        SourceError: The URI cannot be resolved or downloaded.
        ModelTreeError: An S3 key under the URI is not a safe relative path.
    """
    if not is_artifact_uri(str(source)) or Path(source).exists():
        yield Path(source)
        return
    uri = str(source)
    tmp = Path(tempfile.mkdtemp(prefix="modelledger-fetch-", dir=scratch))  # mode 0700
    try:
        if s3 is not None and urlparse(uri).scheme == "s3":
            yield download_s3_tree(s3, uri, tmp / "model")
            return
        import mlflow.artifacts
        from mlflow.exceptions import MlflowException

        try:
            local = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=uri, dst_path=str(tmp / "model"), tracking_uri=tracking_uri
                )
            )
        except (MlflowException, OSError) as exc:
            raise SourceError(f"cannot fetch {uri} from MLflow: {exc}") from exc
        if local.is_dir():
            yield local
        else:
            # One file: anchor it alone, in a folder of its own.
            folder = tmp / "file"
            folder.mkdir()
            local.rename(folder / local.name)
            yield folder
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass(frozen=True)
class S3Object:
    """One object of a model tree in S3, read once as it was listed (``If-Match`` its ETag)."""

    client: Any
    bucket: str
    key: str
    rel: str
    size: int
    etag: str

    @contextlib.contextmanager
    def open(self) -> Iterator[_S3Reader]:
        condition = {"IfMatch": self.etag} if self.etag else {}
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.key, **condition)["Body"]
        except (ClientError, BotoCoreError) as exc:
            raise _source_error(f"s3://{self.bucket}/{self.key}", exc) from exc
        with body:
            yield _S3Reader(self, body)


class _S3Reader:
    """Reads one object's body; any failure of the stream is a :class:`SourceError` (worth retrying)."""

    def __init__(self, obj: S3Object, body: Any) -> None:
        self._obj, self._body = obj, body
        self.size = obj.size

    def _guard(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except Exception as exc:
            raise SourceError(f"reading s3://{self._obj.bucket}/{self._obj.key} failed: {exc}") from exc

    def read(self, size: int, /) -> bytes:
        return self._guard(lambda: self._body.read(size))  # type: ignore[no-any-return]

    def readinto(self, buffer: Any, /) -> int:
        # urllib3 fills a readinto() through a temporary bytes object of the buffer's size: 1 MiB at a
        # time keeps that temporary small (the uploader loops until its 16 MiB buffer is full).
        with memoryview(buffer) as view:
            return self._guard(lambda: self._body.readinto(view[:_READINTO]))  # type: ignore[no-any-return]

    def finish(self, size_read: int) -> None:
        if size_read != self._obj.size:
            raise SourceError(
                f"s3://{self._obj.bucket}/{self._obj.key}: {size_read} bytes read, {self._obj.size} listed "
                "(changed while read?)"
            )


@dataclass(frozen=True)
class CopyingFile:
    """A model file whose bytes are also written to ``dest`` (0600) as whoever reads it reads them.

    An upload or a digest reading the file once then leaves a local copy of
    exactly the bytes it hashed, without a second request for them (the
    bridge keeps ``MLmodel`` and ``requirements.txt`` so for the provenance).
    The copy is whole once the reader has finished the file.
    """

    file: Any  # an S3Object or any ModelFile: rel, size, open()
    dest: Path

    @property
    def rel(self) -> str:
        return str(self.file.rel)

    @property
    def size(self) -> int:
        return int(self.file.size)

    @contextlib.contextmanager
    def open(self) -> Iterator[_CopyingReader]:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
        with self.file.open() as reader, os.fdopen(os.open(self.dest, flags, 0o600), "wb") as out:
            yield _CopyingReader(reader, out)


class _CopyingReader:
    def __init__(self, reader: Any, out: Any) -> None:
        self._reader, self._out = reader, out
        self.size = reader.size

    def read(self, size: int, /) -> bytes:
        data: bytes = self._reader.read(size)
        self._out.write(data)
        return data

    def readinto(self, buffer: Any, /) -> int:
        n: int = self._reader.readinto(buffer)
        with memoryview(buffer) as view:
            self._out.write(view[:n])
        return n

    def finish(self, size_read: int) -> None:
        self._reader.finish(size_read)


def _source_error(uri: str, exc: Exception) -> SourceError:
    if error_code(exc) in ("PreconditionFailed", "412"):
        return SourceError(f"{uri}: an object changed while it was read; fetch again")
    return SourceError(f"cannot fetch {uri} from S3: {exc}")


def _writable(rel: str) -> str:
    """Refuses names a file system cannot hold: a model that cannot be written out is not anchored."""
    if any(len(segment.encode("utf-8")) > MAX_NAME_BYTES for segment in rel.split("/")):
        raise ModelTreeError(f"{rel!r}: a name longer than {MAX_NAME_BYTES} bytes cannot be written to a file system")
    return rel


def list_s3_tree(client: Any, uri: str) -> list[S3Object]:
    """The objects under ``s3://bucket/prefix/`` as a model tree (paths relative to the prefix), in one listing.

    Keys must be safe relative paths (no ``..``, empty segments or
    backslashes) with names a file system can hold; zero-byte folder markers (keys ending in ``/``, the
    prefix's own among them) are skipped. A URI that names one object is a
    tree of that file alone.

    Raises:
        SourceError: Nothing is at the URI (no object, no folder) or S3 refused the listing (worth retrying).
        ModelTreeError: A key is not a safe relative path, or is both a file and a folder.
    """
    parsed = urlparse(uri)
    bucket, prefix = parsed.netloc, parsed.path.strip("/")
    objects: dict[str, S3Object] = {}
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
            for obj in page.get("Contents", []):
                rel = obj["Key"][len(prefix) + 1 :]
                if (not rel or rel.endswith("/")) and obj.get("Size", 0) == 0:
                    continue
                rel = _writable(check_relative_path(rel))
                objects[rel] = S3Object(client, bucket, obj["Key"], rel, int(obj["Size"]), str(obj.get("ETag", "")))
        if not objects:
            try:
                head = client.head_object(Bucket=bucket, Key=prefix)
            except ClientError as exc:
                if error_code(exc) not in ("404", "NoSuchKey", "NotFound"):
                    raise
                raise SourceError(f"nothing at {uri} (no object, no folder)") from exc
            rel = _writable(check_relative_path(prefix.rsplit("/", 1)[-1]))
            objects[rel] = S3Object(client, bucket, prefix, rel, int(head["ContentLength"]), str(head["ETag"]))
    except (ClientError, BotoCoreError) as exc:
        raise _source_error(uri, exc) from exc
    names = set(objects)
    clash = next((n for n in names for i in range(len(n)) if n[i] == "/" and n[:i] in names), None)
    if clash is not None:
        raise ModelTreeError(f"{uri}: {clash!r} is under a key that is also a file")
    return sorted(objects.values(), key=lambda o: o.rel)


def download_s3_objects(objects: Sequence[S3Object], dest: Path, workers: int = 4) -> Path:
    """Downloads listed objects into ``dest`` (created, 0700; files 0600, folders 0700) and returns it.

    Raises:
        SourceError: An object changed since it was listed, came back short, or S3 refused it.
        ModelTreeError: A name too long for this file system.
    """
    dest.mkdir(mode=0o700)
    failed = threading.Event()

    def get(obj: S3Object) -> None:
        if failed.is_set():
            return
        try:
            target = dest / obj.rel
            for folder in reversed([p for p in Path(obj.rel).parents if p != Path(".")]):
                (dest / folder).mkdir(mode=0o700, exist_ok=True)
            got = 0
            with (
                obj.open() as body,
                os.fdopen(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f,
            ):
                while not failed.is_set() and (chunk := body.read(_READ)):
                    f.write(chunk)
                    got += len(chunk)
                if not failed.is_set():
                    body.finish(got)
        except OSError as exc:
            failed.set()
            if exc.errno == errno.ENAMETOOLONG:
                raise ModelTreeError(f"{obj.rel!r}: a name too long for this file system") from exc
            raise
        except BaseException:
            failed.set()  # the other downloads stop at their next read
            raise

    with ThreadPoolExecutor(max(1, min(workers, len(objects)))) as pool:
        list(pool.map(get, objects))
    return dest


def download_s3_tree(client: Any, uri: str, dest: Path, workers: int = 4) -> Path:
    """Downloads the model tree at ``uri`` (see :func:`list_s3_tree`) into ``dest`` and returns it.

    Raises:
        SourceError: Nothing is at the URI, S3 refused a request, or an object
            changed or came back short (all worth retrying).
        ModelTreeError: A key is not a safe relative path (or too long a name
            for this file system), or is both a file and a folder.
    """
    return download_s3_objects(list_s3_tree(client, uri), dest, workers)

"""Where a model to anchor comes from: a local folder, or an MLflow artifact URI fetched into a private folder.

Artifact URIs are fetched with MLflow's own client, except ``s3://`` URIs when
the caller hands over an S3 client for that store: those are listed once and
read with parallel GETs straight from S3, which is several times faster than
MLflow's client for large models (and the bytes do not pass through the
tracking server).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError, ClientError

from modelledger.mlops.store.digest import ModelTreeError, check_relative_path
from modelledger.mlops.store.s3server import error_code

_READ = 8 * 1024 * 1024


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


def download_s3_tree(client: Any, uri: str, dest: Path, workers: int = 4) -> Path:
    """Downloads every object under ``s3://bucket/prefix/`` into ``dest`` (created; files 0600) and returns it.

    Keys become paths relative to the prefix and must be safe (no ``..``,
    empty segments or backslashes); zero-byte folder markers (keys ending in
    ``/``, the prefix's own among them) are skipped. A URI that names one
    object yields ``dest`` holding that file alone. Each object is read as it
    was listed (``If-Match`` its ETag) and must arrive whole.

    Raises:
        SourceError: Nothing is at the URI, S3 refused a request, or an object
            changed or came back short (all worth retrying).
        ModelTreeError: A key is not a safe relative path (or too long a name
            for this file system), or is both a file and a folder.
    """
    parsed = urlparse(uri)
    bucket, prefix = parsed.netloc, parsed.path.strip("/")
    try:
        objects: dict[str, tuple[int, str]] = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
            for obj in page.get("Contents", []):
                rel = obj["Key"][len(prefix) + 1 :]
                if (not rel or rel.endswith("/")) and obj.get("Size", 0) == 0:
                    continue
                objects[check_relative_path(rel)] = (int(obj["Size"]), str(obj.get("ETag", "")))
        if not objects:
            try:
                head = client.head_object(Bucket=bucket, Key=prefix)
            except ClientError as exc:
                if error_code(exc) not in ("404", "NoSuchKey", "NotFound"):
                    raise
                raise SourceError(f"nothing at {uri} (no object, no folder)") from exc
            objects[check_relative_path(prefix.rsplit("/", 1)[-1])] = (int(head["ContentLength"]), str(head["ETag"]))
            prefix, _, _ = prefix.rpartition("/")
        names = set(objects)
        clash = next((n for n in names for i in range(len(n)) if n[i] == "/" and n[:i] in names), None)
        if clash is not None:
            raise ModelTreeError(f"{uri}: {clash!r} is under a key that is also a file")
        dest.mkdir(mode=0o700)
        failed = threading.Event()

        def get(item: tuple[str, tuple[int, str]]) -> None:
            rel, (size, etag) = item
            if failed.is_set():
                return
            try:
                key = f"{prefix}/{rel}" if prefix else rel
                target = dest / rel
                for folder in reversed([p for p in target.relative_to(dest).parents if p != Path(".")]):
                    (dest / folder).mkdir(mode=0o700, exist_ok=True)
                condition = {"IfMatch": etag} if etag else {}
                got = 0
                with (
                    client.get_object(Bucket=bucket, Key=key, **condition)["Body"] as body,
                    os.fdopen(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f,
                ):
                    while not failed.is_set() and (chunk := body.read(_READ)):
                        f.write(chunk)
                        got += len(chunk)
                if got != size and not failed.is_set():
                    raise SourceError(f"{uri}: {rel} came back with {got} bytes, {size} listed (changed while read?)")
            except OSError as exc:
                failed.set()
                if exc.errno == errno.ENAMETOOLONG:
                    raise ModelTreeError(f"{rel!r}: a name too long for this file system") from exc
                raise
            except BaseException:
                failed.set()  # the other downloads stop at their next read
                raise

        with ThreadPoolExecutor(max(1, min(workers, len(objects)))) as pool:
            list(pool.map(get, sorted(objects.items())))
        return dest
    except (ClientError, BotoCoreError) as exc:
        if error_code(exc) in ("PreconditionFailed", "412"):
            raise SourceError(f"{uri}: an object changed while it was read; fetch again") from exc
        raise SourceError(f"cannot fetch {uri} from S3: {exc}") from exc

"""Copying a model folder into the anchored bucket: one read of the bytes, checksums on every part.

The anchored object keys are content-addressed (``models/<manifest digest>/...``),
but the digest is known only once every byte has been read. So each file is
read exactly once, and while it is read its parts are hashed (the file's
SHA-256 and each part's ``x-amz-checksum-sha256``) and uploaded to a staging
bucket without Object Lock. When the manifest is complete, the server copies
each staged object to its content-addressed key in the anchored bucket (a
server-side copy, with a SHA-256 checksum and a COMPLIANCE retention), writes
the index last, and deletes the staged copies. The index object is the
pointer the ledger records: its bucket, key, version id and SHA-256.

An identical re-upload finds the index already there: it writes nothing to
the anchored bucket and returns the existing pointer.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import json
import sys
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from botocore.exceptions import BotoCoreError, ClientError

from modelledger.mlops.store.digest import FileEntry, Manifest, TreeFile, list_files, open_checked

PART_SIZE = 8 * 1024 * 1024
INDEX_NAME = "index.json"
BUNDLE_NAME = "model.sig.json"
COPY_LIMIT = 5 * 1024**3  # one CopyObject; larger files use a multipart copy
COPY_PART = 512 * 1024 * 1024


class UploadError(Exception):
    """The upload failed; nothing was recorded as anchored."""


@dataclass(frozen=True)
class StoragePointer:
    """Where the anchored copy lives: the index object (bucket, key, version id, SHA-256 of its bytes)."""

    bucket: str
    key: str
    version_id: str
    sha256: str

    def to_json(self) -> dict[str, str]:
        return {"bucket": self.bucket, "key": self.key, "sha256": self.sha256, "versionId": self.version_id}


@dataclass(frozen=True)
class UploadResult:
    """What an upload produced."""

    pointer: StoragePointer
    manifest: Manifest
    created: bool
    objects: dict[str, str]


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def model_prefix(manifest: Manifest) -> str:
    """The content-addressed folder of a model in the anchored bucket."""
    return f"models/{manifest.manifest_digest}/"


def _read_part(f: BinaryIO, size: int) -> bytes:
    """Reads up to ``size`` bytes (fewer only at the end of the file) into one new bytes object."""
    chunks = []
    left = size
    while left:
        chunk = f.read(left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _stage_file(
    client: Any, bucket: str, key: str, tf: TreeFile, part_size: int, on_bytes: Callable[[int], None]
) -> tuple[int, str]:
    """Streams one file to ``bucket/key`` once; returns its size and SHA-256.

    Each part is read into a single bytes object that is hashed and sent as is (no copy), so a
    worker holds about one part in memory.
    """
    whole = hashlib.sha256()
    with open_checked(tf) as f:
        data = _read_part(f, part_size)
        if len(data) < part_size:  # fits in one request
            whole.update(data)
            client.put_object(Bucket=bucket, Key=key, Body=data, ChecksumSHA256=b64(hashlib.sha256(data).digest()))
            on_bytes(len(data))
            return len(data), whole.hexdigest()
        upload = client.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256")
        upload_id = upload["UploadId"]
        parts = []
        size = 0
        try:
            number = 1
            while data:
                whole.update(data)
                part_sum = b64(hashlib.sha256(data).digest())
                resp = client.upload_part(
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=data,
                    ChecksumSHA256=part_sum,
                )
                parts.append({"PartNumber": number, "ETag": resp["ETag"], "ChecksumSHA256": part_sum})
                size += len(data)
                on_bytes(len(data))
                number += 1
                data = b""  # drop this part before reading the next
                data = _read_part(f, part_size)
            client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            with contextlib.suppress(ClientError, BotoCoreError):
                client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            raise
    return size, whole.hexdigest()


class ModelUploader:
    """Uploads model folders to the anchored bucket through a staging bucket.

    Args:
        client: A boto3 S3 client (see ``s3server.s3_client``; payload signing off).
        bucket: The anchored bucket (Object Lock on).
        staging_bucket: A bucket without Object Lock for the one-pass upload.
        retention: How long each anchored object is locked in COMPLIANCE mode.
        workers: Files uploaded in parallel.
        part_size: Multipart part size (each part carries its SHA-256).
        copy_limit: Files above this size are copied server-side in ranges (S3 allows 5 GiB per copy).
        copy_part: Range size of those copies.
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        staging_bucket: str,
        retention: dt.timedelta,
        workers: int = 4,
        part_size: int = PART_SIZE,
        copy_limit: int = COPY_LIMIT,
        copy_part: int = COPY_PART,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.staging_bucket = staging_bucket
        self.retention = retention
        self.workers = workers
        self.part_size = part_size
        self.copy_limit = copy_limit
        self.copy_part = copy_part

    def ensure_staging_bucket(self) -> None:
        """Creates the staging bucket if missing (no lock; staged objects are deleted after each upload)."""
        try:
            self.client.head_bucket(Bucket=self.staging_bucket)
            return
        except ClientError:
            self.client.create_bucket(Bucket=self.staging_bucket)
        # Leftovers of a killed upload expire after a day.
        self.client.put_bucket_lifecycle_configuration(
            Bucket=self.staging_bucket,
            LifecycleConfiguration={
                "Rules": [
                    {
                        "ID": "expire-staged-uploads",
                        "Status": "Enabled",
                        "Filter": {"Prefix": "staging/"},
                        "Expiration": {"Days": 1},
                        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                    }
                ]
            },
        )

    def upload(self, folder: str | Path, bundle: Path | None = None, progress: bool | None = None) -> UploadResult:
        """Uploads ``folder`` (and its signature bundle, stored beside it) and returns the pointer.

        Raises:
            ModelTreeError: The folder holds something unsafe (nothing is uploaded).
            UploadError: S3 refused a step; staged objects are cleaned up.
        """
        files = list_files(folder)
        if bundle is not None and Path(bundle).resolve().is_relative_to(Path(folder).resolve()):
            raise UploadError(f"{bundle}: the signature bundle must not be inside the model folder it signs")
        total = sum(f.path.stat().st_size for f in files)
        show = sys.stderr.isatty() if progress is None else progress
        staging = f"staging/{uuid.uuid4().hex}/"
        staged: dict[str, str] = {}
        with _Progress(total, show) as bar:
            try:
                self.ensure_staging_bucket()

                def stage(item: tuple[int, TreeFile]) -> FileEntry:
                    i, tf = item
                    key = f"{staging}{i}"
                    size, digest = _stage_file(self.client, self.staging_bucket, key, tf, self.part_size, bar.add)
                    staged[tf.rel] = key
                    return FileEntry(tf.rel, size, digest)

                with ThreadPoolExecutor(max_workers=self.workers) as pool:
                    manifest = Manifest(tuple(pool.map(stage, enumerate(files))))
                return self._anchor(manifest, staged, bundle)
            except (ClientError, BotoCoreError) as exc:
                raise UploadError(f"S3 refused the upload of {folder}: {exc}") from exc
            finally:
                for key in staged.values():
                    with contextlib.suppress(ClientError, BotoCoreError):
                        self.client.delete_object(Bucket=self.staging_bucket, Key=key)

    def _multipart_copy(self, source: dict[str, str], key: str, size: int) -> str:
        """Copies a large staged object in ranges; returns the new version id from the completion."""
        # No checksum algorithm here: S3 takes no checksum with UploadPartCopy (MinIO then refuses the
        # parts). The staged parts were checksummed on upload; `store verify` re-reads the copy.
        up = self.client.create_multipart_upload(Bucket=self.bucket, Key=key, **self._lock_args())
        parts = []
        try:
            for number, start in enumerate(range(0, size, self.copy_part), start=1):
                end = min(start + self.copy_part, size) - 1
                resp = self.client.upload_part_copy(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=up["UploadId"],
                    PartNumber=number,
                    CopySource=source,
                    CopySourceRange=f"bytes={start}-{end}",
                )
                parts.append({"PartNumber": number, "ETag": resp["CopyPartResult"]["ETag"]})
            done = self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=up["UploadId"], MultipartUpload={"Parts": parts}
            )
        except BaseException:
            with contextlib.suppress(ClientError, BotoCoreError):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=up["UploadId"])
            raise
        return str(done["VersionId"])

    def _retain_until(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.retention

    def _lock_args(self) -> dict[str, Any]:
        return {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": self._retain_until()}

    def _existing(self, manifest: Manifest, index_key: str, bundle: Path | None) -> UploadResult | None:
        """The anchored copy of this manifest, if one exists: the oldest index version that describes it.

        Later versions of the index key (anyone may write one) are ignored unless they match too.
        """
        listing = self.client.list_object_versions(Bucket=self.bucket, Prefix=index_key)
        candidates = sorted(
            (v for v in listing.get("Versions", []) if v["Key"] == index_key), key=lambda v: v["LastModified"]
        )
        for v in candidates:
            body = self.client.get_object(Bucket=self.bucket, Key=index_key, VersionId=v["VersionId"])["Body"].read()
            try:
                index = json.loads(body)
            except ValueError:
                continue
            if (
                index.get("manifestDigest") != manifest.manifest_digest
                or Manifest.from_json(index["manifest"]) != manifest
            ):
                continue
            if bundle is not None and not index.get("bundle"):
                raise UploadError(
                    f"model {manifest.manifest_digest} is already anchored without a signature bundle; "
                    "a bundle cannot be added to an anchored copy"
                )
            pointer = StoragePointer(self.bucket, index_key, v["VersionId"], hashlib.sha256(body).hexdigest())
            return UploadResult(pointer, manifest, False, dict(index.get("objects", {})))
        return None

    def _anchor(self, manifest: Manifest, staged: dict[str, str], bundle: Path | None) -> UploadResult:
        prefix = model_prefix(manifest)
        index_key = prefix + INDEX_NAME
        existing = self._existing(manifest, index_key, bundle)
        if existing is not None:
            return existing
        versions: dict[str, str] = {}
        for entry in manifest.files:
            key = prefix + "files/" + entry.path
            copy_source = {"Bucket": self.staging_bucket, "Key": staged[entry.path]}
            if entry.size <= self.copy_limit:
                resp = self.client.copy_object(
                    Bucket=self.bucket, Key=key, CopySource=copy_source, ChecksumAlgorithm="SHA256", **self._lock_args()
                )
                # The server's full-object SHA-256 of the copy must be the digest we computed while reading.
                got = resp.get("CopyObjectResult", {}).get("ChecksumSHA256", "")
                if got and "-" not in got and got != b64(bytes.fromhex(entry.sha256)):
                    raise UploadError(f"{entry.path}: the anchored copy's SHA-256 differs from the bytes read")
                versions[entry.path] = resp["VersionId"]
            else:
                versions[entry.path] = self._multipart_copy(copy_source, key, entry.size)
        index: dict[str, Any] = {
            "manifest": manifest.to_json(),
            "manifestDigest": manifest.manifest_digest,
            "modelDigest": manifest.model_digest,
            "objects": versions,
        }
        if bundle is not None:
            data = Path(bundle).read_bytes()
            resp = self.client.put_object(
                Bucket=self.bucket,
                Key=prefix + BUNDLE_NAME,
                Body=data,
                ChecksumSHA256=b64(hashlib.sha256(data).digest()),
                **self._lock_args(),
            )
            index["bundle"] = {
                "key": prefix + BUNDLE_NAME,
                "sha256": hashlib.sha256(data).hexdigest(),
                "versionId": resp["VersionId"],
            }
        body = json.dumps(index, sort_keys=True, separators=(",", ":")).encode()
        try:
            # Only the first index of a manifest wins; a concurrent identical upload then reuses it.
            resp = self.client.put_object(
                Bucket=self.bucket,
                Key=index_key,
                Body=body,
                ContentType="application/json",
                ChecksumSHA256=b64(hashlib.sha256(body).digest()),
                IfNoneMatch="*",
                **self._lock_args(),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "412"):
                raise
            existing = self._existing(manifest, index_key, None)
            if existing is None:
                raise UploadError(f"{index_key} exists but describes another manifest") from exc
            return existing
        pointer = StoragePointer(self.bucket, index_key, resp["VersionId"], hashlib.sha256(body).hexdigest())
        return UploadResult(pointer, manifest, True, versions)


class _Progress:
    """A rich progress bar on a terminal; silent otherwise."""

    def __init__(self, total: int, show: bool) -> None:
        self.total = total
        self.show = show
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if self.show:
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

            self._bar = Progress(
                "anchoring",
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                transient=True,
                console=Console(stderr=True),
            )
            self._bar.start()
            self._task = self._bar.add_task("upload", total=self.total)
        return self

    def add(self, n: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def __exit__(self, *_exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

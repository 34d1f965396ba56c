"""The anchored copy of a model: content-addressed chunks and the index that lists them.

Layout of the anchored bucket (Object Lock, COMPLIANCE retention on every version):

- ``blobs/sha256/<hex>``: a chunk of a file (at most the uploader's chunk size),
  named by the SHA-256 of its bytes. A file no larger than one chunk is a
  single blob whose name is the file's own SHA-256. Identical chunks of any
  model are stored once.
- ``models/<manifest digest>/index.json``: per file its path, size and
  SHA-256, and the chunks (key, SHA-256, size, version id) that concatenate to
  it; the signature bundle, if any, as one more blob; the model and manifest
  digests. The index is written last. Its bucket, key, version id and SHA-256
  are the storage pointer the ledger records.

Readers pin everything: the index by version id and SHA-256, each chunk by
version id and SHA-256, each file by its SHA-256.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from modelledger.mlops.store.digest import FileEntry, Manifest, ModelTreeError, path_order
from modelledger.mlops.store.s3errors import NOT_THERE, error_code

INDEX_FORMAT = "modelledger.store/2"
INDEX_NAME = "index.json"
BLOB_PREFIX = "blobs/sha256/"
MAX_INDEX_BYTES = 64 * 1024 * 1024  # an index of 10,000 files of 1,000 chunks each is about 2 GB: refused
_HEX64 = frozenset("0123456789abcdef")


class StoreError(Exception):
    """The anchored copy cannot be read as recorded (names the object)."""


class BlobMissingError(StoreError):
    """A recorded version of a blob is gone (deleted after its retention, or never written)."""


def blob_key(sha256_hex: str) -> str:
    """The content-addressed key of a chunk."""
    return BLOB_PREFIX + sha256_hex


def index_key(manifest_digest: str) -> str:
    """The key of a model's index."""
    return f"models/{manifest_digest}/{INDEX_NAME}"


@dataclass(frozen=True)
class StoragePointer:
    """Where the anchored copy lives: the index object (bucket, key, version id, SHA-256 of its bytes)."""

    bucket: str
    key: str
    version_id: str
    sha256: str

    def to_json(self) -> dict[str, str]:
        return {"bucket": self.bucket, "key": self.key, "sha256": self.sha256, "versionId": self.version_id}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> StoragePointer:
        try:
            return cls(str(doc["bucket"]), str(doc["key"]), str(doc["versionId"]), str(doc["sha256"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"a storage pointer needs bucket, key, versionId and sha256: {exc}") from exc

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class BlobRef:
    """One stored object, pinned by version id and SHA-256."""

    key: str
    sha256: str
    size: int
    version_id: str

    def to_json(self) -> dict[str, object]:
        return {"key": self.key, "sha256": self.sha256, "size": self.size, "versionId": self.version_id}

    @classmethod
    def from_json(cls, doc: Any) -> BlobRef:
        ref = cls(str(doc["key"]), str(doc["sha256"]), _count(doc["size"]), str(doc["versionId"]))
        if len(ref.sha256) != 64 or not set(ref.sha256) <= _HEX64 or ref.key != blob_key(ref.sha256):
            raise ValueError(f"blob {ref.key!r} is not named by a lowercase hex sha256")
        if not ref.version_id:
            raise ValueError(f"blob {ref.key!r} has no version id")
        return ref


def _count(value: Any) -> int:
    """A non-negative JSON integer (not a bool, float or string)."""
    if type(value) is not int or value < 0:
        raise ValueError(f"{value!r} is not a non-negative integer")
    return value


@dataclass(frozen=True)
class StoredFile:
    """One file of the model and the chunks that make it up, in order."""

    path: str
    size: int
    sha256: str
    chunks: tuple[BlobRef, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "chunks": [c.to_json() for c in self.chunks],
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
        }

    @property
    def entry(self) -> FileEntry:
        return FileEntry(self.path, self.size, self.sha256)


@dataclass(frozen=True)
class AnchoredIndex:
    """The content of ``index.json``."""

    files: tuple[StoredFile, ...]
    chunk_size: int
    bundle: BlobRef | None = None

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.files, key=lambda f: path_order(f.path)))
        if ordered != self.files:
            object.__setattr__(self, "files", ordered)

    @property
    def manifest(self) -> Manifest:
        return Manifest(tuple(f.entry for f in self.files))

    def to_bytes(self) -> bytes:
        m = self.manifest
        doc: dict[str, object] = {
            "chunkSize": self.chunk_size,
            "files": [f.to_json() for f in self.files],
            "format": INDEX_FORMAT,
            "manifestDigest": m.manifest_digest,
            "modelDigest": m.model_digest,
        }
        if self.bundle is not None:
            doc["bundle"] = self.bundle.to_json()
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, body: bytes) -> AnchoredIndex:
        """Parses and checks an index (paths safe, chunk sizes add up, digests consistent).

        Raises:
            ValueError: Not an index of this format, or inconsistent.
        """
        try:
            doc = json.loads(body)
            if doc.get("format") != INDEX_FORMAT:
                raise ValueError(f"format is {doc.get('format')!r}, expected {INDEX_FORMAT!r}")
            files = []
            for f in doc["files"]:
                chunks = tuple(BlobRef.from_json(c) for c in f["chunks"])
                sf = StoredFile(str(f["path"]), _count(f["size"]), str(f["sha256"]), chunks)
                if sum(c.size for c in chunks) != sf.size:
                    raise ValueError(f"{sf.path}: chunk sizes do not add up to the file size")
                files.append(sf)
            bundle = BlobRef.from_json(doc["bundle"]) if doc.get("bundle") else None
            index = cls(tuple(files), _count(doc["chunkSize"]), bundle)
            m = index.manifest  # checks paths, duplicates and digests' form
        except (KeyError, TypeError, AttributeError, ModelTreeError, RecursionError) as exc:
            raise ValueError(f"not a valid index: {type(exc).__name__} {exc}") from exc
        if doc.get("manifestDigest") != m.manifest_digest or doc.get("modelDigest") != m.model_digest:
            raise ValueError("the index's digests do not match its files")
        return index


def read_index(client: Any, pointer: StoragePointer) -> AnchoredIndex:
    """Reads the index the pointer names and checks it against the pointer's SHA-256.

    Raises:
        StoreError: Unreadable, another SHA-256, or not a valid index.
    """
    return read_index_sized(client, pointer)[0]


def read_index_sized(client: Any, pointer: StoragePointer) -> tuple[AnchoredIndex, int]:
    """:func:`read_index`, and the size in bytes of the index object (as :func:`referenced` needs it)."""
    try:
        obj = client.get_object(Bucket=pointer.bucket, Key=pointer.key, VersionId=pointer.version_id)
        if obj.get("ContentLength", 0) > MAX_INDEX_BYTES:
            raise StoreError(f"the index {pointer.uri} is larger than {MAX_INDEX_BYTES} bytes")
        body = obj["Body"].read()
    except (ClientError, BotoCoreError) as exc:
        raise StoreError(f"cannot read the index {pointer.uri} version {pointer.version_id}: {exc}") from exc
    if hashlib.sha256(body).hexdigest() != pointer.sha256:
        raise StoreError(f"the index {pointer.uri} does not match the pointer's sha256")
    try:
        return AnchoredIndex.from_bytes(body), len(body)
    except ValueError as exc:
        raise StoreError(f"{pointer.uri}: {exc}") from exc


def read_blob(client: Any, bucket: str, ref: BlobRef, buffer: int = 8 * 1024 * 1024) -> Iterator[bytes]:
    """Streams a blob at its recorded version; checks its size and SHA-256 at the end.

    Raises:
        StoreError: The version is gone (``missing`` in the message) or its bytes differ.
    """
    where = f"s3://{bucket}/{ref.key} version {ref.version_id}"
    try:
        body = client.get_object(Bucket=bucket, Key=ref.key, VersionId=ref.version_id)["Body"]
        h = hashlib.sha256()
        size = 0
        for part in body.iter_chunks(buffer):
            h.update(part)
            size += len(part)
            yield part
    except ClientError as exc:
        if error_code(exc) in NOT_THERE:
            raise BlobMissingError(f"{where} is missing: {exc}") from exc
        raise StoreError(f"{where} is unreadable: {exc}") from exc
    except BotoCoreError as exc:
        raise StoreError(f"{where} is unreadable: {exc}") from exc
    if size != ref.size or h.hexdigest() != ref.sha256:
        raise StoreError(f"s3://{bucket}/{ref.key} version {ref.version_id} does not hold the recorded bytes")


@dataclass(frozen=True)
class LockState:
    """How one recorded object version is protected.

    Attributes:
        ref: The object version (key, version id, SHA-256, size).
        mode: Its Object Lock mode ("" if none, or if it is gone).
        retain_until: End of its retention (the epoch if none).
        problem: Empty when the version exists with the recorded bytes and a COMPLIANCE lock.
    """

    ref: BlobRef
    mode: str
    retain_until: dt.datetime
    problem: str

    @property
    def sound(self) -> bool:
        return not self.problem


_EPOCH = dt.datetime.fromtimestamp(0, dt.UTC)


def lock_state(client: Any, bucket: str, ref: BlobRef) -> LockState:
    """HEADs the recorded version: it must exist, hold the recorded bytes (checksum, size), and be COMPLIANCE-locked."""
    try:
        head = client.head_object(Bucket=bucket, Key=ref.key, VersionId=ref.version_id, ChecksumMode="ENABLED")
    except ClientError as exc:
        if error_code(exc) in NOT_THERE:
            return LockState(ref, "", _EPOCH, f"{ref.key} version {ref.version_id} is gone")
        raise
    mode = str(head.get("ObjectLockMode") or "")
    until = head.get("ObjectLockRetainUntilDate") or _EPOCH
    checksum = base64.b64encode(bytes.fromhex(ref.sha256)).decode()
    if head.get("ContentLength") != ref.size or head.get("ChecksumSHA256") != checksum:
        return LockState(ref, mode, until, f"{ref.key} version {ref.version_id} does not hold the recorded bytes")
    if mode != "COMPLIANCE":
        return LockState(ref, mode, until, f"{ref.key} version {ref.version_id} is not COMPLIANCE-locked")
    return LockState(ref, mode, until, "")


def referenced(index: AnchoredIndex, pointer: StoragePointer, index_size: int) -> list[BlobRef]:
    """Every object version an anchored copy consists of: the index itself, each chunk, the bundle."""
    refs = [BlobRef(pointer.key, pointer.sha256, index_size, pointer.version_id)]
    refs += [c for f in index.files for c in f.chunks]
    if index.bundle is not None:
        refs.append(index.bundle)
    return refs

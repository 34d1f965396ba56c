"""Copying a model folder into the anchored bucket: one read of the bytes, a checksum on every request.

Each file is read once, in chunks (16 MiB by default). The reader feeds the
file's SHA-256 as it goes and hands each chunk to a pool of senders, which
hash the chunk and store it under its own content address,
``blobs/sha256/<hex>``, with ``x-amz-checksum-sha256`` and a COMPLIANCE
retention, unless a locked version with those exact bytes is already there
(a HEAD asks first; a blob of at most 1 MiB is sent straight away with
``If-None-Match: *`` and only checked when its key is taken).
Nothing is staged or copied afterwards, so the bytes cross the wire once.
Memory holds at most ``workers`` chunks (plus, for files streamed from
S3, a 1 MiB read buffer per reader).

When every file is read the manifest is known: the signature bundle is made
from it and stored while the last chunks are still being sent. Once every
chunk is stored, reused chunks get their retention extended to this
upload's, and the index is written last, with ``If-None-Match: *`` so that
only the first index of a manifest wins. If the key is taken and holds a
sound copy of exactly this index, that copy is the answer (an identical
re-upload writes no object). See :mod:`modelledger.mlops.store.index` for
the layout.

An upload that fails midway leaves locked chunks (and, if a chunk failed
after it was stored, its signature bundle) and no index; the chunks are
reused by the retry, and all of them expire with their retention.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from modelledger.mlops.store.digest import (
    FileEntry,
    Manifest,
    ModelTreeError,
    TreeFile,
    list_files,
    open_checked,
    path_order,
)
from modelledger.mlops.store.index import (
    MAX_INDEX_BYTES,
    AnchoredIndex,
    BlobRef,
    StoragePointer,
    StoredFile,
    blob_key,
    index_key,
    lock_state,
    referenced,
)
from modelledger.mlops.store.s3errors import NOT_THERE, error_code

CHUNK_SIZE = 16 * 1024 * 1024
_T = TypeVar("_T")
# Blobs up to this size are PUT with If-None-Match first (no HEAD): resending one whose key is taken costs little.
PUT_FIRST_MAX = 1024 * 1024
# What S3 answers to a conditional write whose condition failed (or raced another write of the key).
CONDITION_FAILED = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})


class UploadError(Exception):
    """The upload failed; nothing was recorded as anchored."""


@dataclass(frozen=True)
class UploadResult:
    """What an upload produced: the pointer to record, the manifest, and whether this call wrote the index."""

    pointer: StoragePointer
    manifest: Manifest
    created: bool
    index: AnchoredIndex


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def _read_part(f: FileReader, size: int) -> bytes:
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


def _read_into(f: FileReader, buf: bytearray) -> int:
    """Fills ``buf`` from ``f`` (short only at the end of the file); returns the byte count."""
    n = 0
    with memoryview(buf) as view:
        while n < len(buf):
            k = f.readinto(view[n:])
            if not k:
                break
            n += k
    return n


class _ChunkMemory:
    """At most ``count`` chunks in memory: each holder of a slot owns the bytes of one chunk.

    Full chunks are read into buffers that are reused (allocated on first use),
    so memory stays flat instead of churning through chunk-sized allocations,
    which the C allocator does not always give back. A file's short last chunk
    is read into exact-size bytes.
    """

    def __init__(self, count: int, size: int) -> None:
        self.size = size
        self._slots = threading.BoundedSemaphore(count)
        self._free: list[bytearray] = []
        self._lock = threading.Lock()

    def acquire(self) -> None:
        self._slots.acquire()

    def release(self, data: bytes | bytearray | None = None) -> None:
        """Gives back the slot, and the buffer if ``data`` is one."""
        if isinstance(data, bytearray):
            self.give_back(data)
        self._slots.release()

    def buffer(self) -> bytearray:
        with self._lock:
            return self._free.pop() if self._free else bytearray(self.size)

    def give_back(self, buf: bytearray) -> None:
        with self._lock:
            self._free.append(buf)


class _Stopped(UploadError):
    """This part gave up because another part of the upload failed (never the error reported)."""

    def __init__(self) -> None:
        super().__init__("stopped: another part of the upload failed")


@dataclass(frozen=True)
class _Sent:
    """A stored chunk and how long its version is locked (None: unknown, extend it)."""

    ref: BlobRef
    retain_until: dt.datetime | None


@dataclass(frozen=True)
class _ReadFile:
    """A file read to its end (its digest known) whose chunks may still be on their way to S3."""

    rel: str
    size: int
    sha256: str
    chunks: list[Future[_Sent]]
    stop: threading.Event

    @property
    def entry(self) -> FileEntry:
        return FileEntry(self.rel, self.size, self.sha256)

    def settle(self) -> tuple[StoredFile, list[_Sent]]:
        """Waits for every chunk; the stored file, or the failure (``_Stopped`` if another part failed)."""
        sent = [fu.result() for fu in self.chunks]
        if self.stop.is_set():
            raise _Stopped()
        return StoredFile(self.rel, self.size, self.sha256, tuple(s.ref for s in sent)), sent


class FileReader(Protocol):
    """One open file of a model, read once from the start: ``read``/``readinto`` and a final check."""

    size: int  # the bytes expected, as of opening

    def read(self, size: int, /) -> bytes: ...

    def readinto(self, buffer: Any, /) -> int: ...

    def finish(self, size_read: int) -> None:
        """Raises if the file changed while it was read (``size_read`` bytes were read)."""


class ModelFile(Protocol):
    """A file of a model to anchor: its manifest path, its expected size, and a way to read it once."""

    @property
    def rel(self) -> str: ...

    @property
    def size(self) -> int: ...

    def open(self) -> AbstractContextManager[FileReader]: ...


@dataclass(frozen=True)
class LocalFile:
    """A file of a local model folder (see :func:`~modelledger.mlops.store.digest.list_files`)."""

    tree_file: TreeFile

    @property
    def rel(self) -> str:
        return self.tree_file.rel

    @property
    def size(self) -> int:
        return self.tree_file.path.stat().st_size

    @contextlib.contextmanager
    def open(self) -> Iterator[FileReader]:
        with open_checked(self.tree_file) as f:
            yield _LocalReader(f, self.tree_file.rel, os.fstat(f.fileno()))


class _LocalReader:
    def __init__(self, f: BinaryIO, rel: str, before: os.stat_result) -> None:
        self._f, self._rel, self._before = f, rel, before
        self.size = before.st_size
        self.read, self.readinto = f.read, f.readinto  # type: ignore[method-assign]

    def finish(self, size_read: int) -> None:
        after = os.fstat(self._f.fileno())
        same = (after.st_size, after.st_mtime_ns) == (self._before.st_size, self._before.st_mtime_ns)
        if not same or size_read != after.st_size:
            raise ModelTreeError(f"{self._rel}: changed while it was being read; upload again once it is stable")


class ModelUploader:
    """Uploads model folders to the anchored bucket as content-addressed, locked chunks.

    Args:
        client: A boto3 S3 client (see ``modelledger.mlops.servers.minio.s3_client``; payload signing off).
        bucket: The anchored bucket (Object Lock on).
        retention: How long every object of an anchored model stays locked in COMPLIANCE mode.
        workers: Chunks sent in parallel (and the most chunks held in memory).
        chunk_size: Bytes per chunk (each one request with its own SHA-256).
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        retention: dt.timedelta,
        workers: int = 4,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        if workers < 1 or chunk_size < 1:
            raise ValueError("workers and chunk_size must be positive")
        self.client = client
        self.bucket = bucket
        self.retention = retention
        self.workers = workers
        self.chunk_size = chunk_size

    def upload(
        self, folder: str | Path, bundle: Path | Callable[[Manifest], Path] | None = None, progress: bool | None = None
    ) -> UploadResult:
        """Uploads ``folder`` (and its signature bundle, stored beside it) and returns the pointer.

        Args:
            folder: The model folder.
            bundle: The signature bundle, or a function that makes it from the
                manifest (called once every file is read, e.g. with
                :func:`~modelledger.mlops.store.signing.sign_manifest`) and returns its path.
            progress: Show a progress bar (default: when stderr is a terminal).

        Raises:
            ModelTreeError: The folder holds something unsafe (nothing is uploaded).
            UploadError: S3 refused a step, or the bundle lies inside the folder; no index was written.
        """
        files = list_files(folder)
        if not files:
            raise UploadError(f"{folder} holds no files: nothing to anchor")
        root = Path(folder).resolve()

        def outside(path: Path | str) -> Path:
            if Path(path).resolve().is_relative_to(root):
                raise UploadError(f"{path}: the signature bundle must not be inside the model folder it signs")
            return Path(path)

        checked: Path | Callable[[Manifest], Path] | None = None
        if callable(bundle):
            make = bundle
            checked = lambda manifest: outside(make(manifest))  # noqa: E731
        elif bundle is not None:
            checked = outside(bundle)  # refused before anything is sent
        return self.upload_files([LocalFile(tf) for tf in files], str(folder), checked, progress)

    def upload_files(
        self,
        files: Sequence[ModelFile],
        label: str,
        bundle: Path | Callable[[Manifest], Path] | None = None,
        progress: bool | None = None,
    ) -> UploadResult:
        """Uploads a model given as its files (local, or streamed from another store), like :meth:`upload`.

        Args:
            files: The model's files, in any order; at least one.
            label: What the model is called in errors (its folder or URI).
            bundle: As for :meth:`upload`.
            progress: As for :meth:`upload`.

        Raises:
            ModelTreeError: A local file changed while it was read.
            UploadError: S3 refused a step; no index was written.
            Exception: Whatever a file's reader raises (e.g. ``SourceError`` for an object that
                changed in its store) or the bundle function (e.g. ``SignatureError``); no index was written.
        """
        if not files:
            raise UploadError(f"{label} holds no files: nothing to anchor")
        files = sorted(files, key=lambda f: path_order(f.rel))
        total = sum(f.size for f in files)
        show = sys.stderr.isatty() if progress is None else progress
        # Whole seconds: S3 keeps retention dates to the second, and a date a fraction below the stored
        # one would read as shortening the lock.
        retain_until = (dt.datetime.now(dt.UTC) + self.retention).replace(microsecond=0) + dt.timedelta(seconds=1)

        def store_bundle(manifest: Manifest, stopped: Callable[[], bool]) -> _Sent | None:
            # Not signed, or not stored, once a chunk has failed. A chunk that fails after the bundle is
            # stored leaves it behind, locked and unreferenced, like the chunks sent before the failure.
            if stopped():
                raise _Stopped()
            signed = bundle(manifest) if callable(bundle) else bundle
            if signed is None:
                return None
            if stopped():
                raise _Stopped()
            return self._store_blob(Path(signed).read_bytes(), retain_until)

        try:
            with _Progress(total, show) as bar:
                # The bundle is made and stored once every file is read, while their last chunks are still sent.
                results, bundle_sent = self._send_files(files, retain_until, bar.add, store_bundle)
            sent = [s for _, chunks in results for s in chunks]
            index = AnchoredIndex(tuple(sf for sf, _ in results), self.chunk_size)
            return self._anchor(index, sent, bundle_sent, retain_until)
        except (ClientError, BotoCoreError) as exc:
            raise UploadError(f"S3 refused the upload of {label}: {exc}") from exc

    def _send_files(
        self,
        files: Sequence[ModelFile],
        retain_until: dt.datetime,
        on_bytes: Callable[[int], None],
        when_read: Callable[[Manifest, Callable[[], bool]], _Sent | None],
    ) -> tuple[list[tuple[StoredFile, list[_Sent]]], _Sent | None]:
        """Reads the files in parallel (each once, in order) and stores their chunks in parallel.

        Once every file is read (the manifest known), ``when_read`` runs while
        the last chunks are still being stored (it is given a function telling
        whether the upload has failed meanwhile); its result is returned beside
        the stored files. At most ``workers`` chunks are in memory. The first
        failure stops every other reader and sender, and it is the one raised.
        """
        memory = _ChunkMemory(self.workers, self.chunk_size)
        stop = threading.Event()
        first: list[BaseException] = []

        def failed(exc: BaseException) -> None:
            if not isinstance(exc, _Stopped) and not first:
                first.append(exc)
            stop.set()

        def send(data: bytes | bytearray) -> _Sent:
            try:
                if stop.is_set():
                    raise _Stopped()
                sent = self._store_blob(data, retain_until)
                on_bytes(len(data))
                return sent
            except BaseException as exc:
                failed(exc)
                raise
            finally:
                memory.release(data)

        def guarded(fn: Callable[[], _T]) -> _T:
            try:
                return fn()
            except BaseException as exc:
                failed(exc)
                raise

        try:
            with (
                ThreadPoolExecutor(self.workers, thread_name_prefix="s3-send") as senders,
                ThreadPoolExecutor(max(1, min(self.workers, len(files))), thread_name_prefix="s3-read") as readers,
            ):

                last = threading.local()  # each reader's previous file

                def read(mf: ModelFile) -> _ReadFile:
                    # A reader opens its next file only once its previous file's chunks are stored (one
                    # file in flight per reader, so a failure leaves few files opened); its last file
                    # is still being stored when ``when_read`` runs.
                    previous: _ReadFile | None = getattr(last, "read", None)
                    if previous is not None:
                        futures_wait(previous.chunks)
                    last.read = guarded(
                        lambda: self._read_file(mf, lambda data: senders.submit(send, data), memory, stop)
                    )
                    return last.read

                try:
                    reads = list(readers.map(read, files))
                    manifest = Manifest(tuple(r.entry for r in reads))
                    extra = guarded(lambda: when_read(manifest, stop.is_set))
                    return [guarded(r.settle) for r in reads], extra
                except BaseException:
                    stop.set()  # e.g. Ctrl-C in this thread: the pool threads stop at their next chunk
                    raise
        except BaseException:
            if first:
                raise first[0] from None
            raise

    def _read_file(
        self,
        mf: ModelFile,
        submit: Callable[[bytes | bytearray], Future[_Sent]],
        memory: _ChunkMemory,
        stop: threading.Event,
    ) -> _ReadFile:
        """Reads one file once: feeds its SHA-256 and hands each chunk to a sender (which frees its slot)."""
        whole = hashlib.sha256()
        size = 0
        futures: list[Future[_Sent]] = []
        if stop.is_set():
            raise _Stopped()  # not even opened (for a remote file, no request) once the upload has failed
        with mf.open() as f:
            expected = f.size
            while not stop.is_set():
                memory.acquire()
                if stop.is_set():
                    memory.release()
                    break
                try:
                    data = self._next_chunk(f, memory, expected - size)
                except BaseException:
                    memory.release()
                    raise
                if not data:
                    memory.release()
                    break
                whole.update(data)
                size += len(data)
                try:
                    futures.append(submit(data))
                except BaseException:
                    memory.release(data)
                    raise
                last = len(data) < self.chunk_size
                del data  # the sender holds the only reference
                if last:
                    break
            changed: Exception | None = None
            if not stop.is_set():
                try:
                    f.finish(size)
                except Exception as exc:  # reported once this file's chunks are settled
                    changed = exc
        read = _ReadFile(mf.rel, size, whole.hexdigest(), futures, stop)
        if stop.is_set() or changed is not None:
            read.settle()
        if changed is not None:
            raise changed
        return read

    def _next_chunk(self, f: FileReader, memory: _ChunkMemory, left: int) -> bytes | bytearray:
        """The next chunk: a reused buffer when a full one is expected, exact-size bytes otherwise."""
        if left < self.chunk_size:
            return _read_part(f, self.chunk_size)
        buf = memory.buffer()
        n = _read_into(f, buf)
        if n == len(buf):
            return buf
        with memoryview(buf) as view:
            tail = bytes(view[:n])  # the file shrank while being read: keep only what is there
        memory.give_back(buf)
        return tail

    def _store_blob(self, data: bytes | bytearray, retain_until: dt.datetime) -> _Sent:
        """Stores ``data`` under its content address unless a locked version with these bytes is there."""
        digest = hashlib.sha256(data).digest()
        key = blob_key(digest.hex())
        checksum = b64(digest)
        if len(data) <= PUT_FIRST_MAX:
            # A small blob is sent at once, on condition that its key is still free (a new model's
            # blobs nearly always are): one request instead of a HEAD and a PUT. A taken key goes on
            # to the check below, as a large blob does first.
            try:
                return self._put_blob(key, data, digest, retain_until, {"IfNoneMatch": "*"})
            except ClientError as exc:
                if error_code(exc) not in CONDITION_FAILED:
                    raise
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if error_code(exc) not in NOT_THERE:
                raise
        else:
            if (
                head.get("ChecksumSHA256") == checksum
                and head.get("ContentLength") == len(data)
                and head.get("ObjectLockMode") == "COMPLIANCE"
            ):
                ref = BlobRef(key, digest.hex(), len(data), str(head["VersionId"]))
                return _Sent(ref, head.get("ObjectLockRetainUntilDate"))
        return self._put_blob(key, data, digest, retain_until, {})

    def _put_blob(
        self, key: str, data: bytes | bytearray, digest: bytes, retain_until: dt.datetime, condition: dict[str, str]
    ) -> _Sent:
        resp = self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ChecksumSHA256=b64(digest),
            ObjectLockMode="COMPLIANCE",
            ObjectLockRetainUntilDate=retain_until,
            **condition,
        )
        return _Sent(BlobRef(key, digest.hex(), len(data), str(resp["VersionId"])), retain_until)

    def _existing(self, index: AnchoredIndex, retain_until: dt.datetime) -> UploadResult | None:
        """The anchored copy of exactly this index (same files, same bundle), if a sound one exists.

        The index key's versions are tried oldest first; anyone may write one,
        so a version counts only if it parses, describes this manifest and
        bundle, and it and every object it names are still COMPLIANCE-locked
        with the recorded bytes. The copy found has its locks extended to
        ``retain_until`` (a re-anchoring must last as long as a new one).

        Returns:
            The copy, or None.
        """
        key = index_key(index.manifest.manifest_digest)
        versions = []
        for page in self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=key):
            versions += [v for v in page.get("Versions", []) if v["Key"] == key]
        for v in sorted(versions, key=lambda v: v["LastModified"]):
            if v.get("Size", 0) > MAX_INDEX_BYTES:
                continue
            body = self.client.get_object(Bucket=self.bucket, Key=key, VersionId=v["VersionId"])["Body"].read()
            try:
                found = AnchoredIndex.from_bytes(body)
            except ValueError:
                continue
            if found.manifest != index.manifest or _bundle_sha(found) != _bundle_sha(index):
                continue
            pointer = StoragePointer(self.bucket, key, v["VersionId"], hashlib.sha256(body).hexdigest())
            locks = [lock_state(self.client, self.bucket, ref) for ref in referenced(found, pointer, len(body))]
            if not all(lock.sound for lock in locks):
                continue
            self._extend([lock.ref for lock in locks if lock.retain_until < retain_until], retain_until)
            return UploadResult(pointer, found.manifest, False, found)
        return None

    def _extend(self, refs: list[BlobRef], retain_until: dt.datetime) -> None:
        """Lengthens the COMPLIANCE retention of these versions to ``retain_until``."""
        done: set[tuple[str, str]] = set()
        for ref in refs:
            pin = (ref.key, ref.version_id)
            if pin in done:
                continue
            try:
                self.client.put_object_retention(
                    Bucket=self.bucket,
                    Key=ref.key,
                    VersionId=ref.version_id,
                    Retention={"Mode": "COMPLIANCE", "RetainUntilDate": retain_until},
                )
            except ClientError:
                # Refused as shortening: a concurrent upload extended it further meanwhile. That is fine
                # only if the lock now lasts at least as long as this upload needs.
                lock = lock_state(self.client, self.bucket, ref)
                if not lock.sound or lock.retain_until < retain_until:
                    raise
            done.add(pin)

    def _anchor(
        self, index: AnchoredIndex, sent: list[_Sent], bundle: _Sent | None, retain_until: dt.datetime
    ) -> UploadResult:
        index = AnchoredIndex(index.files, index.chunk_size, bundle.ref if bundle else None)
        # Chunks shared with older models must stay locked at least as long as this model's index.
        stored = [*sent, *([bundle] if bundle else [])]
        self._extend([s.ref for s in stored if s.retain_until is None or s.retain_until < retain_until], retain_until)
        body = index.to_bytes()
        key = index_key(index.manifest.manifest_digest)
        # The first index of a manifest is written only if the key is still free. A taken key (this
        # manifest was anchored before, or is being anchored now) is searched for a sound copy of exactly
        # this index, which is reused; only a key holding other or unsound versions gets one more version.
        try:
            resp = self._put_index(key, body, retain_until, {"IfNoneMatch": "*"})
        except ClientError as exc:
            if error_code(exc) not in CONDITION_FAILED:
                raise
            existing = self._existing(index, retain_until)
            if existing is not None:
                return existing
            resp = self._put_index(key, body, retain_until, {})
        pointer = StoragePointer(self.bucket, key, resp["VersionId"], hashlib.sha256(body).hexdigest())
        return UploadResult(pointer, index.manifest, True, index)

    def _put_index(self, key: str, body: bytes, retain_until: dt.datetime, condition: dict[str, str]) -> Any:
        return self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType="application/json",
            ChecksumSHA256=b64(hashlib.sha256(body).digest()),
            ObjectLockMode="COMPLIANCE",
            ObjectLockRetainUntilDate=retain_until,
            **condition,
        )


def _bundle_sha(index: AnchoredIndex) -> str:
    return index.bundle.sha256 if index.bundle else ""


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

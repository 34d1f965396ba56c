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

This module holds the reading and sending (:class:`ModelUploader`); the
locked writes of chunks and index are in
:mod:`~modelledger.mlops.store.locked_writes` (the uploader's base class), the
files it reads in :mod:`~modelledger.mlops.store.model_files`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from modelledger.mlops.store.digest import FileEntry, Manifest, list_files, path_order
from modelledger.mlops.store.index import AnchoredIndex, StoredFile
from modelledger.mlops.store.locked_writes import LockedWrites, UploadResult, _Sent
from modelledger.mlops.store.model_files import (
    FileReader,
    LocalFile,
    ModelFile,
    _ChunkMemory,
    _read_into,
    _read_part,
)

# The uploader's surface; LocalFile, ModelFile (model_files) and UploadResult (locked_writes) are part of it.
__all__ = ["CHUNK_SIZE", "LocalFile", "ModelFile", "ModelUploader", "UploadError", "UploadResult"]

CHUNK_SIZE = 16 * 1024 * 1024
_T = TypeVar("_T")


class UploadError(Exception):
    """The upload failed; nothing was recorded as anchored."""


class _Stopped(UploadError):
    """This part gave up because another part of the upload failed (never the error reported)."""

    def __init__(self) -> None:
        super().__init__("stopped: another part of the upload failed")


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


class ModelUploader(LockedWrites):
    """Uploads model folders to the anchored bucket as content-addressed, locked chunks.

    Args:
        client: A boto3 S3 client (see ``modelledger.mlops.store.s3_access.s3_client``; payload signing off).
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

"""The files of a model to anchor, each read once from the start, and the memory their chunks take.

:class:`ModelFile` is what :class:`~modelledger.mlops.store.upload.ModelUploader`
uploads: a manifest path, an expected size and a way to open a
:class:`FileReader`. :class:`LocalFile` is a file of a local model folder;
:class:`~modelledger.mlops.store.source.S3Object` streams one from another
store. :class:`_ChunkMemory` bounds how many chunks are held at once.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

from modelledger.mlops.store.digest import ModelTreeError, TreeFile, open_checked


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

"""How an anchoring job runs several things at once, and where it may be made to crash.

- **Requests beside the main line** (MLflow and ledger reads, tag writes):
  :func:`spawn` runs one on the worker's pool and adds it to the job's
  ``background`` list; the job waits for every one of them before its outcome
  is recorded, so no tag of an attempt lands after it; :func:`all_done` waits
  for a group and raises the first failure.
- **A copy that goes ahead of the reads**: a just-announced version's files
  are copied while the reads that may refuse it (on the ledger already, gone,
  not ready, a prompt's) finish; :class:`UntilRefused` stops that copy at its
  next read once they do.
- **One writer of a version's status at a time**: the anchoring worker and
  the ledger follower both write ``ledger.status`` from a ledger record they
  read; :class:`VersionLocks` makes each read-then-write one step per version,
  so the later writer always wrote from the later read.
- **Fault points** for the crash tests: :func:`fault_point` exits the process
  (as if killed) where ``MODELLEDGER_BRIDGE_FAULT`` says.

The durable side of concurrency (leases, heartbeats, checkpoints) is the
outbox's (:mod:`~modelledger.mlops.bridge.outbox`) and the workers'
(:mod:`~modelledger.mlops.bridge.workers`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from typing import Any

from modelledger.mlops.store.upload import ModelFile
from modelledger.runtime.settings import bridge_fault_point

# The anchoring job's logger, as when this was part of anchor.py: its log lines keep their logger name
# (operators filter on it; tests/unit/test_bridge_anchor.py listens on it).
log = logging.getLogger("modelledger.bridge.anchor")

# Where a crash test may make the bridge exit (MODELLEDGER_BRIDGE_FAULT, read in runtime/settings.py).
# ``follower-after-apply``: the ledger follower wrote an event's tags but has not checkpointed it yet.
FAULT_POINTS = ("after-upload", "after-submit", "before-commit-status", "follower-after-apply")


def fault_point(point: str) -> None:
    """Exits the process at once (status 137, as if killed) if the crash test asks for ``point``.

    Raises:
        ValueError: ``point`` is not one of :data:`FAULT_POINTS` (a crash test could never reach it).
    """
    if point not in FAULT_POINTS:
        raise ValueError(f"unknown fault point {point!r}; one of {', '.join(FAULT_POINTS)}")
    if bridge_fault_point() == point:
        log.warning("fault injection: exiting at %s", point)
        logging.shutdown()
        os._exit(137)


def spawn(pool: ThreadPoolExecutor, background: list[Future[Any]], fn: Any, *args: Any) -> Future[Any]:
    """Runs ``fn(*args)`` on ``pool`` beside the job's main line; the job waits for all of ``background``."""
    future = pool.submit(fn, *args)
    background.append(future)
    return future


def all_done(futures: list[Future[Any]]) -> None:
    """Waits for every request, then raises the first failure (none is left running behind an error)."""
    futures_wait(futures)
    for future in futures:
        future.result()


class UntilRefused:
    """A model file whose reading stops at its next read once the version's reads have refused it.

    A copy that went ahead of the reads (a just-announced version) then sends
    no more chunks of a version that is on the ledger, gone, not ready, or a
    prompt's; whatever the copy had sent is content-addressed and unreferenced.
    """

    def __init__(self, file: ModelFile, due: Future[Any]) -> None:
        self._file, self._due = file, due

    @property
    def rel(self) -> str:
        return self._file.rel

    @property
    def size(self) -> int:
        return self._file.size

    def check(self) -> None:
        if self._due.done():
            self._due.result()  # raises the refusal

    @contextlib.contextmanager
    def open(self) -> Iterator[Any]:
        self.check()
        with self._file.open() as reader:
            yield CheckedReader(reader, self.check)


class CheckedReader:
    """A file reader that calls ``check`` before every read (it raises to stop the copy)."""

    def __init__(self, reader: Any, check: Callable[[], None]) -> None:
        self._reader, self._check = reader, check
        self.size = reader.size

    def read(self, size: int, /) -> bytes:
        self._check()
        return self._reader.read(size)  # type: ignore[no-any-return]

    def readinto(self, buffer: Any, /) -> int:
        self._check()
        return self._reader.readinto(buffer)  # type: ignore[no-any-return]

    def finish(self, size_read: int) -> None:
        self._reader.finish(size_read)


class VersionLocks:
    """One lock per model version, for the read-the-ledger-then-write-the-status steps of the bridge's threads.

    The anchoring worker (its ``anchored`` tag) and the ledger follower (the
    status the ledger moved on to) each read the version's record and write
    ``ledger.status`` from it while holding the version's lock. Whichever
    writes last read last, so an older record never overwrites a newer status
    (e.g. a re-anchored version that was approved meanwhile stays ``approved``).
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._users: dict[tuple[str, str], int] = {}

    @contextlib.contextmanager
    def hold(self, name: str, version: str) -> Iterator[None]:
        """Holds the lock of ``name``/``version`` for the ``with`` block (forgotten once no thread uses it)."""
        key = (name, str(version))
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
            self._users[key] = self._users.get(key, 0) + 1
        try:
            with lock:
                yield
        finally:
            with self._guard:
                self._users[key] -= 1
                if not self._users[key]:
                    del self._users[key], self._locks[key]

"""The ledger follower's dead letters: versions whose event it could not apply, moved past and re-mirrored later.

An event the follower cannot apply at once for a permanent reason (a payload
or record that cannot be parsed, MLflow refusing with a 4xx such as 403), or
still cannot after ``tries`` tries of a transient failure (MLflow or the peer
down: connection errors, gRPC UNAVAILABLE/DEADLINE_EXCEEDED, HTTP 5xx/429,
:func:`~modelledger.mlops.bridge.errors.is_transient`), is written here, and
only then is the follower's checkpoint moved past it: one bad event no longer
stops every later one.

- **Durable**: a JSON file in the bridge's state folder
  (``BridgeSettings.follower_dead_letter_file``), 0600, replaced atomically;
  written before the checkpoint moves, so a crash in between delivers the
  event again (and it lands on the same entry).
- **One entry per version** (the newest event, its reason, how many events
  failed): the reconciler re-mirrors a version from its ledger record as it is
  now, not event by event. An event that names no version (its payload
  cannot be parsed) gets an entry of its own, keyed by its transaction; it is
  shown until an operator removes it (nothing can re-mirror it).
- **Bounded** (:data:`MAX_DEAD_LETTERS`): when the list is full, a failing
  event is not moved past; the follower retries it (as it did before there was a list), and
  ``bridge status`` says the list is full. Nothing is dropped.
- **Cleared by the reconciler**: each scan re-mirrors every dead-lettered
  version (:meth:`~modelledger.mlops.bridge.ledger_follower.VersionMirror.apply`,
  from the ledger's record, under the version's lock) and removes its entry
  when that works and no newer failure replaced it meanwhile.
- ``modelledger bridge status`` shows how many there are and the first few.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelledger.runtime.private_files import make_private_dir

__all__ = ["DEAD_LETTERS_SHOWN", "MAX_DEAD_LETTERS", "DeadLetters", "read_dead_letters", "remirror"]

log = logging.getLogger("modelledger.bridge.follower")

MAX_DEAD_LETTERS = 1000
# The entries ``bridge status`` shows (it says how many there are).
DEAD_LETTERS_SHOWN = 5


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_dead_letters(path: Path) -> list[dict[str, Any]]:
    """The entries of a dead-letter file (none if it is missing or unreadable): for ``bridge status``."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    entries = doc.get("entries") if isinstance(doc, dict) else None
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def _key(entry: dict[str, Any]) -> str:
    if entry.get("name") and entry.get("version"):
        return f"{entry['name']}/{entry['version']}"
    return f"tx:{entry.get('tx_id', '')}"


class DeadLetters:
    """The dead-letter file (see the module docstring); shared by the follower and the reconciler's thread.

    Args:
        path: The file (its folder is created 0700 if missing).
        limit: The most entries it holds.
        clock: The time written into an entry (UTC, ISO 8601).
    """

    def __init__(self, path: Path, limit: int = MAX_DEAD_LETTERS, clock: Callable[[], str] | None = None) -> None:
        self.path, self.limit, self.clock = path, limit, clock or _utc_now
        self._lock = threading.Lock()
        self._entries = {_key(e): e for e in read_dead_letters(path)}

    def entries(self) -> list[dict[str, Any]]:
        """Every entry, oldest first."""
        with self._lock:
            return [dict(e) for e in self._entries.values()]

    def full(self) -> bool:
        with self._lock:
            return len(self._entries) >= self.limit

    def add(self, name: str, version: str, event: Any, reason: str) -> bool:
        """Records that ``event`` (of ``name``/``version``; both empty if it names none) failed; False if full.

        The file is written before this returns (the caller checkpoints the event only after).
        """
        entry: dict[str, Any] = {
            "name": name,
            "version": version,
            "event": event.name,
            "block": event.block_number,
            "tx_id": event.transaction_id,
            "reason": reason,
            "time": self.clock(),
        }
        key = _key(entry)
        with self._lock:
            old = self._entries.get(key)
            if old is None and len(self._entries) >= self.limit:
                return False
            entry["failures"] = int((old or {}).get("failures", 0)) + 1
            self._entries.pop(key, None)
            self._entries[key] = entry
            self._save()
        return True

    def clear(self, entry: dict[str, Any]) -> bool:
        """Removes ``entry`` if it is still what the list holds for its version (no newer failure); True if removed."""
        key = _key(entry)
        with self._lock:
            if self._entries.get(key) != entry:
                return False
            del self._entries[key]
            self._save()
        return True

    def _save(self) -> None:
        make_private_dir(self.path.parent)  # it and each missing parent 0700, whatever the umask
        tmp = self.path.with_name(self.path.name + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"entries": list(self._entries.values())}, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


def remirror(dead: DeadLetters, apply: Callable[[str, str], str]) -> list[str]:
    """The reconciler's pass: re-mirrors each dead-lettered version from its ledger record; returns those cleared.

    A failure leaves the entry for the next scan (logged); an entry that names no version is left as it is.
    """
    cleared: list[str] = []
    for entry in dead.entries():
        name, version = str(entry.get("name") or ""), str(entry.get("version") or "")
        if not name or not version:
            continue
        try:
            outcome = apply(name, version)
        except Exception as exc:
            text = str(exc).splitlines()[0] if str(exc) else ""
            log.warning(
                "dead-lettered version still cannot be mirrored; next scan",
                extra={"version": f"{name}/{version}", "reason": f"{type(exc).__name__}: {text}".rstrip(": ")},
            )
            continue
        if dead.clear(entry):
            cleared.append(f"{name}/{version}")
            log.info("dead-lettered version mirrored again", extra={"version": f"{name}/{version}", "outcome": outcome})
    return cleared

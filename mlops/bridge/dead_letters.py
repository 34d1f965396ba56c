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
- **Damaged file set aside**: a file that cannot be read or parsed is renamed
  ``<name>.corrupt-<UTC time>`` (0600) and logged, never overwritten; the new
  file names it (``bridge status`` shows it while it exists) and asks the
  reconciler for one **full pass**: its next scan re-mirrors every version on
  the ledger that MLflow holds (:func:`full_pass`), since the lost entries are unknown.
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
from types import SimpleNamespace
from typing import Any

from modelledger.runtime.private_files import make_private_dir

__all__ = [
    "DEAD_LETTERS_SHOWN",
    "MAX_DEAD_LETTERS",
    "DeadLetters",
    "full_pass",
    "read_dead_letters",
    "read_set_aside",
    "remirror",
]

log = logging.getLogger("modelledger.bridge.follower")

MAX_DEAD_LETTERS = 1000
# The entries ``bridge status`` shows (it says how many there are).
DEAD_LETTERS_SHOWN = 5


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# A version that failed during a full pass: recorded as a dead letter of its own (re-mirrored by later scans).
_FULL_PASS = SimpleNamespace(name="full pass", block_number=None, transaction_id="")


def _parse(text: str) -> dict[str, Any]:
    """The document of a dead-letter file; ValueError if it is not one."""
    doc = json.loads(text)
    if not isinstance(doc, dict) or not isinstance(doc.get("entries"), list):
        raise ValueError("not a dead-letter document (no list of entries)")
    return doc


def _read(path: Path) -> dict[str, Any]:
    """The document of a dead-letter file (empty if it is missing).

    Raises:
        OSError: The file cannot be read.
        ValueError: It cannot be parsed.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {"entries": []}
    return _parse(text)


def read_dead_letters(path: Path) -> list[dict[str, Any]]:
    """The entries of a dead-letter file (none if it is missing or unreadable): for ``bridge status``."""
    try:
        entries = _read(path)["entries"]
    except (OSError, ValueError):
        return []
    return [e for e in entries if isinstance(e, dict)]


def read_set_aside(path: Path) -> str:
    """The damaged dead-letter file the bridge set aside, while it still exists ("" if none): for ``bridge status``."""
    try:
        aside = str(_read(path).get("set_aside") or "")
    except (OSError, ValueError):
        return ""
    return aside if aside and Path(aside).exists() else ""  # as DeadLetters.shown_set_aside


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
        self._entries: dict[str, dict[str, Any]] = {}
        try:
            doc = _read(path)
        except (OSError, ValueError) as exc:
            self.set_aside, self.full_pass_due = self._set_aside(exc), True
            self._save()  # the full pass is asked for durably: a restart before it still runs it
            return
        self._entries = {_key(e): e for e in doc["entries"] if isinstance(e, dict)}
        self.set_aside = str(doc.get("set_aside") or "")  # the damaged file last set aside ("" if none)
        self.full_pass_due = bool(doc.get("full_pass_due"))  # the reconciler's next scan re-mirrors every version

    def _set_aside(self, exc: Exception) -> str:
        """Renames the damaged file ``<name>.corrupt-<UTC time>`` (0600) and logs it; returns its path.

        Raises:
            OSError: It cannot be renamed (the bridge does not start rather than overwrite it).
        """
        stamp = self.clock().replace("-", "").replace(":", "")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while target.exists():  # never replace an earlier one set aside in the same second
            n += 1
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
        try:
            os.rename(self.path, target)
            os.chmod(target, 0o600)
        except OSError as err:
            raise OSError(f"cannot set the damaged dead-letter file {self.path} aside: {err}") from exc
        text = str(exc).splitlines()[0] if str(exc) else ""
        log.error(
            "dead-letter file damaged: set aside; the reconciler re-mirrors every version once",
            extra={"path": str(target), "reason": f"{type(exc).__name__}: {text}".rstrip(": ")},
        )
        return str(target)

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

    def shown_set_aside(self) -> str:
        """The damaged file set aside, while it still exists (an operator removes it once inspected), or ""."""
        return self.set_aside if self.set_aside and Path(self.set_aside).exists() else ""

    def full_pass_done(self) -> None:
        """The reconciler re-mirrored every version (or dead-lettered those it could not): no full pass is due."""
        with self._lock:
            self.full_pass_due = False
            self._save()

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
            doc: dict[str, Any] = {"entries": list(self._entries.values())}
            if self.set_aside:
                doc["set_aside"] = self.set_aside
            if self.full_pass_due:
                doc["full_pass_due"] = True
            json.dump(doc, f, indent=1)
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


def full_pass(dead: DeadLetters, apply: Callable[[str, str], str], versions: list[tuple[str, str]]) -> int:
    """Once after a damaged file was set aside: re-mirrors each of ``versions``; returns how many were applied.

    The lost entries are unknown, so every version on the ledger that MLflow holds is mirrored again
    (``apply`` leaves alone those not tagged anchored). One that fails becomes a dead letter of its own
    (the next scans retry it); the pass is done when none is left unrecorded, else the next scan runs it again.
    """
    applied, complete = 0, True
    for name, version in versions:
        try:
            apply(name, version)
            applied += 1
        except Exception as exc:
            text = str(exc).splitlines()[0] if str(exc) else ""
            reason = f"{type(exc).__name__}: {text}".rstrip(": ")
            complete = dead.add(name, version, _FULL_PASS, reason) and complete
    if complete:
        dead.full_pass_done()
        log.info("full pass after a damaged dead-letter file: done", extra={"versions": len(versions)})
    return applied

"""The resume journal of ``modelledger.mlflow.evaluate``: which run of an evaluation stored its bundle, kept privately.

A rerun of the same evaluation (the same :func:`~modelledger.mlflow.hold_out.evaluation_key`) resumes only
from this journal, never from MLflow's run tags: anyone who may write to the tracking server can create a run
with any tags, but only this user can write here. One entry per evaluation key,
``<state folder>/evaluator/journal/<key>.json``, in folders of mode 0700 (``evaluator`` too: every folder under the
state folder is private), each file of mode 0600, written
atomically once the MLflow run has finished and its bundle is stored (before the ledger write), and kept after
the ledger write (a rerun then finds the recorded verdict by its run id). An entry that is not a private regular
file of this user is refused, not read.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

from modelledger.mlflow.hold_out import EvaluationError
from modelledger.runtime.private_files import make_private_dir

JOURNAL_FOLDER = ("evaluator", "journal")  # under the state folder


class JournalError(EvaluationError):
    """A journal entry cannot be written, or is not one this user wrote (not private, not parseable)."""


@dataclass(frozen=True)
class JournalEntry:
    """An evaluation's run whose bundle is stored: what a rerun records (after checking the bundle again).

    Attributes:
        key: The evaluation key.
        run_id: The MLflow run that evaluated.
        artifacts_digest: The SHA-256 of its bundle.
        artifacts_location: Its write-once copy (``s3://bucket/key?versionId=...``).
    """

    key: str
    run_id: str
    artifacts_digest: str
    artifacts_location: str


def journal_folder(state_dir: Path) -> Path:
    """Where the journal is kept for the state folder ``state_dir``."""
    return Path(state_dir).joinpath(*JOURNAL_FOLDER)


def _entry_path(folder: Path, key: str) -> Path:
    if not key or any(c not in "0123456789abcdef" for c in key):
        raise JournalError(f"{key!r} is not an evaluation key")
    return folder / f"{key}.json"


def write_entry(folder: Path, entry: JournalEntry) -> None:
    """Writes (or replaces) the entry of ``entry.key``: a 0600 file in a 0700 folder, atomically.

    The folder and each missing parent (``<state folder>/evaluator``) are made 0700
    (:func:`~modelledger.runtime.private_files.make_private_dir`), whatever the umask.

    Raises:
        JournalError: The folder or file cannot be written.
    """
    path = _entry_path(folder, entry.key)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        make_private_dir(folder, tighten=True)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(asdict(entry), sort_keys=True) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise JournalError(f"cannot write the evaluation journal entry {path}: {exc}") from exc


def read_entry(folder: Path, key: str) -> JournalEntry | None:
    """The entry of ``key``, or None when there is none.

    Raises:
        JournalError: The entry is not a regular file of this user that only this user may read and write, or
            is not an entry of ``key``.
    """
    path = _entry_path(folder, key)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise JournalError(f"cannot read the evaluation journal entry {path}: {exc}") from exc
    with os.fdopen(fd) as src:
        st = os.fstat(src.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
            raise JournalError(f"{path} is not a private file of this user (mode 0600): it is not used")
        try:
            doc = json.loads(src.read())
            entry = JournalEntry(
                key=str(doc["key"]),
                run_id=str(doc["run_id"]),
                artifacts_digest=str(doc["artifacts_digest"]),
                artifacts_location=str(doc["artifacts_location"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise JournalError(f"{path} is not an evaluation journal entry: {exc}") from exc
    if entry.key != key:
        raise JournalError(f"{path} is the entry of another evaluation key ({entry.key})")
    return entry

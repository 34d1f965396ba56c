"""Private runtime state: folders 0700, files 0600 from the start, child processes under umask 077.

Everything ModelLedger generates at run time (keys, secrets, certificates,
databases, ledgers, logs) lives under one state folder, ``MODELLEDGER_STATE_DIR``.
Nothing in it is meant for other users of the machine, so:

- every folder we create there is made mode 0700 (:func:`make_private_dir`);
- every file we write there is created mode 0600 and replaced atomically
  (:func:`write_private_file`), so it is never readable by others, not even
  for a moment;
- every process we start (Fabric tools and nodes, chaincode servers, MinIO,
  MLflow, the bridge) runs with :data:`PRIVATE_UMASK`, so the files and
  folders *it* creates are private too.

This process's own umask is left alone: files a user asks for outside the
state folder (``store fetch``) keep the user's usual modes.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path

# The umask of every child process: nothing they create is accessible to group or others.
PRIVATE_UMASK = 0o077
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_private_dir(path: Path, tighten: bool = False) -> Path:
    """Creates ``path`` and each missing parent folder with mode 0700.

    Args:
        path: The folder.
        tighten: Also set ``path`` itself to 0700 if it already exists (only for
            folders ModelLedger owns; existing parents are never changed).

    Returns:
        ``path``.
    """
    missing: list[Path] = []
    p = path
    while not p.is_dir():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            if not d.is_dir():
                raise
            continue  # made by a concurrent caller; it chose its mode
        d.chmod(PRIVATE_DIR_MODE)  # exact, whatever this process's umask
    if tighten and not missing:
        path.chmod(PRIVATE_DIR_MODE)
    return path


def write_private_file(path: Path, data: str | bytes) -> None:
    """Writes ``data`` to ``path`` (mode 0600, never readable by others even briefly), atomically.

    The file is written under a fresh temporary name in the same folder
    (``tempfile.mkstemp``: created exclusively, mode 0600, a name no other
    writer uses), synced, then renamed over ``path``; missing folders are
    created 0700. Concurrent writers each rename their own complete file:
    the last rename wins, and no reader sees a partial one.
    """
    make_private_dir(path.parent)
    tmp = _private_temp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _private_temp(path: Path, data: str | bytes) -> Path:
    """A new 0600 file beside ``path`` holding ``data``, synced; the caller renames or links it."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), PRIVATE_FILE_MODE)  # mkstemp's own mode, made explicit
            out.write(data.encode() if isinstance(data, str) else data)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def open_private_log(path: Path) -> int:
    """Opens ``path`` for appending (created 0600, an existing file set to 0600); returns the descriptor."""
    make_private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, PRIVATE_FILE_MODE)
    os.fchmod(fd, PRIVATE_FILE_MODE)
    return fd


def read_or_create_secret(path: Path, make: Callable[[], str] = lambda: secrets.token_hex(16)) -> str:
    """Returns the secret stored at ``path``, creating one with ``make`` (mode 0600) if absent.

    The first writer wins: the new secret is written to a temporary file and
    linked to ``path`` only if ``path`` does not exist yet (``os.link`` fails
    if it does); a writer that loses reads the winner's secret instead. Every
    caller therefore gets the one secret that is stored.
    """
    if path.exists():
        return path.read_text().strip()
    make_private_dir(path.parent)
    value = make()
    tmp = _private_temp(path, value + "\n")
    try:
        os.link(tmp, path)
    except FileExistsError:
        return path.read_text().strip()
    finally:
        tmp.unlink(missing_ok=True)
    return value


def write_if_changed(path: Path, text: str) -> bool:
    """Writes ``text`` to ``path`` (0600, atomically) unless it already holds exactly that; True if written."""
    if path.is_file() and path.read_text() == text:
        return False
    write_private_file(path, text)
    return True

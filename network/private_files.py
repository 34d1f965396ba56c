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

    The file is written under a temporary name in the same folder, created with
    ``O_EXCL`` and mode 0600, then renamed over ``path``; missing folders are
    created 0700.
    """
    make_private_dir(path.parent)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "wb") as out:
        out.write(data.encode() if isinstance(data, str) else data)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)


def open_private_log(path: Path) -> int:
    """Opens ``path`` for appending (created 0600, an existing file set to 0600); returns the descriptor."""
    make_private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, PRIVATE_FILE_MODE)
    os.fchmod(fd, PRIVATE_FILE_MODE)
    return fd


def read_or_create_secret(path: Path, make: Callable[[], str] = lambda: secrets.token_hex(16)) -> str:
    """Returns the secret stored at ``path``, creating one with ``make`` (mode 0600) if absent."""
    if path.exists():
        return path.read_text().strip()
    value = make()
    write_private_file(path, value + "\n")
    return value

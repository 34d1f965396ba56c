"""Files that hold secrets: created mode 0600 from the start, replaced atomically."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path


def write_private_file(path: Path, text: str) -> None:
    """Writes ``text`` to ``path`` (mode 0600, never readable by others even briefly), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)


def read_or_create_secret(path: Path, make: Callable[[], str] = lambda: secrets.token_hex(16)) -> str:
    """Returns the secret stored at ``path``, creating one with ``make`` (mode 0600) if absent."""
    if path.exists():
        return path.read_text().strip()
    value = make()
    write_private_file(path, value + "\n")
    return value

"""What the permission tests look for: entries of a state folder that other users may access."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def shared_entries(root: Path) -> list[str]:
    """Every file or folder under ``root`` (``root`` included, as ``.``) with a group or other permission bit.

    Each entry reads ``<path relative to root> <mode>``. Symbolic links are
    listed too (as ``symlink``): their own mode means nothing, so none belongs there.
    """
    found = [f". {oct(_mode(root))}"] if _mode(root) & 0o077 else []
    for folder, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            p = Path(folder) / name
            if p.is_symlink():
                found.append(f"{p.relative_to(root)} symlink")
            elif _mode(p) & 0o077:
                found.append(f"{p.relative_to(root)} {oct(_mode(p))}")
    return found

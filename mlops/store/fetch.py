"""Reading an anchored model back into a folder, checking every byte on the way."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from modelledger.mlops.store.digest import Manifest, check_relative_path
from modelledger.mlops.store.index import StoragePointer, StoreError, read_blob, read_index


def fetch_model(client: Any, pointer: StoragePointer, dest: str | Path, expected: Manifest | None = None) -> Manifest:
    """Writes the anchored copy named by ``pointer`` into ``dest`` (which must not exist yet).

    Each chunk is read at its recorded version and checked against its SHA-256,
    each file against its SHA-256, and the whole against ``expected`` (e.g. the
    manifest on the ledger) before anything is fetched. The files are written
    into a private folder beside ``dest`` that is renamed to ``dest`` (mode
    0755, files 0644) only once every byte checked; on any error that folder is
    removed and ``dest`` does not appear.

    Returns:
        The manifest of what was written.

    Raises:
        StoreError: The index or a chunk differs from what is recorded, or the
            index describes another manifest than ``expected``.
        FileExistsError: ``dest`` exists.
    """
    index = read_index(client, pointer)
    manifest = index.manifest
    if expected is not None and manifest != expected:
        raise StoreError(f"{pointer.uri} describes manifest {manifest.manifest_digest}, not {expected.manifest_digest}")
    root = Path(dest)
    if root.exists() or root.is_symlink():
        raise FileExistsError(f"{root} exists; fetch into a new folder")
    # Everything goes into a private sibling folder first; only a complete, checked copy takes the name.
    partial = Path(tempfile.mkdtemp(prefix=f".{root.name}.partial-", dir=root.parent))
    try:
        for sf in index.files:
            target = partial / check_relative_path(sf.path)
            target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            h = hashlib.sha256()
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as out:
                for ref in sf.chunks:
                    for part in read_blob(client, pointer.bucket, ref):
                        h.update(part)
                        out.write(part)
            if h.hexdigest() != sf.sha256:
                raise StoreError(f"{sf.path}: the fetched bytes do not match its recorded sha256")
        partial.chmod(0o755)
        partial.rename(root)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return manifest

"""Reading an anchored model back into a folder, checking every byte on the way (and, from the ledger, all of it)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from modelledger.mlops.store.digest import Manifest, check_relative_path
from modelledger.mlops.store.index import StoragePointer, StoreError, read_blob, read_index
from modelledger.mlops.store.verification import LedgerEvidence, Verification, anchored_bundle, verify_version
from modelledger.mlops.store.verify import VerifyReport, compare


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


def fetch_verified(client: Any, evidence: LedgerEvidence, dest: str | Path) -> Verification:
    """Fetches a version's anchored copy into ``dest`` only if it verifies against the ledger in full.

    The copy is read (every byte checked, see :func:`fetch_model`) into a
    private folder beside ``dest`` and verified with
    :func:`~modelledger.mlops.store.verification.verify_version` (bytes,
    signature, signer, ledger status); ``dest`` appears only if every check
    holds, otherwise nothing is left behind.

    Raises:
        FileExistsError: ``dest`` exists.
        OSError: The folder beside ``dest`` cannot be made.
    """
    root = Path(dest)
    if root.exists() or root.is_symlink():
        raise FileExistsError(f"{root} exists; fetch into a new folder")
    pointer = evidence.pointer
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.verify-", dir=root.parent))
    try:
        fetched = staging / "model"

        def content(expected: Manifest) -> VerifyReport:
            try:
                return compare(fetch_model(client, pointer, fetched, expected), expected)
            except StoreError as exc:
                return VerifyReport(error=str(exc))
            except (ClientError, BotoCoreError) as exc:
                return VerifyReport(error=f"cannot read the anchored copy at {pointer.uri}: {exc}")

        bundle, why = anchored_bundle(client, pointer)
        result = verify_version(evidence, bundle, content, f"{pointer.uri} fetched into {root}", why)
        if result.ok:
            fetched.rename(root)
        return result
    finally:
        shutil.rmtree(staging, ignore_errors=True)

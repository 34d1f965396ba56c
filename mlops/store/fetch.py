"""Reading an anchored model back into a folder, checking every byte on the way (and, from the ledger, all of it).

Nothing appears under the destination's name before it is checked: the files
are written into a private staging folder beside it, ``.DEST.partial-…``
(:func:`fetch_model`) or ``.DEST.verify-…`` (:func:`fetch_verified`), which
is renamed to ``DEST`` once every check holds and removed otherwise. A fetch
that is killed cannot remove its own: each staging folder's name carries its
process (host, pid and start time), and the next fetch into the same ``DEST``
removes those whose process is gone (:func:`remove_stale_staging`).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from modelledger.mlops.store.copy_checks import VerifyReport, compare, copy_protection, protect
from modelledger.mlops.store.digest import Manifest, check_relative_path
from modelledger.mlops.store.index import StoragePointer, StoreError, read_blob, read_index, read_index_sized
from modelledger.mlops.store.verification import LedgerEvidence, Verification, anchored_bundle, verify_version
from modelledger.runtime.processes import process_start_time

_STAGING_KINDS = ("partial", "verify")


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _staging_dir(root: Path, kind: str) -> Path:
    """A new private folder beside ``root``, named for this process (``.ROOT.KIND-PID-START-HOST-XXXXXXXX``)."""
    pid = os.getpid()
    start = process_start_time(pid) or 0  # 0: unknown, never taken for stale
    return Path(tempfile.mkdtemp(prefix=f".{root.name}.{kind}-{pid}-{start}-{_host_tag()}-", dir=root.parent))


def remove_stale_staging(dest: str | Path) -> list[Path]:
    """Removes the staging folders that earlier fetches into ``dest`` left when they were killed.

    A staging folder is stale when it was made on this host by a process that
    no longer runs (no process has its pid, or one with another start time).
    Folders of running fetches, of other hosts, of other destinations, and
    anything not named as a staging folder are left alone.

    Returns:
        The folders removed.
    """
    root = Path(dest)
    kinds = "|".join(_STAGING_KINDS)
    pattern = re.compile(rf"\.{re.escape(root.name)}\.(?:{kinds})-(\d+)-(\d+)-([0-9a-f]{{8}})-[a-z0-9_]{{8}}")
    removed: list[Path] = []
    try:
        siblings = list(root.parent.iterdir())
    except OSError:
        return removed
    host = _host_tag()
    for path in siblings:
        m = pattern.fullmatch(path.name)
        if m is None or m.group(3) != host or int(m.group(2)) == 0 or path.is_symlink() or not path.is_dir():
            continue
        if process_start_time(int(m.group(1))) == int(m.group(2)):
            continue  # a fetch still running
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


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
    remove_stale_staging(root)
    # Everything goes into a private sibling folder first; only a complete, checked copy takes the name.
    partial = _staging_dir(root, "partial")
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
    private folder beside ``dest``, its objects' locks are checked as
    ``store verify`` checks them
    (:func:`~modelledger.mlops.store.copy_checks.copy_protection`), and it is
    verified with :func:`~modelledger.mlops.store.verification.verify_version`
    (bytes, signature, signer, ledger status); ``dest`` appears only if every check
    holds, otherwise nothing is left behind (unless the process is killed:
    see :func:`remove_stale_staging`).

    Raises:
        FileExistsError: ``dest`` exists.
        OSError: The folder beside ``dest`` cannot be made.
    """
    root = Path(dest)
    if root.exists() or root.is_symlink():
        raise FileExistsError(f"{root} exists; fetch into a new folder")
    pointer = evidence.pointer
    remove_stale_staging(root)
    staging = _staging_dir(root, "verify")
    try:
        fetched = staging / "model"

        def content(expected: Manifest) -> VerifyReport:
            try:
                report = compare(fetch_model(client, pointer, fetched, expected), expected)
                index, index_size = read_index_sized(client, pointer)
                return protect(report, copy_protection(client, pointer, index, index_size))
            except StoreError as exc:
                return VerifyReport(error=str(exc), anchored=True)
            except (ClientError, BotoCoreError) as exc:
                return VerifyReport(error=f"cannot read the anchored copy at {pointer.uri}: {exc}", anchored=True)

        bundle, why = anchored_bundle(client, pointer)
        result = verify_version(evidence, bundle, content, f"{pointer.uri} fetched into {root}", why)
        if result.ok:
            fetched.rename(root)
        return result
    finally:
        shutil.rmtree(staging, ignore_errors=True)

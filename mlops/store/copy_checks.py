"""Checking a copy of a model, a local folder or the anchored S3 copy, against an expected manifest (e.g. the one on
the ledger): the byte checks that :mod:`~modelledger.mlops.store.verification` puts together with the signer and the
ledger status."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from modelledger.mlops.store.digest import FileEntry, Manifest, ModelTreeError, digest_folder
from modelledger.mlops.store.index import (
    BlobMissingError,
    BlobRef,
    StoragePointer,
    StoreError,
    lock_state,
    read_blob,
    read_index_sized,
    referenced,
)
from modelledger.mlops.store.s3errors import NOT_THERE, error_code


@dataclass
class VerifyReport:
    """What differs between a folder and the manifest it should match.

    Attributes:
        changed: Paths present on both sides with another size or digest.
        missing: Paths in the manifest but not in the folder.
        extra: Paths in the folder but not in the manifest.
        unprotected: Objects of an anchored copy (index, chunks, bundle) that are gone, hold other
            bytes, are not COMPLIANCE-locked, or are locked for less time than the index.
        error: Set when the folder itself cannot be digested (e.g. a symlink leaving it).
    """

    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    unprotected: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.extra or self.unprotected or self.error)

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "changed": self.changed,
            "missing": self.missing,
            "extra": self.extra,
            "unprotected": self.unprotected,
            "error": self.error,
        }


def compare(actual: Manifest, expected: Manifest) -> VerifyReport:
    """The exact differences between two manifests."""
    have = {f.path: f for f in actual.files}
    want = {f.path: f for f in expected.files}
    return VerifyReport(
        changed=sorted(p for p in have.keys() & want.keys() if have[p] != want[p]),
        missing=sorted(want.keys() - have.keys()),
        extra=sorted(have.keys() - want.keys()),
    )


def verify_folder(folder: str | Path, expected: Manifest) -> VerifyReport:
    """Digests ``folder`` and compares it with ``expected``; never raises for a bad tree."""
    try:
        actual = digest_folder(folder)
    except (ModelTreeError, OSError) as exc:
        return VerifyReport(error=str(exc))
    return compare(actual, expected)


def _latest_differs(client: Any, bucket: str, ref: BlobRef) -> bool:
    """True if a plain (unversioned) read of the chunk's key would not give its bytes."""
    try:
        head = client.head_object(Bucket=bucket, Key=ref.key, ChecksumMode="ENABLED")
    except ClientError as exc:
        if error_code(exc) in NOT_THERE:
            return True
        raise
    return head.get("ChecksumSHA256") != base64.b64encode(bytes.fromhex(ref.sha256)).decode()


def verify_s3(client: Any, pointer: StoragePointer, expected: Manifest) -> VerifyReport:
    """Checks the anchored copy named by ``pointer`` against ``expected`` by re-reading every byte.

    The index must hash to ``pointer.sha256``. Each file listed in the index is
    rebuilt from its chunks at their recorded versions and hashed in full; a
    file with a chunk that is gone is missing. A file is also changed when a
    chunk's key now answers with other bytes or a delete marker: a reader that
    ignores version ids would get something else. Files of the index that the
    manifest does not list are extra. The signature bundle is read and hashed
    too. Every object version of the copy must be COMPLIANCE-locked at least
    as long as the index; any that is not is listed as unprotected.
    """
    try:
        index, index_size = read_index_sized(client, pointer)
    except StoreError as exc:
        return VerifyReport(error=str(exc))
    actual: list[FileEntry] = []
    superseded: set[str] = set()
    problems: list[str] = []
    try:
        for sf in index.files:
            h = hashlib.sha256()
            size = 0
            try:
                for ref in sf.chunks:
                    for part in read_blob(client, pointer.bucket, ref):
                        h.update(part)
                        size += len(part)
            except BlobMissingError:
                continue
            except StoreError:
                superseded.add(sf.path)  # bytes differ from the recorded chunk
            actual.append(FileEntry(sf.path, size, h.hexdigest()))
            if any(_latest_differs(client, pointer.bucket, ref) for ref in sf.chunks):
                superseded.add(sf.path)
        if index.bundle is not None:
            try:
                for _ in read_blob(client, pointer.bucket, index.bundle):
                    pass
            except StoreError as exc:
                problems.append(f"signature bundle: {exc}")
        locks = [lock_state(client, pointer.bucket, ref) for ref in referenced(index, pointer, index_size)]
    except (ClientError, BotoCoreError) as exc:
        return VerifyReport(error=f"cannot read the anchored copy at {pointer.uri}: {exc}")
    index_until = locks[0].retain_until
    for lock in locks:
        if lock.problem:
            problems.append(lock.problem)
        elif lock.retain_until < index_until - dt.timedelta(seconds=1):
            problems.append(f"{lock.ref.key} version {lock.ref.version_id} is locked for less time than the index")
    report = compare(Manifest(tuple(actual)), expected)
    report.changed = sorted(set(report.changed) | (superseded & {e.path for e in expected.files}))
    report.unprotected = sorted(set(problems))
    return report

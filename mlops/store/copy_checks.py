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
    AnchoredIndex,
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


def human_size(n: int) -> str:
    """A byte count in decimal units, as people read it: ``123 bytes``, ``59 KB``, ``1.2 MB``."""
    if n < 1000:
        return f"{n} byte" + ("" if n == 1 else "s")
    value = float(n)
    for unit in ("KB", "MB", "GB", "TB", "PB"):
        value /= 1000
        if value < 999.5 or unit == "PB":
            return f"{value:.1f} {unit}" if value < 9.95 else f"{value:.0f} {unit}"
    raise AssertionError("unreachable")


def utc_minute(when: dt.datetime) -> str:
    """A retention date as the output shows it: ``2036-12-07 23:10 UTC``."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass
class VerifyReport:
    """What differs between a copy of a model and the manifest it should match, and what was covered.

    Attributes:
        changed: Paths present on both sides with another size or digest.
        missing: Paths in the manifest but not in the folder.
        extra: Paths in the folder but not in the manifest.
        unprotected: Objects of an anchored copy (index, chunks, bundle) that are gone, hold other
            bytes, are not COMPLIANCE-locked, or are locked for less time than the index.
        error: Set when the folder itself cannot be digested (e.g. a symlink leaving it).
        files: How many files were read and hashed.
        size: Their total size in bytes.
        anchored: True for the anchored S3 copy (its objects' locks were checked); False for a local folder,
            to which no lock applies.
        lock_mode: The Object Lock mode of the anchored copy's objects (``COMPLIANCE`` when every one has it;
            otherwise the modes found, ``none`` for an object without a lock); empty for a folder.
        retain_until: The earliest end of retention among the anchored copy's locked objects (None for a folder).
        warnings: What does not fail verification but a reader should know: a delete marker or a newer
            version over the index or signature bundle key (a plain GET of that key no longer gives the
            version the ledger names, which is intact).
        reasons: For a changed file, why, when the bytes alone do not say (a newer version or a delete
            marker over one of its chunk keys).
    """

    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    unprotected: list[str] = field(default_factory=list)
    error: str = ""
    files: int = 0
    size: int = 0
    anchored: bool = False
    lock_mode: str = ""
    retain_until: dt.datetime | None = None
    warnings: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.extra or self.unprotected or self.error)

    def covered(self) -> str:
        """What was read, in words: ``8 files, 59 KB, digests match`` (or ``digests do not match``)."""
        if self.error:
            return f"not read in full ({self.error})"
        match = "digests differ" if self.changed or self.missing or self.extra else "digests match"
        return f"{self.files} file{'' if self.files == 1 else 's'}, {human_size(self.size)}, {match}"

    def lock(self) -> str:
        """The copy's protection, in words: ``locked (COMPLIANCE) until 2036-12-07 23:10 UTC``, or for a
        folder ``a local folder: no lock applies``."""
        if not self.anchored:
            return "a local folder: no lock applies"
        if self.error and not self.lock_mode:
            return "locks not checked"
        if self.retain_until is None:
            return f"not locked ({self.lock_mode or 'none'})"
        return f"locked ({self.lock_mode}) until {utc_minute(self.retain_until)}"

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "changed": self.changed,
            "missing": self.missing,
            "extra": self.extra,
            "unprotected": self.unprotected,
            "error": self.error,
            "files": self.files,
            "bytes": self.size,
            "copy": "anchored" if self.anchored else "folder",
            "lock_mode": self.lock_mode if self.anchored else None,
            "retain_until": self.retain_until.isoformat() if self.retain_until else None,
            "warnings": self.warnings,
            "reasons": self.reasons,
        }


def compare(actual: Manifest, expected: Manifest) -> VerifyReport:
    """The exact differences between two manifests."""
    have = {f.path: f for f in actual.files}
    want = {f.path: f for f in expected.files}
    return VerifyReport(
        changed=sorted(p for p in have.keys() & want.keys() if have[p] != want[p]),
        missing=sorted(want.keys() - have.keys()),
        extra=sorted(have.keys() - want.keys()),
        files=len(actual.files),
        size=actual.total_size,
    )


def verify_folder(folder: str | Path, expected: Manifest) -> VerifyReport:
    """Digests ``folder`` and compares it with ``expected``; never raises for a bad tree."""
    try:
        actual = digest_folder(folder)
    except (ModelTreeError, OSError) as exc:
        return VerifyReport(error=str(exc))
    return compare(actual, expected)


def _plain_read(client: Any, bucket: str, ref: BlobRef, what: str) -> str:
    """Why a plain (unversioned) read of the key of ``ref`` would not give its bytes; empty if it would.

    One HEAD of that exact key (a listing by prefix would also name longer keys).
    """
    try:
        head = client.head_object(Bucket=bucket, Key=ref.key, ChecksumMode="ENABLED")
    except ClientError as exc:
        if error_code(exc) not in NOT_THERE:
            raise
        headers = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPHeaders", {})
        if str(headers.get("x-amz-delete-marker", "")).lower() == "true":
            return f"a delete marker over the {what} key {ref.key}: a plain GET of the key fails"
        return f"a plain GET of the {what} key {ref.key} finds nothing (a delete marker over it)"
    if head.get("VersionId") == ref.version_id:
        return ""
    if head.get("ChecksumSHA256") == base64.b64encode(bytes.fromhex(ref.sha256)).decode():
        return ""  # a newer version, with the same bytes
    newer = head.get("VersionId") or "(no id)"
    return (
        f"a newer version {newer} over the {what} key {ref.key}: a plain GET of the key returns it, "
        f"not version {ref.version_id}"
    )


@dataclass(frozen=True)
class CopyProtection:
    """How the objects of an anchored copy are protected, and what a plain read of each of its keys gives.

    Attributes:
        lock_mode: ``COMPLIANCE`` when every object has it, else the modes found (``none``: no lock).
        retain_until: The earliest end of retention among the objects that have a lock (None if none has).
        unprotected: Objects that are gone, hold other bytes, are not COMPLIANCE-locked, or are locked for
            less time than the index.
        warnings: A delete marker or a newer version (other bytes) over a key of the copy: index, chunk or bundle.
    """

    lock_mode: str
    retain_until: dt.datetime | None
    unprotected: list[str]
    warnings: list[str]


def copy_protection(client: Any, pointer: StoragePointer, index: AnchoredIndex, index_size: int) -> CopyProtection:
    """HEADs every object version of the anchored copy (:func:`lock_state`), and every key of it.

    A delete marker or a newer version with other bytes over any key of the
    copy (the index, a chunk, the bundle) is a warning, not a failure: the
    versions the ledger's pointer and the index name are what every reader
    here uses, and they are checked (and locked) on their own; only a reader
    that ignores version ids would get something else. (Chunks are
    content-addressed and shared between models: one delete marker over a
    shared chunk key must not make every model that uses it fail.)

    Raises:
        ClientError, BotoCoreError: S3 cannot be read.
    """
    locks = [lock_state(client, pointer.bucket, ref) for ref in referenced(index, pointer, index_size)]
    index_until = locks[0].retain_until
    problems: list[str] = []
    for lock in locks:
        if lock.problem:
            problems.append(lock.problem)
        elif lock.retain_until < index_until - dt.timedelta(seconds=1):
            problems.append(f"{lock.ref.key} version {lock.ref.version_id} is locked for less time than the index")
    warnings = []
    kinds = [("index", locks[0].ref), *(("chunk", c) for f in index.files for c in f.chunks)]
    if index.bundle is not None:
        kinds.append(("signature bundle", index.bundle))
    seen: set[str] = set()
    for what, ref in kinds:
        if ref.key in seen:  # a chunk shared by two files of the copy is one key
            continue
        seen.add(ref.key)
        why = _plain_read(client, pointer.bucket, ref, what)
        if why:
            warnings.append(f"{why} (reads by version id, as here, are unaffected)")
    return CopyProtection(
        ", ".join(sorted({lock.mode or "none" for lock in locks})),
        min((lock.retain_until for lock in locks if lock.mode), default=None),
        sorted(set(problems)),
        warnings,
    )


def protect(report: VerifyReport, protection: CopyProtection) -> VerifyReport:
    """``report`` of the anchored copy, with its locks, unprotected objects and warnings."""
    report.anchored = True
    report.lock_mode = protection.lock_mode
    report.retain_until = protection.retain_until
    report.unprotected = sorted(set(report.unprotected) | set(protection.unprotected))
    report.warnings = [*report.warnings, *protection.warnings]
    return report


def verify_s3(client: Any, pointer: StoragePointer, expected: Manifest) -> VerifyReport:
    """Checks the anchored copy named by ``pointer`` against ``expected`` by re-reading every byte.

    The index must hash to ``pointer.sha256``. Each file listed in the index is
    rebuilt from its chunks at their recorded versions and hashed in full; a
    file with a chunk that is gone is missing; one whose chunk version holds
    other bytes is changed (``reasons`` says why). Files of the index that the
    manifest does not list are extra. The signature bundle is read and hashed
    too. Every object version of the copy must be COMPLIANCE-locked at least as
    long as the index; any that is not is listed as unprotected. A delete marker
    or newer version over any key of the copy is a warning
    (:func:`copy_protection`).
    """
    try:
        index, index_size = read_index_sized(client, pointer)
    except StoreError as exc:
        return VerifyReport(error=str(exc), anchored=True)
    actual: list[FileEntry] = []
    reasons: dict[str, str] = {}
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
            except StoreError as exc:
                reasons[sf.path] = str(exc)  # bytes differ from the recorded chunk
            actual.append(FileEntry(sf.path, size, h.hexdigest()))
        if index.bundle is not None:
            try:
                for _ in read_blob(client, pointer.bucket, index.bundle):
                    pass
            except StoreError as exc:
                problems.append(f"signature bundle: {exc}")
        protection = copy_protection(client, pointer, index, index_size)
    except (ClientError, BotoCoreError) as exc:
        return VerifyReport(error=f"cannot read the anchored copy at {pointer.uri}: {exc}", anchored=True)
    report = compare(Manifest(tuple(actual)), expected)
    listed = {e.path for e in expected.files}
    report.changed = sorted(set(report.changed) | (reasons.keys() & listed))
    report.reasons = {p: reasons[p] for p in report.changed if p in reasons}
    report.unprotected = problems
    return protect(report, protection)

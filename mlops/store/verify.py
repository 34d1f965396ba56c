"""Checking a model folder against an expected manifest (e.g. the one on the ledger)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from modelledger.mlops.store.digest import FileEntry, Manifest, ModelTreeError, digest_folder
from modelledger.mlops.store.upload import StoragePointer


@dataclass
class VerifyReport:
    """What differs between a folder and the manifest it should match.

    Attributes:
        changed: Paths present on both sides with another size or digest.
        missing: Paths in the manifest but not in the folder.
        extra: Paths in the folder but not in the manifest.
        error: Set when the folder itself cannot be digested (e.g. a symlink leaving it).
    """

    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.extra or self.error)

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "changed": self.changed,
            "missing": self.missing,
            "extra": self.extra,
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


def verify_s3(client: Any, pointer: StoragePointer, expected: Manifest, chunk: int = 8 * 1024 * 1024) -> VerifyReport:
    """Checks the anchored copy named by ``pointer`` against ``expected`` by re-reading every byte.

    The index object must hash to ``pointer.sha256``; each file is read at the
    version the index recorded and hashed in full (S3's own checksums of
    multipart objects are checksums of parts, not of the file). A file whose
    key now answers with a newer version or a delete marker is reported as
    changed (a loader reading the plain key would get other bytes); any other
    object under the model's ``files/`` prefix is reported as extra.
    """
    try:
        body = client.get_object(Bucket=pointer.bucket, Key=pointer.key, VersionId=pointer.version_id)["Body"].read()
    except ClientError as exc:
        return VerifyReport(error=f"cannot read the index s3://{pointer.bucket}/{pointer.key}: {exc}")
    if hashlib.sha256(body).hexdigest() != pointer.sha256:
        return VerifyReport(error=f"the index s3://{pointer.bucket}/{pointer.key} does not match the pointer's sha256")
    index = json.loads(body)
    prefix = pointer.key.rsplit("/", 1)[0] + "/files/"
    versions: dict[str, str] = index.get("objects", {})
    actual: list[FileEntry] = []
    superseded: list[str] = []
    for entry in expected.files:
        version = versions.get(entry.path)
        if version is None:
            continue
        key = prefix + entry.path
        try:
            obj = client.get_object(Bucket=pointer.bucket, Key=key, VersionId=version)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "NoSuchVersion", "404"):
                continue
            return VerifyReport(error=f"cannot read s3://{pointer.bucket}/{key}: {exc}")
        h = hashlib.sha256()
        size = 0
        for part in obj["Body"].iter_chunks(chunk):
            h.update(part)
            size += len(part)
        actual.append(FileEntry(entry.path, size, h.hexdigest()))
        # A loader fetching the plain key gets the newest version: it must still be the anchored one.
        latest = client.list_object_versions(Bucket=pointer.bucket, Prefix=key)
        newest = [
            v for v in latest.get("Versions", []) + latest.get("DeleteMarkers", []) if v["Key"] == key and v["IsLatest"]
        ]
        if newest and newest[0]["VersionId"] != version:
            superseded.append(entry.path)
    wanted = {e.path for e in expected.files}
    extra = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=pointer.bucket, Prefix=prefix):
        extra += [o["Key"][len(prefix) :] for o in page.get("Contents", []) if o["Key"][len(prefix) :] not in wanted]
    report = compare(Manifest(tuple(actual)), expected)
    report.changed = sorted(set(report.changed) | set(superseded))
    report.extra = sorted(extra)
    return report

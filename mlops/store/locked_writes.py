"""Writing COMPLIANCE-locked objects to the anchored bucket: chunks, retention, and the index.

:class:`LockedWrites` is the S3 side of :class:`~modelledger.mlops.store.upload.ModelUploader`
(its base class; the uploader supplies ``client`` and ``bucket``). Each chunk is
stored under its own content address, ``blobs/sha256/<hex>``, with
``x-amz-checksum-sha256`` and a COMPLIANCE retention, unless a locked version
with those exact bytes is already there (a HEAD asks first; a blob of at most
1 MiB is sent straight away with ``If-None-Match: *`` and only checked when its
key is taken). Once every chunk is stored, reused chunks get their retention
extended to this upload's, and the index is written last, with
``If-None-Match: *`` so that only the first index of a manifest wins. If the
key is taken and holds a sound copy of exactly this index, that copy is the
answer (an identical re-upload writes no object). See
:mod:`modelledger.mlops.store.index` for the layout.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from modelledger.mlops.store.digest import Manifest
from modelledger.mlops.store.index import (
    MAX_INDEX_BYTES,
    AnchoredIndex,
    BlobRef,
    StoragePointer,
    blob_key,
    index_key,
    lock_state,
    referenced,
)
from modelledger.mlops.store.s3errors import NOT_THERE, error_code

# Blobs up to this size are PUT with If-None-Match first (no HEAD): resending one whose key is taken costs little.
PUT_FIRST_MAX = 1024 * 1024
# What S3 answers to a conditional write whose condition failed (or raced another write of the key).
CONDITION_FAILED = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})


@dataclass(frozen=True)
class UploadResult:
    """What an upload produced: the pointer to record, the manifest, and whether this call wrote the index."""

    pointer: StoragePointer
    manifest: Manifest
    created: bool
    index: AnchoredIndex


def b64(digest: bytes) -> str:
    """A digest in base64, as S3 checksum headers carry it."""
    return base64.b64encode(digest).decode()


@dataclass(frozen=True)
class _Sent:
    """A stored chunk and how long its version is locked (None: unknown, extend it)."""

    ref: BlobRef
    retain_until: dt.datetime | None


class LockedWrites:
    """Stores blobs and the index as COMPLIANCE-locked versions, reusing sound ones and extending their locks.

    Attributes:
        client: A boto3 S3 client.
        bucket: The anchored bucket (Object Lock on).
    """

    client: Any
    bucket: str

    def _store_blob(self, data: bytes | bytearray, retain_until: dt.datetime) -> _Sent:
        """Stores ``data`` under its content address unless a locked version with these bytes is there."""
        digest = hashlib.sha256(data).digest()
        key = blob_key(digest.hex())
        checksum = b64(digest)
        if len(data) <= PUT_FIRST_MAX:
            # A small blob is sent at once, on condition that its key is still free (a new model's
            # blobs nearly always are): one request instead of a HEAD and a PUT. A taken key goes on
            # to the check below, as a large blob does first.
            try:
                return self._put_blob(key, data, digest, retain_until, {"IfNoneMatch": "*"})
            except ClientError as exc:
                if error_code(exc) not in CONDITION_FAILED:
                    raise
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if error_code(exc) not in NOT_THERE:
                raise
        else:
            if (
                head.get("ChecksumSHA256") == checksum
                and head.get("ContentLength") == len(data)
                and head.get("ObjectLockMode") == "COMPLIANCE"
            ):
                ref = BlobRef(key, digest.hex(), len(data), str(head["VersionId"]))
                return _Sent(ref, head.get("ObjectLockRetainUntilDate"))
        return self._put_blob(key, data, digest, retain_until, {})

    def _put_blob(
        self, key: str, data: bytes | bytearray, digest: bytes, retain_until: dt.datetime, condition: dict[str, str]
    ) -> _Sent:
        resp = self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ChecksumSHA256=b64(digest),
            ObjectLockMode="COMPLIANCE",
            ObjectLockRetainUntilDate=retain_until,
            **condition,
        )
        return _Sent(BlobRef(key, digest.hex(), len(data), str(resp["VersionId"])), retain_until)

    def _existing(self, index: AnchoredIndex, retain_until: dt.datetime) -> UploadResult | None:
        """The anchored copy of exactly this index (same files, same bundle), if a sound one exists.

        The index key's versions are tried oldest first; anyone may write one,
        so a version counts only if it parses, describes this manifest and
        bundle, and it and every object it names are still COMPLIANCE-locked
        with the recorded bytes. The copy found has its locks extended to
        ``retain_until`` (a re-anchoring must last as long as a new one).

        Returns:
            The copy, or None.
        """
        key = index_key(index.manifest.manifest_digest)
        versions = []
        for page in self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=key):
            versions += [v for v in page.get("Versions", []) if v["Key"] == key]
        for v in sorted(versions, key=lambda v: v["LastModified"]):
            if v.get("Size", 0) > MAX_INDEX_BYTES:
                continue
            body = self.client.get_object(Bucket=self.bucket, Key=key, VersionId=v["VersionId"])["Body"].read()
            try:
                found = AnchoredIndex.from_bytes(body)
            except ValueError:
                continue
            if found.manifest != index.manifest or _bundle_sha(found) != _bundle_sha(index):
                continue
            pointer = StoragePointer(self.bucket, key, v["VersionId"], hashlib.sha256(body).hexdigest())
            locks = [lock_state(self.client, self.bucket, ref) for ref in referenced(found, pointer, len(body))]
            if not all(lock.sound for lock in locks):
                continue
            self._extend([lock.ref for lock in locks if lock.retain_until < retain_until], retain_until)
            return UploadResult(pointer, found.manifest, False, found)
        return None

    def _extend(self, refs: list[BlobRef], retain_until: dt.datetime) -> None:
        """Lengthens the COMPLIANCE retention of these versions to ``retain_until``."""
        done: set[tuple[str, str]] = set()
        for ref in refs:
            pin = (ref.key, ref.version_id)
            if pin in done:
                continue
            try:
                self.client.put_object_retention(
                    Bucket=self.bucket,
                    Key=ref.key,
                    VersionId=ref.version_id,
                    Retention={"Mode": "COMPLIANCE", "RetainUntilDate": retain_until},
                )
            except ClientError:
                # Refused as shortening: a concurrent upload extended it further meanwhile. That is fine
                # only if the lock now lasts at least as long as this upload needs.
                lock = lock_state(self.client, self.bucket, ref)
                if not lock.sound or lock.retain_until < retain_until:
                    raise
            done.add(pin)

    def _anchor(
        self, index: AnchoredIndex, sent: list[_Sent], bundle: _Sent | None, retain_until: dt.datetime
    ) -> UploadResult:
        index = AnchoredIndex(index.files, index.chunk_size, bundle.ref if bundle else None)
        # Chunks shared with older models must stay locked at least as long as this model's index.
        stored = [*sent, *([bundle] if bundle else [])]
        self._extend([s.ref for s in stored if s.retain_until is None or s.retain_until < retain_until], retain_until)
        body = index.to_bytes()
        key = index_key(index.manifest.manifest_digest)
        # The first index of a manifest is written only if the key is still free. A taken key (this
        # manifest was anchored before, or is being anchored now) is searched for a sound copy of exactly
        # this index, which is reused; only a key holding other or unsound versions gets one more version.
        try:
            resp = self._put_index(key, body, retain_until, {"IfNoneMatch": "*"})
        except ClientError as exc:
            if error_code(exc) not in CONDITION_FAILED:
                raise
            existing = self._existing(index, retain_until)
            if existing is not None:
                return existing
            resp = self._put_index(key, body, retain_until, {})
        pointer = StoragePointer(self.bucket, key, resp["VersionId"], hashlib.sha256(body).hexdigest())
        return UploadResult(pointer, index.manifest, True, index)

    def _put_index(self, key: str, body: bytes, retain_until: dt.datetime, condition: dict[str, str]) -> Any:
        return self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType="application/json",
            ChecksumSHA256=b64(hashlib.sha256(body).digest()),
            ObjectLockMode="COMPLIANCE",
            ObjectLockRetainUntilDate=retain_until,
            **condition,
        )


def _bundle_sha(index: AnchoredIndex) -> str:
    return index.bundle.sha256 if index.bundle else ""

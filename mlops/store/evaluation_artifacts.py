"""An evaluation's artefacts as one deterministic bundle, stored write-once in the anchored bucket.

:func:`bundle_folder` turns a folder (the evaluation's report, plots and
tables) into an uncompressed tar whose bytes depend only on the files' relative
paths and contents: entries sorted by path, times, owners and modes fixed. Its
SHA-256 is what the ledger records (``artifactsDigest``).

:func:`store_bundle` writes that tar, content-addressed, at
``evaluations/sha256/<hex>.tar`` in the anchored bucket with
``x-amz-checksum-sha256`` and ``If-None-Match: *``, locked by the bucket's
default COMPLIANCE retention; a key already taken by a sound COMPLIANCE-locked
copy of the same bytes (any version of it) is that copy (an identical re-store writes nothing). A key whose
versions hold no such copy (junk another writer put there) gets a new version, and that version is checked:
nothing stored is ever replaced, and no one can block a content address. Its location,
``s3://bucket/key?versionId=...``, is the ledger's ``artifactsLocation``.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from modelledger.mlops.store.digest import list_files
from modelledger.mlops.store.index import BlobRef, lock_state
from modelledger.mlops.store.locked_writes import CONDITION_FAILED, b64
from modelledger.mlops.store.s3errors import error_code

EVALUATIONS_PREFIX = "evaluations"


class EvaluationStoreError(Exception):
    """The bundle cannot be made or stored (the message says which object and why)."""


@dataclass(frozen=True)
class StoredBundle:
    """Where a bundle is: bucket, key, version, SHA-256 and size; and whether this call wrote it."""

    bucket: str
    key: str
    version_id: str
    sha256: str
    size: int
    created: bool

    @property
    def location(self) -> str:
        """``s3://bucket/key?versionId=...``: the ledger's ``artifactsLocation``."""
        return f"s3://{self.bucket}/{self.key}?versionId={self.version_id}"


def bundle_key(sha256: str) -> str:
    """The content address of a bundle: ``evaluations/sha256/<hex>.tar``."""
    return f"{EVALUATIONS_PREFIX}/sha256/{sha256}.tar"


def bundle_folder(folder: str | Path) -> bytes:
    """The files under ``folder`` as an uncompressed tar that depends only on their relative paths and bytes.

    Entries are regular files in path order (folders are implied by the paths),
    with mode 0644, owner 0/0 and no names, and time 0; the format is POSIX
    (PAX for long paths), with no PAX headers that carry times.

    Raises:
        ModelTreeError: A path in the folder cannot be bundled (a link out of it, a special file).
        OSError: A file cannot be read.
    """
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for tf in list_files(folder):  # in manifest order
            info = tarfile.TarInfo(tf.rel)
            data = tf.path.read_bytes()
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def bundle_digest(bundle: bytes) -> str:
    """The SHA-256 (hex) of a bundle: the ledger's ``artifactsDigest``."""
    return hashlib.sha256(bundle).hexdigest()


def store_bundle(client: Any, bucket: str, bundle: bytes) -> StoredBundle:
    """Stores ``bundle`` write-once at its content address, locked by the anchored bucket's default retention.

    Only a PUT with ``If-None-Match: *`` and ``x-amz-checksum-sha256`` is sent, with no lock headers: the
    bucket's default retention (COMPLIANCE, ``s3 up`` sets it) locks the new version, so the writer needs no
    ``s3:PutObjectRetention`` (which S3 demands for lock headers, and which would let it extend locks). The
    version written is then checked (HEAD): it must hold these bytes and be COMPLIANCE-locked. When the key
    is taken, its versions are listed and the newest sound copy of these bytes (COMPLIANCE-locked, S3's checksum
    of its bytes this digest) is the bundle, so a repeat of the same bundle writes nothing; when none is (another
    writer put other bytes or an unlocked copy there: the evaluator S3 user may PUT without the condition), a new
    version is written on top, unconditionally, and checked. The bucket is versioned and locked, so nothing
    stored is ever replaced, and junk at a content address cannot block it.

    Raises:
        EvaluationStoreError: S3 refused, or the version written is not a sound copy (not COMPLIANCE-locked: a
            bucket without the default retention; other bytes).
    """
    sha = bundle_digest(bundle)
    key = bundle_key(sha)
    where = f"s3://{bucket}/{key}"
    created = True

    def put(**condition: str) -> str:
        answer = client.put_object(
            Bucket=bucket,
            Key=key,
            Body=bundle,
            ContentType="application/x-tar",
            ChecksumSHA256=b64(bytes.fromhex(sha)),
            **condition,
        )
        return str(answer["VersionId"])

    try:
        version = put(IfNoneMatch="*")
    except ClientError as exc:
        if error_code(exc) not in CONDITION_FAILED:
            raise EvaluationStoreError(f"S3 refused to store the evaluation bundle at {where}: {exc}") from exc
        found = _sound_version(client, bucket, key, sha, len(bundle))
        if found:
            return StoredBundle(bucket, key, found, sha, len(bundle), False)
        try:  # the key holds no sound copy: a new version on top (the versions under it stay, locked or not)
            version = put()
        except ClientError as put_exc:
            raise EvaluationStoreError(f"S3 refused to store the evaluation bundle at {where}: {put_exc}") from put_exc
    try:
        state = lock_state(client, bucket, BlobRef(key, sha, len(bundle), version))
    except ClientError as exc:
        raise EvaluationStoreError(f"cannot check the evaluation bundle at {where}: {exc}") from exc
    if not state.sound:
        raise EvaluationStoreError(f"{where}: {state.problem}")
    return StoredBundle(bucket, key, version, sha, len(bundle), created)


def _sound_version(client: Any, bucket: str, key: str, sha256: str, size: int) -> str:
    """The newest version of ``key`` that is a sound copy of the bundle (:func:`lock_state`), or "" if none is.

    Raises:
        EvaluationStoreError: The versions cannot be listed or checked.
    """
    where = f"s3://{bucket}/{key}"
    markers: dict[str, str] = {}
    try:
        while True:
            page = client.list_object_versions(Bucket=bucket, Prefix=key, **markers)
            for v in page.get("Versions", []):  # newest first, as S3 lists them
                if v.get("Key") != key or v.get("Size") != size:
                    continue
                version = str(v.get("VersionId") or "")
                if version and lock_state(client, bucket, BlobRef(key, sha256, size, version)).sound:
                    return version
            if not page.get("IsTruncated"):
                return ""
            markers = {"KeyMarker": page["NextKeyMarker"], "VersionIdMarker": page["NextVersionIdMarker"]}
    except ClientError as exc:
        raise EvaluationStoreError(f"cannot list the versions of {where}: {exc}") from exc


def parse_location(location: str) -> tuple[str, str, str]:
    """``s3://bucket/key?versionId=v`` as (bucket, key, version id).

    Raises:
        EvaluationStoreError: Not a location :attr:`StoredBundle.location` writes.
    """
    rest, _, version = location.removeprefix("s3://").partition("?versionId=")
    bucket, _, key = rest.partition("/")
    if not location.startswith("s3://") or not (bucket and key and version):
        raise EvaluationStoreError(f"{location!r} is not an evaluation bundle's location (s3://bucket/key?versionId=)")
    return bucket, key, version


def read_bundle(client: Any, location: str, sha256: str) -> bytes:
    """The bundle stored at ``location`` (that exact version), checked against its SHA-256.

    Raises:
        EvaluationStoreError: It cannot be read, or its bytes are not ``sha256``.
    """
    bucket, key, version = parse_location(location)
    try:
        body = client.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read()
    except ClientError as exc:
        raise EvaluationStoreError(f"cannot read the evaluation bundle at {location}: {exc}") from exc
    if bundle_digest(body) != sha256:
        raise EvaluationStoreError(f"the evaluation bundle at {location} is not the one of digest {sha256}")
    return body


def bundle_member(bundle: bytes, name: str) -> bytes:
    """One file of a bundle.

    Raises:
        EvaluationStoreError: The bundle has no such file, or is no tar.
    """
    try:
        with tarfile.open(fileobj=io.BytesIO(bundle), mode="r:") as tar:
            member = tar.extractfile(name)
            if member is None:
                raise KeyError(name)
            return member.read()
    except (KeyError, tarfile.TarError) as exc:
        raise EvaluationStoreError(f"the evaluation bundle holds no {name}") from exc

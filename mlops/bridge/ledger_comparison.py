"""Conflict detection: whether a record the ledger already holds is what the bridge would register.

Whoever registered the record (this bridge, another registrar, a data
scientist calling the chaincode directly), it is trusted only once it
matches what MLflow holds for the version, as :class:`Held` says (the
manifest of the bytes, computed by the job, and the provenance read from
MLflow). Compared: the manifest, file by file, and both digests; the MLflow
source, run, logged model and user; the framework, libraries, params,
metrics and training datasets; and the storage pointer, which must be a
sound, locked copy of those files in the anchored bucket.
:func:`disagreement` names every difference at once; a version whose record
disagrees is tagged ``conflict`` with that text as its ``ledger.error``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from modelledger.mlops.bridge.provenance import provenance_records
from modelledger.mlops.store.copy_checks import verify_s3
from modelledger.mlops.store.digest import Manifest, ModelTreeError, manifest_differences
from modelledger.mlops.store.index import StoragePointer
from modelledger.mlops.store.ledger_records import ledger_manifest, ledger_pointer
from modelledger.mlops.store.s3errors import NOT_THERE, error_code
from modelledger.mlops.store.upload import ModelUploader


@dataclass(frozen=True)
class Held:
    """What MLflow holds for a version, as the bridge would register it: the manifest and the provenance JSON."""

    manifest: Manifest
    provenance: dict[str, Any]


def disagreement(job_key: str, record: Any, held: Held, uploader: ModelUploader) -> str:
    """Why the ledger's record is not what the bridge would register for this MLflow version ("" when it is).

    Raises:
        RuntimeError: The anchored copy cannot be read now (the job is retried, not put in conflict).
    """
    reasons = provenance_differences(record, held.provenance)
    try:
        recorded = ledger_manifest(record=record)
    except ModelTreeError as exc:
        reasons.append(f"its manifest is not a valid manifest ({exc})")
    else:
        if not recorded.files:
            reasons.append("it lists no files")
        diff = manifest_differences(held.manifest, recorded)
        for label, paths in (
            ("files that differ", diff.changed),
            ("files only on the ledger", diff.only_second),
            ("files only in MLflow", diff.only_first),
        ):
            if paths:
                reasons.append(f"{label}: {_some(paths)}")
        if not diff and recorded.files:
            for field, theirs, ours in (
                ("modelDigest", record.model_digest, held.manifest.model_digest),
                ("manifestDigest", record.manifest_digest, held.manifest.manifest_digest),
            ):
                if theirs != ours:
                    reasons.append(f"its {field} {theirs} is not {ours}")
            reasons += copy_problems(uploader, record, held.manifest)
    if not reasons:
        return ""
    who = record.registrant
    return (
        f"the ledger's record of {job_key} (registered by {who.msp_id or '-'} {who.role or '-'}, certificate "
        f"{who.cert_fingerprint or '-'}, transaction {record.registered_tx_id or '-'}) does not match the "
        f"version MLflow holds: {'; '.join(reasons)}"
    )


def copy_problems(uploader: ModelUploader, record: Any, manifest: Manifest) -> list[str]:
    """What is wrong with the record's storage pointer as the write-once copy of ``manifest`` ([] if nothing)."""
    pointer = ledger_pointer(record=record)
    if pointer.bucket != uploader.bucket:
        return [f"its storage is in bucket {pointer.bucket!r}, not the anchored bucket {uploader.bucket!r}"]
    report = verify_s3(uploader.client, pointer, manifest)
    if report.ok:
        return []
    # An S3 that cannot be read (down, throttling, refusing this credential) is not a finding against the
    # record: the job is retried. Only a copy read the same way twice, and reachable, is a conflict.
    _check_readable(uploader.client, pointer)
    if verify_s3(uploader.client, pointer, manifest).to_json() != report.to_json():
        raise RuntimeError(f"the anchored copy {pointer.uri} read differently twice; checking again later")
    found = report.error or "; ".join(
        f"{what}: {_some(paths)}"
        for what, paths in (
            ("changed", report.changed),
            ("missing", report.missing),
            ("extra", report.extra),
            ("not locked", report.unprotected),
        )
        if paths
    )
    return [f"its storage {pointer.uri} is not a sound write-once copy of the files ({found})"]


def provenance_differences(record: Any, doc: dict[str, Any]) -> list[str]:
    """How a ledger record's provenance differs from ``doc`` (what the bridge reads from MLflow), [] if not."""
    want = provenance_records(doc)
    out: list[str] = []
    got_src, want_src = record.mlflow, want["mlflow"]
    if (got_src.source, got_src.run_id) != (want_src.source, want_src.run_id):
        out.append(
            f"it names another MLflow source ({got_src.source or '-'}, run {got_src.run_id or '-'}), not "
            f"{want_src.source} (run {want_src.run_id or '-'}; a model re-created under a used name?)"
        )
    elif (got_src.model_id, got_src.user) != (want_src.model_id, want_src.user):
        out.append(
            f"its MLflow logged model and user ({got_src.model_id or '-'}, {got_src.user or '-'}) are not "
            f"{want_src.model_id or '-'}, {want_src.user or '-'}"
        )
    if (record.framework.name, record.framework.version) != (want["framework"].name, want["framework"].version):
        out.append(
            f"its framework {record.framework.name} {record.framework.version} is not "
            f"{want['framework'].name} {want['framework'].version}"
        )
    for what, fields, key in (
        ("libraries", ("name", "version"), "name"),
        ("params", ("key", "value"), "key"),
        ("metrics", ("key", "value"), "key"),
        ("datasets", ("name", "sha256", "source"), "sha256"),
    ):
        got, expected = _rows(getattr(record, what), fields), _rows(want[what], fields)
        if got != expected:
            at = fields.index(key)
            differing = sorted({str(r[at]) for r in set(got) ^ set(expected)})
            out.append(f"its {what} differ from MLflow's ({_some(differing)})")
    return out


def _rows(items: list[Any], fields: tuple[str, ...]) -> list[tuple[Any, ...]]:
    return sorted(tuple(getattr(x, f) for f in fields) for x in items)


def _some(paths: list[str], limit: int = 10) -> str:
    """Up to ``limit`` paths, and how many more."""
    shown = ", ".join(paths[:limit])
    return shown if len(paths) <= limit else f"{shown} and {len(paths) - limit} more"


def _check_readable(client: Any, pointer: StoragePointer) -> None:
    """Raises RuntimeError (the job is retried) unless S3 answers for the copy's index, present or not."""
    try:
        client.head_object(Bucket=pointer.bucket, Key=pointer.key, VersionId=pointer.version_id)
    except ClientError as exc:
        if error_code(exc) not in NOT_THERE:
            raise RuntimeError(f"cannot read the anchored copy {pointer.uri}: {exc}") from exc
    except BotoCoreError as exc:
        raise RuntimeError(f"cannot reach the anchored copy {pointer.uri}: {exc}") from exc

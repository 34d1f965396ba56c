"""One model of what is anchored: the store's manifest and pointer as the ledger's records, and back.

The store and the ledger describe the same two things with fields in
different orders, so a positional constructor call written for one is
silently wrong for the other:

- one file: ``FileEntry(path, size, sha256)`` in the store,
  ``ManifestFile(path, sha256, size)`` on the ledger;
- the anchored copy: ``StoragePointer(bucket, key, version_id, sha256)`` in
  the store, ``Storage(bucket, key, sha256, version_id)`` on the ledger.

Every conversion between them is in this module, and nowhere else: each
function takes keyword arguments only and builds each record by field name.
The bridge builds the record it registers with :func:`version_input`; the
CLI, the demo and verification read a record's manifest and copy with
:func:`ledger_manifest` and :func:`ledger_pointer`. (The store may import the
SDK; the SDK knows nothing of the store.)
"""

from __future__ import annotations

from modelledger.mlops.store.digest import FileEntry, Manifest
from modelledger.mlops.store.index import StoragePointer
from modelledger.sdk.registry.records import (
    DatasetRef,
    Framework,
    Library,
    ManifestFile,
    Metric,
    MLflowSource,
    ModelVersion,
    ModelVersionInput,
    Param,
    Storage,
)
from modelledger.sdk.registry.records import Manifest as LedgerManifest

__all__ = [
    "from_ledger_manifest",
    "from_ledger_storage",
    "ledger_manifest",
    "ledger_pointer",
    "to_ledger_manifest",
    "to_ledger_storage",
    "version_input",
]


def to_ledger_manifest(*, manifest: Manifest) -> LedgerManifest:
    """The store's manifest as the ledger's manifest record (same files, same order)."""
    return LedgerManifest(files=[ManifestFile(path=f.path, sha256=f.sha256, size=f.size) for f in manifest.files])


def from_ledger_manifest(*, manifest: LedgerManifest) -> Manifest:
    """The ledger's manifest record as the store's manifest.

    Raises:
        ModelTreeError: The record is not a valid manifest (a bad path, digest or size, a path twice).
    """
    return Manifest(tuple(FileEntry(path=f.path, size=f.size, sha256=f.sha256) for f in manifest.files))


def to_ledger_storage(*, pointer: StoragePointer) -> Storage:
    """The store's pointer to the anchored copy as the ledger's storage record."""
    return Storage(bucket=pointer.bucket, key=pointer.key, sha256=pointer.sha256, version_id=pointer.version_id)


def from_ledger_storage(*, storage: Storage) -> StoragePointer:
    """The ledger's storage record as the store's pointer to the anchored copy."""
    return StoragePointer(bucket=storage.bucket, key=storage.key, version_id=storage.version_id, sha256=storage.sha256)


def ledger_manifest(*, record: ModelVersion) -> Manifest:
    """The manifest a ledger record holds.

    Raises:
        ModelTreeError: The record's manifest is not a valid manifest.
    """
    return from_ledger_manifest(manifest=record.manifest)


def ledger_pointer(*, record: ModelVersion) -> StoragePointer:
    """The anchored copy a ledger record points at."""
    return from_ledger_storage(storage=record.storage)


def version_input(
    *,
    name: str,
    version: str,
    manifest: Manifest,
    pointer: StoragePointer,
    mlflow: MLflowSource | None = None,
    framework: Framework | None = None,
    libraries: list[Library] | None = None,
    params: list[Param] | None = None,
    metrics: list[Metric] | None = None,
    datasets: list[DatasetRef] | None = None,
) -> ModelVersionInput:
    """The registration of a model version: its files' manifest and digests, its anchored copy, its provenance.

    Args:
        name: The ledger's model name.
        version: The ledger's version.
        manifest: The files as digested (``modelDigest`` and ``manifestDigest`` are its own).
        pointer: The write-once copy of those files.
        mlflow: Where the version comes from in MLflow.
        framework: The model's framework.
        libraries: The pinned libraries.
        params: The run's parameters.
        metrics: The run's metrics.
        datasets: The training datasets, by digest.
    """
    return ModelVersionInput(
        name=name,
        version=version,
        model_digest=manifest.model_digest,
        manifest=to_ledger_manifest(manifest=manifest),
        manifest_digest=manifest.manifest_digest,
        storage=to_ledger_storage(pointer=pointer),
        mlflow=mlflow if mlflow is not None else MLflowSource(),
        framework=framework if framework is not None else Framework(),
        libraries=list(libraries or []),
        params=list(params or []),
        metrics=list(metrics or []),
        datasets=list(datasets or []),
    )

"""The off-chain store: a library over a boto3 client for the model files the ledger anchors.

Public surface (the implementation lives in the modules named in brackets):

- digests [digest]: :class:`Manifest` of :class:`FileEntry` items,
  :func:`digest_folder`, :func:`digest_files`, :func:`manifest_differences`,
  :class:`ModelTreeError`;
- the write-once copy [upload, index]: :class:`ModelUploader` (content-addressed,
  COMPLIANCE-locked chunks and an index), :class:`StoragePointer`,
  :class:`UploadError`, :class:`StoreError`;
- signatures [signing]: :func:`sign_manifest`, :func:`open_bundle`,
  :class:`SignatureError`;
- reading models [source, fetch]: :func:`local_folder`, :func:`is_artifact_uri`, :class:`SourceError`,
  :func:`fetch_verified`;
- verification [copy_checks, verification]: :func:`verify_folder`,
  :func:`verify_s3`, :class:`VerifyReport`, :func:`ledger_evidence`,
  :func:`anchored_bundle`, :func:`verify_version`, :class:`LedgerEvidence`,
  :class:`Verification`;
- one model of what is anchored [ledger_records]: the store's manifest and
  pointer as the ledger's records and back (:func:`version_input`,
  :func:`ledger_manifest`, :func:`ledger_pointer`, ...).

The names are imported on first use (PEP 562,
:func:`~modelledger.runtime.lazy_exports.lazy_exports`), not with the package:
the signature code [signing] (model-signing's and sigstore's) takes ~0.3 s to
import, and a CLI command that only reads a digest should not pay for it
(``modelledger store`` imports the ledger checks inside the commands that use
them). The store starts no server and imports no server, bridge or network module (``tests/unit/test_layers.py``).
"""

from __future__ import annotations

from modelledger.runtime.lazy_exports import lazy_exports

# Each public name, and the module of this package that holds it.
_HOMES = {
    "FileEntry": "digest",
    "Manifest": "digest",
    "ModelTreeError": "digest",
    "digest_files": "digest",
    "digest_folder": "digest",
    "manifest_differences": "digest",
    "StoragePointer": "index",
    "StoreError": "index",
    "ModelUploader": "upload",
    "UploadError": "upload",
    "SignatureError": "signing",
    "open_bundle": "signing",
    "sign_manifest": "signing",
    "SourceError": "source",
    "is_artifact_uri": "source",
    "local_folder": "source",
    "fetch_verified": "fetch",
    "VerifyReport": "copy_checks",
    "verify_folder": "copy_checks",
    "verify_s3": "copy_checks",
    "SIGNER_IDENTITY": "verification",
    "LedgerEvidence": "verification",
    "Verification": "verification",
    "anchored_bundle": "verification",
    "ledger_evidence": "verification",
    "verify_version": "verification",
    "from_ledger_manifest": "ledger_records",
    "from_ledger_storage": "ledger_records",
    "ledger_manifest": "ledger_records",
    "ledger_pointer": "ledger_records",
    "to_ledger_manifest": "ledger_records",
    "to_ledger_storage": "ledger_records",
    "version_input": "ledger_records",
}

__all__ = [
    "SIGNER_IDENTITY",
    "FileEntry",
    "LedgerEvidence",
    "Manifest",
    "ModelTreeError",
    "ModelUploader",
    "SignatureError",
    "SourceError",
    "StoragePointer",
    "StoreError",
    "UploadError",
    "Verification",
    "VerifyReport",
    "anchored_bundle",
    "digest_files",
    "digest_folder",
    "fetch_verified",
    "from_ledger_manifest",
    "from_ledger_storage",
    "is_artifact_uri",
    "ledger_evidence",
    "ledger_manifest",
    "ledger_pointer",
    "local_folder",
    "manifest_differences",
    "open_bundle",
    "sign_manifest",
    "to_ledger_manifest",
    "to_ledger_storage",
    "verify_folder",
    "verify_s3",
    "verify_version",
    "version_input",
]


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, __all__)

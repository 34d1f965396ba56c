"""The MLflow tags the bridge writes on every model version, and reads on a run's dataset inputs: the vocabulary
data scientists read (re-exported by :mod:`modelledger.mlflow`).

docs/bridge.md ("For data scientists") explains each one. ``ledger.status`` is
written last, so when it says ``anchored`` the others are there; only
``anchored`` follows a VALID commit of a record that equals what MLflow holds.
Tags are a view: anyone with write access to a version can change them, and
the ledger record is what verification checks. :data:`ANCHORING` says what
each value of ``ledger.status`` means, once (docs/guarantees.md "Vocabulary"
lists it).
"""

from __future__ import annotations

TAG_STATUS = "ledger.status"  # pending, anchored, failed or conflict
TAG_TX = "ledger.tx_id"  # the transaction that registered the version
TAG_BLOCK = "ledger.block"  # the block that holds it
TAG_ERROR = "ledger.error"  # why it is pending, failed or in conflict
TAG_DIGEST = "model.digest"  # model-signing's root digest of the files
TAG_STORAGE = "storage.uri"  # the write-once copy: s3://bucket/key?versionId=...
TAG_NOTE = "ledger.note"  # provenance left out (limits) or a dataset claimed before with another description
# On a run's dataset input, written by ``modelledger.mlflow.log_dataset`` and read by the bridge.
TAG_DATASET_SHA256 = "modelledger.sha256"  # the dataset's full-content SHA-256
TAG_DATASET_SOURCE = "modelledger.source"  # where the data came from, as the ledger records it

STATUS_PENDING = "pending"
STATUS_ANCHORED = "anchored"
STATUS_FAILED = "failed"
STATUS_CONFLICT = "conflict"  # the ledger holds a record of the version that is not what MLflow holds

# Each value of ``ledger.status`` -> what it means, in one sentence. These are the bridge's outcome for a version,
# not the version's status on the ledger (``modelledger.sdk.registry.statuses``): ``anchored`` says the ledger holds
# the version, registered, and stays as it is when the ledger's status moves on (approved, deployed, revoked),
# which only the ledger tells (``modelledger model show``).
ANCHORING: dict[str, str] = {
    STATUS_PENDING: "the bridge is working on the version or retrying it (ledger.error says why); "
    "it may not be on the ledger yet",
    STATUS_ANCHORED: "the version is registered on the ledger (transaction ledger.tx_id, committed VALID), "
    "the record is of the bytes MLflow holds, and its write-once copy is locked",
    STATUS_FAILED: "the bridge stopped trying: a permanent refusal or 12 failed tries (ledger.error says why); "
    "its reconciler revives a job that failed for a passing cause, a few times at most; "
    "whether the ledger holds the version, only the ledger says",
    STATUS_CONFLICT: "the ledger holds a record of this version that is not of the bytes or provenance MLflow holds "
    "(ledger.error says what differs and who registered it)",
}

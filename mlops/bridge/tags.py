"""The MLflow tags the bridge writes on every model version, and reads on a run's dataset inputs: the vocabulary
data scientists read (re-exported by :mod:`modelledger.mlflow`).

docs/bridge.md ("For data scientists") explains each one. ``ledger.status`` is
written last, so when it says ``anchored`` (or a later status) the others are
there; only ``anchored`` and the ledger statuses after it follow a VALID commit
of a record that equals what MLflow holds. After anchoring, the tag follows the
version's status on the ledger (:data:`LEDGER_STATUS_TAGS`: ``anchored`` while
it is registered, then ``approved``, ``rejected``, ``revoked`` or ``deployed``),
written by the bridge's ledger follower (:mod:`~modelledger.mlops.bridge.ledger_follower`)
from the ledger's record. Tags are a view: anyone with write access to a version
can change them, and the ledger record is what verification checks.
:data:`ANCHORING` says what each of the bridge's own values of ``ledger.status``
means, once (docs/guarantees.md "Vocabulary" lists it, with the ledger's words).
"""

from __future__ import annotations

from modelledger.sdk.registry import statuses

TAG_STATUS = "ledger.status"  # pending, anchored, failed or conflict; after anchoring, the ledger status
TAG_TX = "ledger.tx_id"  # the transaction that registered the version
TAG_BLOCK = "ledger.block"  # the block that holds it
TAG_ERROR = "ledger.error"  # why it is pending, failed or in conflict
TAG_DIGEST = "model.digest"  # model-signing's root digest of the files
TAG_STORAGE = "storage.uri"  # the write-once copy: s3://bucket/key?versionId=...
TAG_NOTE = "ledger.note"  # provenance left out (limits) or a dataset claimed before with another description
# Mirrored from the ledger's record by the follower (JSON values).
TAG_APPROVALS = "ledger.approvals"  # [{"org", "decision", "time", "tx"}] sorted by org
TAG_EVALUATION = "ledger.evaluation"  # the latest evaluation: result, metrics, policy version, evaluator, ...
TAG_DEPLOYMENTS = "ledger.deployments"  # [{"environment", "endpoint", "time", "tx"}] in ledger order
TAG_ALIASES_REMOVED = "ledger.aliases_removed"  # [{"alias", "time"}]: MLflow aliases removed from a revoked version
# On a run's dataset input, written by ``modelledger.mlflow.log_dataset`` and read by the bridge.
TAG_DATASET_SHA256 = "modelledger.sha256"  # the dataset's full-content SHA-256
TAG_DATASET_SOURCE = "modelledger.source"  # where the data came from, as the ledger records it

STATUS_PENDING = "pending"
STATUS_ANCHORED = "anchored"
STATUS_FAILED = "failed"
STATUS_CONFLICT = "conflict"  # the ledger holds a record of the version that is not what MLflow holds

# The ledger's status (as stored) -> the value of ``ledger.status`` once the version is anchored: ``anchored``
# while it is registered, the ledger's own word after that (``modelledger.sdk.registry.statuses``).
LEDGER_STATUS_TAGS: dict[str, str] = {
    stored: STATUS_ANCHORED if stored == statuses.REGISTERED else wording.word
    for stored, wording in statuses.STATUSES.items()
}

# The values of ``ledger.status`` that say the version is anchored: the follower and the anchoring worker write
# them from the ledger's record; anything else (pending, failed, conflict, no tag) is anchoring's to write.
ANCHORED_STATUSES: frozenset[str] = frozenset(LEDGER_STATUS_TAGS.values())


def status_tag(ledger_status: str) -> str:
    """The ``ledger.status`` of an anchored version whose ledger status is ``ledger_status`` (``APPROVED`` ->
    ``approved``); a status this release does not know (a newer chaincode's) in lowercase, so nothing is hidden."""
    return LEDGER_STATUS_TAGS.get(ledger_status, ledger_status.lower() or STATUS_ANCHORED)


# Each of the bridge's own values of ``ledger.status`` -> what it means, in one sentence. After ``anchored`` the
# tag takes the ledger's words (approved, rejected, revoked, deployed), which mean what they mean on the ledger.
ANCHORING: dict[str, str] = {
    STATUS_PENDING: "the bridge is working on the version or retrying it (ledger.error says why); "
    "it may not be on the ledger yet",
    STATUS_ANCHORED: "the version is registered on the ledger (transaction ledger.tx_id, committed VALID), "
    "the record is of the bytes MLflow holds, and its write-once copy is locked; not yet approved, rejected, "
    "deployed or revoked (then the tag says so, as the ledger does)",
    STATUS_FAILED: "the bridge stopped trying: a permanent refusal or 12 failed tries (ledger.error says why); "
    "its reconciler revives a job that failed for a passing cause, a few times at most; "
    "whether the ledger holds the version, only the ledger says",
    STATUS_CONFLICT: "the ledger holds a record of this version that is not of the bytes or provenance MLflow holds "
    "(ledger.error says what differs and who registered it)",
}

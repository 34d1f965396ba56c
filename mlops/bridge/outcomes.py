"""How a job ends, on the version's MLflow tags and in the outbox: anchored, retried, dead or in conflict.

The tags (:mod:`~modelledger.mlops.bridge.tags`) each outcome leaves:

- **anchored** (:meth:`Outcomes.finish`): ``ledger.tx_id``, ``ledger.block``,
  ``model.digest``, ``storage.uri``, a stale ``ledger.error`` removed, then
  the record's own tags (approvals, evaluation, deployments, a revoked
  version's aliases removed: :mod:`~modelledger.mlops.bridge.ledger_mirror`)
  and ``ledger.status`` last, so whoever sees it finds the others: ``anchored``,
  or the status the ledger has moved on to since (``approved``, ``revoked``
  ...: a version anchored again never goes back to ``anchored``), read from
  the ledger under the version's lock (:class:`~modelledger.mlops.bridge.concurrency.VersionLocks`,
  shared with the ledger follower);
- **retried** (:meth:`Outcomes.retry`): ``ledger.status=pending`` with the
  last error in ``ledger.error`` (not for a version MLflow is still creating);
  after the last attempt, as failed;
- **failed** (:meth:`Outcomes.dead`) and **conflict** (:meth:`Outcomes.conflict`):
  the tags of a registration in flight (transaction, block, digest, copy)
  removed, then ``ledger.error`` with the reason (at most 4000 characters)
  and ``ledger.status``. A prompt's version gets no tag.

**The status never goes backwards.** A retried or failed outcome is written
under the version's lock, after reading its tags and the ledger: a version
tagged ``anchored`` or a later ledger status (``approved``, ``revoked`` ...)
whose ledger record is the one its ``ledger.tx_id`` names (the reconciler
revived its job to check it again, and a transient error came up) keeps its
status and its tags; only ``ledger.error`` says what failed. So the ledger
follower and the alias guard go on treating it as anchored. If the ledger
cannot be read at that moment the status is kept only if this bridge's outbox
anchored the version under that transaction (a forged tag must not outlive a
ledger outage); otherwise it is written as if not vouched for, and the next try
or scan settles it. A **conflict** is written whatever the tag says: the worker found
that the ledger's record is not of the bytes MLflow holds, so an anchored
status there would be false.

The tags are written while the worker still holds the job's lease, before
the outbox records the outcome, so that a late tag never overwrites what a
worker that took the job over wrote. When MLflow is down too, the outcome is
recorded all the same and the reconciler tags later.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from modelledger.mlops.bridge.concurrency import all_done, spawn
from modelledger.mlops.bridge.ledger_mirror import mirror_record
from modelledger.mlops.bridge.mlflow_api import is_missing
from modelledger.mlops.bridge.outbox import Job, LeaseLostError, Outbox
from modelledger.mlops.bridge.tags import (
    ANCHORED_STATUSES,
    STATUS_CONFLICT,
    STATUS_FAILED,
    STATUS_PENDING,
    TAG_BLOCK,
    TAG_DIGEST,
    TAG_ERROR,
    TAG_STATUS,
    TAG_STORAGE,
    TAG_TX,
)
from modelledger.mlops.store.index import StoragePointer
from modelledger.sdk.registry.client import NotFound

# The anchoring job's logger, as when this was part of anchor.py: its log lines keep their logger name
# (operators filter on it; tests/unit/test_bridge_anchor.py listens on it).
log = logging.getLogger("modelledger.bridge.anchor")

# The longest ``ledger.error`` and ``ledger.note`` written (MLflow limits the length of a tag value).
MAX_TAG_TEXT = 4000


def storage_uri(pointer: StoragePointer) -> str:
    """The ``storage.uri`` tag of an anchored copy: ``s3://bucket/key?versionId=...``."""
    return f"{pointer.uri}?versionId={pointer.version_id}"


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else ""


class Outcomes:
    """Writes a job's tags through ``parts.mlflow`` and records its outcome in ``outbox``.

    Args:
        parts: What the worker talks to (only its ``mlflow`` is used).
        outbox: The jobs.
        pool: Where tag writes run beside the job's main line.
    """

    def __init__(self, parts: Any, outbox: Outbox, pool: ThreadPoolExecutor) -> None:
        self.parts, self.outbox, self._pool = parts, outbox, pool

    def write_tags(
        self, job: Job, known: dict[str, str], tags: dict[str, str], background: list[Future[Any]]
    ) -> list[Future[Any]]:
        """Starts writing ``tags`` (and removing a stale ``ledger.error``) in parallel; returns the requests."""
        mlflow = self.parts.mlflow

        def drop_error() -> None:
            try:
                mlflow.delete_model_version_tag(job.name, job.version, TAG_ERROR)
            except Exception as exc:
                if not is_missing(exc):
                    raise

        def put(key: str, value: str) -> None:
            mlflow.set_model_version_tag(job.name, job.version, key, value)

        requests = [spawn(self._pool, background, put, k, v) for k, v in tags.items()]
        return [*requests, spawn(self._pool, background, drop_error)] if TAG_ERROR in known else requests

    def finish(
        self,
        job: Job,
        tx_id: str,
        block: int,
        model_digest: str,
        pointer: StoragePointer,
        written: dict[str, str],
        known: dict[str, str],
        background: list[Future[Any]],
    ) -> str:
        """Writes the ledger tags not yet ``written``, then the record's state and ``ledger.status``; completes the job.

        The record is read from the ledger now, under the version's lock
        (:mod:`~modelledger.mlops.bridge.ledger_mirror`): the status is
        ``anchored`` for a registered version, or the ledger's later status
        (``approved`` ...) with its approvals, evaluation and deployments, so it
        never overwrites with ``anchored`` what the ledger follower wrote from a
        newer record (e.g. the version was approved meanwhile, or is anchored again).
        """
        details = {TAG_TX: tx_id, TAG_BLOCK: str(block), TAG_DIGEST: model_digest, TAG_STORAGE: storage_uri(pointer)}
        all_done(self.write_tags(job, known, {k: v for k, v in details.items() if written.get(k) != v}, background))
        # The record's own tags (approvals ...; none for a version just registered), then the status last:
        # whoever sees "anchored" (or a later status) finds the other tags already there.
        with self.parts.locks.hold(job.name, job.version):
            record = self.parts.registry.get_model_version(job.name, job.version)
            held = {k: v for k, v in known.items() if k != TAG_STATUS}  # the status is always written here
            mirror_record(self.parts.mlflow, job.name, job.version, record, held)
        self.outbox.complete(job, tx_id=tx_id, block=block)
        return "done"

    def retry(self, job: Job, reason: str, tag: bool) -> str:
        """Puts the job back with backoff (tagged ``pending`` with the reason if ``tag``), or dead after the last."""
        log.warning("retrying", extra={"job": job.key, "reason": reason, "attempt": job.attempts})
        last = self.outbox.out_of_attempts(job.attempts)
        if last:
            self.failed(job, f"gave up after {job.attempts} attempts: {reason}")
        elif tag:
            try:
                with self.parts.locks.hold(job.name, job.version):
                    tags = {TAG_ERROR: reason[:MAX_TAG_TEXT]}
                    self.tags(job, tags if self.vouched(job) else {**tags, TAG_STATUS: STATUS_PENDING})
            except Exception as exc:  # MLflow down too: the reconciler tags later
                log.warning("cannot tag", extra={"job": job.key, "reason": _first_line(exc)})
        try:
            return self.outbox.retry(job, reason).state
        except LeaseLostError:
            return "lost"

    def dead(self, job: Job, reason: str, tag: bool = True) -> str:
        """Dead-letters the job, tagging the version ``failed`` with the reason if ``tag``."""
        log.error("dead-lettered", extra={"job": job.key, "reason": reason})
        if tag:
            self.failed(job, reason)
        try:
            self.outbox.dead(job, reason)
        except LeaseLostError:
            return "lost"
        return "dead"

    def conflict(self, job: Job, reason: str) -> str:
        """Tags the version ``conflict`` with the reason (no ledger tags of a record that is not its own)."""
        log.error("conflict", extra={"job": job.key, "reason": reason})
        self.failed(job, reason, status=STATUS_CONFLICT)
        try:
            self.outbox.conflict(job, reason)
        except LeaseLostError:
            return "lost"
        return "conflict"

    def failed(self, job: Job, reason: str, status: str = STATUS_FAILED) -> None:
        """Tags the version ``status`` (failed); first removes the tags written while a registration was in flight.

        A failed version must not name a transaction, digest or copy as if it had been anchored. Under the
        version's lock; a version the ledger vouches for (:meth:`vouched`) keeps its status and tags, and only
        ``ledger.error`` is written, unless ``status`` is ``conflict`` (module docstring).
        """
        error = {TAG_ERROR: reason[:MAX_TAG_TEXT]}
        with self.parts.locks.hold(job.name, job.version):
            try:
                keep = status != STATUS_CONFLICT and self.vouched(job)
            except Exception as exc:  # MLflow down too: the reconciler tags later
                log.warning("cannot tag", extra={"job": job.key, "reason": _first_line(exc)})
                return
            if keep:
                self.try_tags(job, error)
                return
            try:
                for key in (TAG_TX, TAG_BLOCK, TAG_DIGEST, TAG_STORAGE):
                    try:
                        self.parts.mlflow.delete_model_version_tag(job.name, job.version, key)
                    except Exception as exc:
                        if not is_missing(exc):
                            raise
            except Exception as exc:  # MLflow down too: the reconciler tags later
                log.warning("cannot untag", extra={"job": job.key, "reason": _first_line(exc)})
            self.try_tags(job, {**error, TAG_STATUS: status})

    def vouched(self, job: Job) -> bool:
        """Whether the version is tagged ``anchored`` or a later status that its ledger record bears out.

        Call it holding the version's lock. True if ``ledger.status`` is in
        :data:`~modelledger.mlops.bridge.tags.ANCHORED_STATUSES` and the ledger
        holds the version registered by the transaction ``ledger.tx_id`` names;
        or, while the ledger cannot be read, if this bridge's outbox anchored it
        under that transaction (:meth:`anchored_here`).

        Raises:
            Exception: MLflow failed (the version's tags could not be read).
        """
        mv = self.parts.mlflow.get_model_version(job.name, job.version)
        tags = dict(getattr(mv, "tags", None) or {})
        if tags.get(TAG_STATUS) not in ANCHORED_STATUSES:
            return False
        try:
            record = self.parts.registry.get_model_version(job.name, job.version)
        except NotFound:
            return False  # tagged anchored, not on the ledger: the tag is anyone's to write, not the ledger's word
        except Exception as exc:
            # A ledger outage must not make a tag vouched: MLflow tags are anyone's to write, so a forged
            # ``anchored`` (or later) would survive every outage. Only this bridge's own outbox is evidence
            # we can read without the ledger; without it the version is tagged pending, and the reconciler
            # anchors it again once the ledger answers (a real anchoring is then found and re-tagged).
            kept = self.anchored_here(job, tags.get(TAG_TX, ""))
            log.warning(
                "ledger unreadable: " + ("status kept (anchored by this bridge)" if kept else "status not vouched for"),
                extra={"job": job.key, "reason": _first_line(exc)},
            )
            return kept
        return bool(record.registered_tx_id) and record.registered_tx_id == tags.get(TAG_TX)

    def anchored_here(self, job: Job, tx_id: str) -> bool:
        """Whether this bridge's outbox records the version anchored by ``tx_id`` (False if it cannot be read).

        The outbox stores a transaction's ``block`` only once it saw it commit VALID (or read its record back
        from the ledger) and keeps it when the reconciler revives the job; ``tx_id`` alone is stored at submit.
        """
        try:
            held = self.outbox.get(job.name, job.version)
        except Exception as exc:
            log.warning("outbox unreadable", extra={"job": job.key, "reason": _first_line(exc)})
            return False
        cp = held.checkpoint if held is not None else {}
        return bool(tx_id) and cp.get("tx_id") == tx_id and cp.get("block") is not None

    def try_tags(self, job: Job, tags: dict[str, str]) -> None:
        """:meth:`tags`, logging a failure instead of raising it."""
        try:
            self.tags(job, tags)
        except Exception as exc:  # MLflow down too: the reconciler tags later
            log.warning("cannot tag", extra={"job": job.key, "reason": _first_line(exc)})

    def tags(self, job: Job, tags: dict[str, str]) -> None:
        """Writes ``tags`` one after the other, in their order."""
        for key, value in tags.items():
            self.parts.mlflow.set_model_version_tag(job.name, job.version, key, value)

"""The reconciler: MLflow deliveries are fire-and-forget, so the registry is scanned for what the ledger lacks.

On start and every ``reconcile_seconds``, every registry version is compared
with the ledger (what the bridge's identity can read):

- not on the ledger: a job is enqueued, or a done or transiently dead one is
  revived (a permanently dead job stays dead: its reason does not go away);
- on the ledger but not tagged ``anchored`` or a later ledger status (tags
  lost, or MLflow was down when the job finished), or tagged so although this bridge's
  outbox holds no finished job for the ledger's transaction (MLflow tags are
  anyone's to write): a job is enqueued or revived, and the worker
  compares the record with MLflow's bytes before it writes the tags;
- on the ledger with a record that does not match MLflow's bytes (its job is
  in ``conflict``): reported at every scan (a warning in the log and in the
  scan's report) until an operator deals with it; it is not retried on its
  own, since the ledger record does not change.

- a version the ledger says REVOKED that an MLflow alias points at (set
  after the revocation; its webhook lost, or acknowledged by a bridge that
  crashed before acting on it): its aliases are removed and named in
  ``ledger.aliases_removed`` (:mod:`~modelledger.mlops.bridge.alias_guard`).

- a version the ledger follower dead-lettered (an event it could not apply,
  :mod:`~modelledger.mlops.bridge.dead_letters`): re-mirrored from its ledger
  record as the follower would (``VersionMirror.apply``), and its entry
  cleared when that works. Once after a damaged dead-letter file was set
  aside (its entries lost), every version on the ledger that MLflow holds
  is re-mirrored so (:func:`~modelledger.mlops.bridge.dead_letters.full_pass`).

A scan keeps, of each ledger record, only what it compares (the registering
transaction and the status), page by page: never the whole records
(evaluations, deployments ...) of every version at once.

Versions still being created in MLflow are left to the next scan. Prompt
versions (MLflow keeps prompts in the model registry) are not models and are
left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from modelledger.mlops.bridge.alias_guard import AliasCheck, unalias_revoked
from modelledger.mlops.bridge.dead_letters import DeadLetters, full_pass, remirror
from modelledger.mlops.bridge.mlflow_api import is_prompt
from modelledger.mlops.bridge.outbox import Job, Outbox
from modelledger.mlops.bridge.tags import ANCHORED_STATUSES, TAG_STATUS, TAG_TX
from modelledger.sdk.registry.client import RegistryClient
from modelledger.sdk.registry.statuses import REVOKED

log = logging.getLogger("modelledger.bridge.reconciler")

PAGE = 500


@dataclass
class ReconcileReport:
    """What one scan found and did."""

    scanned: int = 0
    on_ledger: int = 0
    enqueued: list[str] = field(default_factory=list)
    revived: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    unaliased: list[str] = field(default_factory=list)  # revoked versions whose aliases it removed
    remirrored: list[str] = field(default_factory=list)  # dead-lettered versions mirrored again and cleared
    full_pass: int = 0  # versions mirrored again by the full pass after a damaged dead-letter file (0: none ran)


class LedgerEntry(NamedTuple):
    """What a scan keeps of one ledger record."""

    tx_id: str  # the transaction that registered it
    status: str  # its ledger status (REGISTERED, APPROVED, REVOKED ...)


def ledger_records(registry: RegistryClient) -> dict[tuple[str, str], LedgerEntry]:
    """Every (name, version) on the ledger that the caller may read, with its registering transaction and status.

    Only these two are kept of each page's records: a scan holds no version's evaluations or deployments.
    """
    found: dict[tuple[str, str], LedgerEntry] = {}
    bookmark = ""
    while True:
        page = registry.list_model_versions("", PAGE, bookmark)
        found |= {(r.name, r.version): LedgerEntry(r.registered_tx_id, getattr(r, "status", "")) for r in page.records}
        if not page.bookmark or page.fetched == 0:
            return found
        bookmark = page.bookmark


def registry_versions(mlflow: Any) -> list[Any]:
    """Every model version in the MLflow registry."""
    out: list[Any] = []
    token = None
    while True:
        page = mlflow.search_model_versions(max_results=PAGE, page_token=token)
        out += list(page)
        token = page.token
        if not token:
            return out


def _anchored_by_this_bridge(job: Job | None, tx_id: str, tags: dict[str, str]) -> bool:
    """Whether this bridge's outbox finished the version on the ledger's record (anyone can write MLflow tags)."""
    return job is not None and job.state == "done" and job.checkpoint.get("tx_id") == tx_id == tags.get(TAG_TX)


def reconcile(
    mlflow: Any,
    registry: RegistryClient,
    outbox: Outbox,
    check_aliases: AliasCheck | None = None,
    dead_letters: tuple[DeadLetters, Callable[[str, str], str]] | None = None,
) -> ReconcileReport:
    """One scan (see the module docstring).

    The registry is read before the ledger, so a version anchored during the
    scan is seen on the ledger; and a job that changed after the scan started
    is not revived on the strength of what the scan saw.

    Args:
        mlflow: The MLflow registry (:class:`~modelledger.mlops.bridge.mlflow_api.MlflowApi`).
        registry: The ledger, as the bridge's identity.
        outbox: The anchoring jobs.
        check_aliases: ``VersionMirror.remove_aliases_if_revoked``: with it, the aliases pointing at versions
            the ledger revoked are removed (:func:`~modelledger.mlops.bridge.alias_guard.unalias_revoked`).
        dead_letters: The follower's dead letters and ``VersionMirror.apply``: with them, each dead-lettered
            version is mirrored again from its ledger record and cleared when that works (and every version,
            once, after a damaged dead-letter file was set aside).
    """
    report = ReconcileReport()
    started = outbox.clock()
    versions = registry_versions(mlflow)
    records = ledger_records(registry)
    on_ledger = {key: r.tx_id for key, r in records.items()}
    held = {(mv.name, str(mv.version)) for mv in versions if not is_prompt(mv)}
    if check_aliases is not None:
        revoked = [key for key, r in records.items() if r.status == REVOKED and key in held]
        report.unaliased = unalias_revoked(mlflow, revoked, check_aliases)
    if dead_letters is not None:
        report.remirrored = remirror(*dead_letters)
        if dead_letters[0].full_pass_due:
            report.full_pass = full_pass(*dead_letters, [key for key in records if key in held])
    for mv in versions:
        report.scanned += 1
        if not str(getattr(mv, "status", "READY")).endswith("READY") or is_prompt(mv):
            continue
        key = (mv.name, str(mv.version))
        name = f"{key[0]}/{key[1]}"
        job = outbox.get(*key)
        if job is not None and job.state == "conflict":  # whatever its tags say now
            report.conflicts.append(name)
            log.warning("conflict", extra={"job": name, "reason": job.reason})
            continue
        tags = mv.tags or {}
        # ``anchored``, or the ledger status the follower mirrored after it (approved, revoked ...).
        anchored = tags.get(TAG_STATUS) in ANCHORED_STATUSES
        if key in on_ledger:
            report.on_ledger += 1
            if anchored and _anchored_by_this_bridge(job, on_ledger[key], tags):
                continue
            reason = "tagged anchored, but not by this bridge" if anchored else "on the ledger but not tagged anchored"
        else:
            reason = "tagged anchored but absent from the ledger" if anchored else "not on the ledger"
        if outbox.enqueue(key[0], key[1], "reconciler"):
            report.enqueued.append(name)
            log.info("enqueued", extra={"job": name, "reason": reason})
        elif job is not None and job.state in ("done", "dead") and outbox.revive(key[0], key[1], reason, started):
            report.revived.append(name)
            log.info("revived", extra={"job": name, "reason": reason})
    return report

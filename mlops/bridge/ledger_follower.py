"""The ledger follower: the registry chaincode's events, followed from a durable checkpoint, become MLflow tags.

A thread of the bridge process (started and stopped by
:class:`~modelledger.mlops.bridge.service.Bridge` like its workers). It reads
the chaincode's events from its checkpoint (``ledger-events.json`` in the
bridge's state folder, ``BridgeSettings.follower_checkpoint_file``: 0600, replaced atomically:
:class:`~modelledger.sdk.gateway.events.FileCheckpointer`) and, for each
``ModelVersion*`` event of a state change (approved, rejected, revoked,
deployed, evaluated), mirrors the version onto its MLflow tags
(:class:`VersionMirror`), and only then advances the checkpoint:

- **From the record, not the event.** The version's record is read from the
  ledger (``GetModelVersion`` as the bridge's registrar identity) and the tags
  are written from it (:func:`ledger_tags`), each only if its value differs:
  an event delivered again (the bridge died between applying it and its
  checkpoint: at-least-once) writes nothing, and events out of order are
  harmless (each write is the state now).
- **Status after anchoring.** ``ledger.status`` follows the ledger
  (:data:`~modelledger.mlops.bridge.tags.LEDGER_STATUS_TAGS`) once the version
  is anchored; before that (pending, failed, no tag) the other tags are
  written and the status is left to the anchoring worker, which writes it from
  the ledger's record too. Both read and write under the version's lock
  (:class:`~modelledger.mlops.bridge.concurrency.VersionLocks`), so the later
  write is from the later read. A version in ``conflict`` (the ledger's record
  is not of MLflow's bytes) gets none of the record's tags.
- **Revocation.** Every MLflow alias that points at a revoked version is
  removed, after ``ledger.aliases_removed`` names it (with the time), and before
  ``ledger.status=revoked``: a version tagged revoked keeps no alias.
- **Skipped, with a log line**: a version MLflow does not have (registered
  elsewhere), a version the bridge's identity may not read (the chaincode
  answers NOT_FOUND: another organisation's model, not granted), a prompt.
- **Never skipped**: an event it failed to apply (MLflow or the peer down) is
  retried with backoff (1 s, 2 s ... 60 s) until it is applied or the bridge
  stops; the stream itself is reopened from the checkpoint after a failure.

``modelledger bridge status`` shows the checkpoint's block, the events applied
and the last error (:meth:`LedgerFollower.status`, in the receiver's ``/health``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from modelledger.mlops.bridge.concurrency import VersionLocks, fault_point
from modelledger.mlops.bridge.mlflow_api import is_prompt
from modelledger.mlops.bridge.outbox import backoff
from modelledger.mlops.bridge.outcomes import is_missing
from modelledger.mlops.bridge.tags import (
    ANCHORED_STATUSES,
    STATUS_CONFLICT,
    TAG_ALIASES_REMOVED,
    TAG_APPROVALS,
    TAG_DEPLOYMENTS,
    TAG_EVALUATION,
    TAG_STATUS,
    status_tag,
)
from modelledger.sdk.gateway.events import ChaincodeEvent, Checkpoint, FileCheckpointer
from modelledger.sdk.registry.client import NotFound
from modelledger.sdk.registry.records import unknown_fields
from modelledger.sdk.registry.statuses import REVOKED, decision_word

__all__ = [
    "FOLLOWED_EVENTS",
    "FollowerStatus",
    "LedgerFollower",
    "VersionMirror",
    "ledger_tags",
]

log = logging.getLogger("modelledger.bridge.follower")

# The events of a version's state change. ``ModelVersionRegistered`` is the anchoring worker's (it writes anchored).
FOLLOWED_EVENTS = frozenset(
    {
        "ModelVersionApproved",
        "ModelVersionRejected",
        "ModelVersionRevoked",
        "ModelVersionDeployed",
        "ModelVersionEvaluated",
    }
)

# Seconds one event stream stays open before it is reopened from the checkpoint (so that a stop is seen).
STREAM_WINDOW = 10.0
# The longest tag value MLflow's registry accepts (MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH).
MAX_REGISTRY_TAG_VALUE = 100_000


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _field(obj: Any, snake: str) -> Any:
    """A field of a record (dataclass) or of its raw JSON (dict, camelCase): the SDK may not know the field yet."""
    if isinstance(obj, dict):
        head, *rest = snake.split("_")
        return obj.get(head + "".join(p[:1].upper() + p[1:] for p in rest), obj.get(snake))
    return getattr(obj, snake, None)


def _evaluations(record: Any) -> list[Any]:
    """The version's evaluations (chaincode 1.4.0), from the record or, with an older SDK, from its raw JSON."""
    found = getattr(record, "evaluations", None)
    if found is None:
        found = unknown_fields(record).get("evaluations")
    return list(found or [])


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _evaluation_doc(ev: Any) -> dict[str, Any]:
    """``ledger.evaluation`` of one evaluation (spec: result word, metrics, policy version, evaluator ...)."""
    metrics = {str(_field(m, "key")): _field(m, "value") for m in (_field(ev, "metrics") or [])}
    policy = _field(ev, "policy")
    evaluator = _field(ev, "evaluator")
    doc = {
        "result": str(_field(ev, "result") or "").lower().replace("_", " "),
        "metrics": metrics,
        "policy_version": _field(policy, "version") if policy is not None else None,
        "evaluator": _field(evaluator, "msp_id") if evaluator is not None else "",
        "dataset_sha256": _field(ev, "dataset_sha256") or "",
        "run_id": _field(ev, "run_id") or "",
        "failures": list(_field(ev, "failures") or []),
        "tx": _field(ev, "tx_id") or "",
    }
    if len(_json(doc)) > MAX_REGISTRY_TAG_VALUE:  # 1000 metrics fit; a newer limit might not
        doc["metrics"] = {}
        doc["metrics_left_out"] = len(metrics)
    return doc


def ledger_tags(record: Any) -> dict[str, str]:
    """The tags a version's ledger record gives it, in writing order, without ``ledger.status`` (written last).

    ``ledger.approvals`` (sorted by organisation) and ``ledger.deployments``
    (in ledger order) always; ``ledger.evaluation`` (the latest) once there is one.
    """
    approvals = sorted(
        (
            {"org": a.msp_id, "decision": decision_word(a.decision), "time": a.time, "tx": a.tx_id}
            for a in record.approvals or []
        ),
        key=lambda a: a["org"],
    )
    deployments = [
        {"environment": d.environment, "endpoint": d.endpoint, "time": d.time, "tx": d.tx_id}
        for d in record.deployments or []
    ]
    tags = {TAG_APPROVALS: _json(approvals), TAG_DEPLOYMENTS: _json(deployments)}
    evaluations = _evaluations(record)
    if evaluations:
        tags[TAG_EVALUATION] = _json(_evaluation_doc(evaluations[-1]))
    return tags


# What applying one version did (for the log and the tests).
APPLIED = "applied"  # at least one tag written or alias removed
UNCHANGED = "unchanged"  # the tags already said it all (an event delivered again)
NOT_IN_MLFLOW = "not in MLflow"
NOT_READABLE = "not readable"
IN_CONFLICT = "conflict"
PROMPT = "prompt"


class VersionMirror:
    """Writes one version's ledger state onto its MLflow tags (see the module docstring).

    Args:
        mlflow: :class:`~modelledger.mlops.bridge.mlflow_api.MlflowApi` (or a fake with its methods).
        registry: The registry client, as the bridge's registrar identity.
        locks: The version locks shared with the anchoring workers.
        clock: The time written into ``ledger.aliases_removed`` (UTC, ISO 8601).
    """

    def __init__(self, mlflow: Any, registry: Any, locks: VersionLocks, clock: Callable[[], str] = _utc_now) -> None:
        self.mlflow, self.registry, self.locks, self.clock = mlflow, registry, locks, clock

    def apply(self, name: str, version: str) -> str:
        """Mirrors ``name``/``version``; returns what it did (``applied``, ``unchanged`` or why it skipped).

        Raises:
            Exception: MLflow or the ledger failed (the caller retries; nothing is skipped).
        """
        key = f"{name}/{version}"
        with self.locks.hold(name, version):
            try:
                mv = self.mlflow.get_model_version(name, version)
            except Exception as exc:
                if not is_missing(exc):
                    raise
                log.info("skipped: not in this MLflow (registered elsewhere)", extra={"version": key})
                return NOT_IN_MLFLOW
            if is_prompt(mv):
                return PROMPT
            try:
                record = self.registry.get_model_version(name, version)
            except NotFound:
                log.info("skipped: the bridge's identity may not read it on the ledger", extra={"version": key})
                return NOT_READABLE
            tags = dict(mv.tags or {})
            current = tags.get(TAG_STATUS, "")
            if current == STATUS_CONFLICT:
                log.warning("skipped: in conflict with the ledger's record", extra={"version": key})
                return IN_CONFLICT
            changed = False
            if record.status == REVOKED:
                changed = self._remove_aliases(name, str(version), tags)
            for tag, value in ledger_tags(record).items():
                if tags.get(tag) != value:
                    self.mlflow.set_model_version_tag(name, version, tag, value)
                    changed = True
            wanted = status_tag(record.status)
            if current in ANCHORED_STATUSES:
                if current != wanted:  # last: whoever sees it finds the other tags there
                    self.mlflow.set_model_version_tag(name, version, TAG_STATUS, wanted)
                    changed = True
            elif current != wanted:
                log.info(
                    "status left to anchoring",
                    extra={"version": key, "status": current or "(none)", "ledger": wanted},
                )
            return APPLIED if changed else UNCHANGED

    def _remove_aliases(self, name: str, version: str, tags: dict[str, str]) -> bool:
        """Removes every alias pointing at the revoked version; ``ledger.aliases_removed`` names them first.

        The tag is written before the aliases go, so a crash in between leaves a
        tag naming aliases still there, which the event's replay removes; an
        alias already named (removed before, and set again since) is not named twice.
        """
        pointing = sorted(a for a, v in self.mlflow.get_registered_model_aliases(name).items() if v == version)
        if not pointing:
            return False
        try:
            removed = json.loads(tags.get(TAG_ALIASES_REMOVED, "[]"))
            if not isinstance(removed, list):
                removed = []
        except ValueError:
            removed = []
        named = {r.get("alias") for r in removed if isinstance(r, dict)}
        new = [{"alias": a, "time": self.clock()} for a in pointing if a not in named]
        if new:
            value = _json(removed + new)
            self.mlflow.set_model_version_tag(name, version, TAG_ALIASES_REMOVED, value)
            tags[TAG_ALIASES_REMOVED] = value
        for alias in pointing:
            try:
                self.mlflow.delete_registered_model_alias(name, alias)
            except Exception as exc:
                if not is_missing(exc):
                    raise
            log.info("alias removed from a revoked version", extra={"version": f"{name}/{version}", "alias": alias})
        return True


@dataclass
class FollowerStatus:
    """What ``bridge status`` shows of the follower."""

    block: int | None = None  # the checkpoint's block: events up to its transaction there are handled (None: none)
    applied: int = 0  # events applied since the bridge started (including replays that wrote nothing)
    skipped: int = 0  # events of versions this bridge does not mirror (not in MLflow, not readable ...)
    last_error: str = ""  # the last failure to apply an event or to read the stream (kept after recovery)
    last_error_at: str = ""
    retrying: bool = False  # an event is failing now and being retried

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _version_of(event: ChaincodeEvent) -> tuple[str, str]:
    """The name and version a ``ModelVersion*`` event names (read from its JSON: 1.4.0's events included).

    Raises:
        ValueError: The payload is not such an event's.
    """
    doc = json.loads(event.payload)
    if not isinstance(doc, dict) or not doc.get("name") or not doc.get("version"):
        raise ValueError(f"event {event.name} of transaction {event.transaction_id} names no model version")
    return str(doc["name"]), str(doc["version"])


# Opens the chaincode's event stream after a checkpoint (None: from the first block).
EventSource = Callable[[Checkpoint | None], Iterator[ChaincodeEvent]]


class LedgerFollower:
    """Follows the chaincode's events and applies each to MLflow, checkpointing after it (module docstring).

    Args:
        mirror: Applies one version.
        events: Opens the event stream after a checkpoint (it may end; it is reopened).
        checkpointer: The durable checkpoint.
        sleep_cap: The longest wait between two tries of a failing event or stream, in seconds.
    """

    def __init__(
        self, mirror: VersionMirror, events: EventSource, checkpointer: FileCheckpointer, sleep_cap: float = 60.0
    ) -> None:
        self.mirror, self.events, self.checkpointer = mirror, events, checkpointer
        self.sleep_cap = sleep_cap
        self._status = FollowerStatus(block=self._block())
        self._lock = threading.Lock()

    def _block(self) -> int | None:
        cp = self.checkpointer.checkpoint
        return None if cp is None else cp.block_number

    def status(self) -> dict[str, Any]:
        """The follower now (for ``/health`` and ``bridge status``)."""
        with self._lock:
            return self._status.to_dict()

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            self._status.last_error, self._status.last_error_at = _first_line(exc), _utc_now()
            self._status.retrying = True

    def _wait(self, stop: threading.Event, tries: int) -> None:
        stop.wait(min(self.sleep_cap, backoff(tries)))

    def run(self, stop: threading.Event) -> None:
        """Until ``stop`` is set: reads the stream from the checkpoint, applies each event, checkpoints it."""
        tries = 0
        while not stop.is_set():
            try:
                for event in self.events(self.checkpointer.checkpoint):
                    if not self.handle(event, stop):
                        return  # stopped while retrying the event: not checkpointed, applied again next time
                    tries = 0
                    if stop.is_set():
                        return
            except Exception as exc:  # the peer down, the stream broken: reopened from the checkpoint
                tries += 1
                self._failed(exc)
                log.warning("ledger events unavailable", extra={"reason": _first_line(exc), "attempt": tries})
                self._wait(stop, tries)

    def handle(self, event: ChaincodeEvent, stop: threading.Event) -> bool:
        """Applies one event (retrying until it is applied), then checkpoints it; False if ``stop`` came first."""
        tries = 0
        while event.name in FOLLOWED_EVENTS:
            try:
                outcome = self.mirror.apply(*_version_of(event))
                break
            except Exception as exc:
                tries += 1
                self._failed(exc)
                log.warning(
                    "cannot mirror a ledger event yet",
                    extra={
                        "event": event.name,
                        "tx_id": event.transaction_id,
                        "reason": _first_line(exc),
                        "attempt": tries,
                    },
                )
                self._wait(stop, tries)
                if stop.is_set():
                    return False
        else:
            outcome = ""
        if outcome:
            fault_point("follower-after-apply")  # a crash test: applied, not yet checkpointed
        self.checkpointer.checkpoint_event(event)
        with self._lock:
            s = self._status
            s.block, s.retrying = self._block(), False
            if outcome in (APPLIED, UNCHANGED):
                s.applied += 1
            elif outcome:
                s.skipped += 1
        if outcome:
            log.info(
                "ledger event mirrored",
                extra={
                    "event": event.name,
                    "block": event.block_number,
                    "tx_id": event.transaction_id,
                    "outcome": outcome,
                },
            )
        return True

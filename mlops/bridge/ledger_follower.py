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
  are written from it (:func:`~modelledger.mlops.bridge.ledger_mirror.mirror_record`),
  each only if its value differs, ``ledger.status`` last: an event delivered
  again (the bridge died between applying it and its checkpoint:
  at-least-once) writes nothing, and events out of order are harmless (each
  write is the state now).
- **Anchored versions only.** A version whose ``ledger.status`` is not yet
  ``anchored`` or a later ledger status (pending, failed, conflict, no tag) is
  left to the anchoring worker, which writes the same tags from the record it
  reads when it tags the version anchored: until anchoring has compared the
  record with MLflow's bytes, the record may not be this version's (a
  conflict, a name another organisation owns). Both read the record and write
  while holding the version's lock
  (:class:`~modelledger.mlops.bridge.concurrency.VersionLocks`), so the later
  write is from the later read, whichever of them comes first.
- **Revocation.** Every MLflow alias that points at a revoked version is
  removed, after ``ledger.aliases_removed`` names it (with the time), and before
  ``ledger.status=revoked``: a version tagged revoked keeps no alias.
- **An alias set later.** An alias set on a version after its revocation
  (MLflow's ``model_version_alias.created`` webhook, or the reconciler's scan)
  is removed by :meth:`VersionMirror.remove_aliases_if_revoked`: the same
  read-then-write under the same lock, acting only if the ledger says REVOKED
  (:mod:`~modelledger.mlops.bridge.alias_guard`).
- **Skipped, with a log line**: a version MLflow does not have (registered
  elsewhere), a version the bridge's identity may not read (the chaincode
  answers NOT_FOUND: another organisation's model, not granted), a version
  not anchored yet, a prompt.
- **Retried, then dead-lettered, never lost**: an event it failed to apply
  for a transient reason (MLflow or the peer down: connection errors, gRPC
  UNAVAILABLE/DEADLINE_EXCEEDED, HTTP 5xx/429:
  :func:`~modelledger.mlops.bridge.errors.is_transient`) is retried with
  backoff (1 s, 2 s ... 60 s), ``tries`` times at most; one that failed for a
  permanent reason (a payload or record that cannot be parsed, an HTTP 4xx
  such as 403) is not retried. Either is then written to the durable
  dead-letter list (:mod:`~modelledger.mlops.bridge.dead_letters`) and only
  then checkpointed, so one bad event does not stop the ones after it; the
  reconciler's scan re-mirrors each dead-lettered version from its ledger
  record and clears it when that works. While the list is full, a failing
  event is retried until it is applied or the bridge stops (nothing is
  dropped). The stream itself is reopened from the checkpoint after a failure.

``modelledger bridge status`` shows the checkpoint's block, the events applied,
the last error and the dead letters (:meth:`LedgerFollower.status`, in the
receiver's ``/health``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from modelledger.mlops.bridge.concurrency import VersionLocks, fault_point
from modelledger.mlops.bridge.dead_letters import DEAD_LETTERS_SHOWN, DeadLetters
from modelledger.mlops.bridge.errors import is_transient
from modelledger.mlops.bridge.ledger_mirror import mirror_record, remove_aliases, utc_now
from modelledger.mlops.bridge.mlflow_api import is_missing, is_prompt
from modelledger.mlops.bridge.outbox import backoff
from modelledger.mlops.bridge.tags import ANCHORED_STATUSES, TAG_STATUS
from modelledger.sdk.gateway.events import ChaincodeEvent, Checkpoint, FileCheckpointer
from modelledger.sdk.registry.client import NotFound
from modelledger.sdk.registry.statuses import REVOKED

__all__ = ["FOLLOWED_EVENTS", "FollowerProgress", "LedgerFollower", "VersionMirror"]

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


# What applying one version did (for the log and the tests).
APPLIED = "applied"  # at least one tag written or alias removed
UNCHANGED = "unchanged"  # the tags already said it all (an event delivered again)
NOT_IN_MLFLOW = "not in MLflow"
NOT_READABLE = "not readable"
NOT_ANCHORED = "not anchored"  # the anchoring worker writes the record's tags when it anchors the version
PROMPT = "prompt"
NOT_REVOKED = "not revoked"  # an alias check of a version the ledger has not revoked: nothing written
DEAD_LETTERED = "dead-lettered"  # could not be applied: in the dead-letter list, for the reconciler to re-mirror

# Tries of an event failing for a transient reason before it is dead-lettered (backoff 1, 2 ... 60 s: ~8 min).
EVENT_TRIES = 12


class VersionMirror:
    """Writes one version's ledger state onto its MLflow tags (see the module docstring).

    Args:
        mlflow: :class:`~modelledger.mlops.bridge.mlflow_api.MlflowApi` (or a fake with its methods).
        registry: The registry client, as the bridge's registrar identity.
        locks: The version locks shared with the anchoring workers.
        clock: The time written into ``ledger.aliases_removed`` (UTC, ISO 8601).
    """

    def __init__(self, mlflow: Any, registry: Any, locks: VersionLocks, clock: Callable[[], str] = utc_now) -> None:
        self.mlflow, self.registry, self.locks, self.clock = mlflow, registry, locks, clock

    def apply(self, name: str, version: str) -> str:
        """Mirrors ``name``/``version``; returns what it did (``applied``, ``unchanged`` or why it skipped).

        Raises:
            Exception: MLflow or the ledger failed (the caller retries; nothing is skipped).
        """
        return self._mirror(name, version, revoked_only=False)

    def remove_aliases_if_revoked(self, name: str, version: str) -> str:
        """An alias was set on ``name``/``version``: if the ledger says REVOKED, mirrors it as :meth:`apply` does.

        The same step as a revocation event's, under the same lock: the aliases
        pointing at the version are named in ``ledger.aliases_removed`` and
        removed, and the record's tags written. It acts on the ledger's REVOKED
        whatever ``ledger.status`` says: a version not tagged anchored (pending,
        failed, conflict, no tag) loses its aliases too, but its other tags are
        left to anchoring. Any other ledger status (or a version not in MLflow,
        not readable, a prompt's) changes nothing.

        Raises:
            Exception: MLflow or the ledger failed (the caller retries, or leaves it to the reconciler).
        """
        return self._mirror(name, version, revoked_only=True)

    def _mirror(self, name: str, version: str, revoked_only: bool) -> str:
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
            tags = dict(mv.tags or {})
            current = tags.get(TAG_STATUS, "")
            anchored = current in ANCHORED_STATUSES
            if not anchored and not revoked_only:  # pending, failed, conflict or untagged: anchoring's to tag
                log.info("left to anchoring: not anchored yet", extra={"version": key, "status": current or "(none)"})
                return NOT_ANCHORED
            try:
                record = self.registry.get_model_version(name, version)
            except NotFound:
                log.info("skipped: the bridge's identity may not read it on the ledger", extra={"version": key})
                return NOT_READABLE
            if revoked_only and record.status != REVOKED:
                return NOT_REVOKED
            if not anchored:  # revoked on the ledger, whatever the tag says: no alias; the other tags are anchoring's
                log.info("revoked on the ledger, not tagged anchored: aliases only", extra={"version": key})
                return APPLIED if remove_aliases(self.mlflow, name, str(version), tags, self.clock) else UNCHANGED
            changed = mirror_record(self.mlflow, name, version, record, tags, self.clock)
            return APPLIED if changed else UNCHANGED


@dataclass
class FollowerProgress:
    """The follower's progress and last error: counters the bridge's one ServerStatus carries in its details
    (``bridge status``); not a status type of its own."""

    block: int | None = None  # the checkpoint's block: events up to its transaction there are handled (None: none)
    applied: int = 0  # events applied since the bridge started (including replays that wrote nothing)
    skipped: int = 0  # events of versions this bridge does not mirror (not in MLflow, not readable ...)
    last_error: str = ""  # the last failure to apply an event or to read the stream (kept after recovery)
    last_error_at: str = ""
    retrying: bool = False  # an event is failing now and being retried
    dead_lettered: int = 0  # events moved past into the dead-letter list since the bridge started
    dead_letters_full: bool = False  # the list is full: a failing event is retried, not moved past

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
        dead: The dead-letter list (None: a failing event is retried until it is applied).
        tries: Tries of an event failing for a transient reason before it is dead-lettered.
    """

    def __init__(
        self,
        mirror: VersionMirror,
        events: EventSource,
        checkpointer: FileCheckpointer,
        sleep_cap: float = 60.0,
        dead: DeadLetters | None = None,
        tries: int = EVENT_TRIES,
    ) -> None:
        self.mirror, self.events, self.checkpointer = mirror, events, checkpointer
        self.sleep_cap, self.dead, self.tries = sleep_cap, dead, tries
        self._status = FollowerProgress(block=self._block())
        self._lock = threading.Lock()

    def _block(self) -> int | None:
        cp = self.checkpointer.checkpoint
        return None if cp is None else cp.block_number

    def status(self) -> dict[str, Any]:
        """The follower now (for ``/health`` and ``bridge status``)."""
        with self._lock:
            out = self._status.to_dict()
        if self.dead is not None:
            entries = self.dead.entries()
            out["dead_letters"] = len(entries)
            out["dead_letters_shown"] = entries[:DEAD_LETTERS_SHOWN]
            if self.dead.shown_set_aside():
                out["dead_letters_set_aside"] = self.dead.shown_set_aside()
        return out

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            self._status.last_error, self._status.last_error_at = _first_line(exc), utc_now()
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
            name = version = ""
            try:
                name, version = _version_of(event)
                outcome = self.mirror.apply(name, version)
                break
            except Exception as exc:
                tries += 1
                self._failed(exc)
                if self._dead_letter(event, name, version, exc, tries):
                    outcome = DEAD_LETTERED
                    break
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
            elif outcome == DEAD_LETTERED:
                s.dead_lettered += 1
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

    def _dead_letter(self, event: ChaincodeEvent, name: str, version: str, exc: Exception, tries: int) -> bool:
        """Writes a failing event to the dead-letter list if its failure is permanent or it ran out of tries."""
        permanent = not is_transient(exc)
        if self.dead is None or not (permanent or tries >= self.tries):
            return False
        added = self.dead.add(name, version, event, _first_line(exc))
        with self._lock:
            self._status.dead_letters_full = not added
        if not added:
            log.error(
                "dead-letter list full: retrying the event", extra={"event": event.name, "tx_id": event.transaction_id}
            )
            return False
        log.error(
            "ledger event dead-lettered: the reconciler re-mirrors the version",
            extra={
                "event": event.name,
                "tx_id": event.transaction_id,
                "version": f"{name}/{version}" if name else "(none)",
                "reason": _first_line(exc),
                "permanent": permanent,
                "attempt": tries,
            },
        )
        return True

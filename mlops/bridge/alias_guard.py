"""A revoked version keeps no MLflow alias, also when one is set on it after its revocation.

The ledger follower removes a version's aliases when its revocation event
arrives; a data scientist may set one again later. Two paths remove it, both
through :meth:`~modelledger.mlops.bridge.ledger_follower.VersionMirror.remove_aliases_if_revoked`
(the follower's read-the-ledger-then-write step, under the same version lock,
acting only if the ledger says REVOKED):

- **Fast, not durable:** MLflow's ``model_version_alias.created`` webhook. The
  receiver hands the version to :class:`AliasChecks` (in memory, never
  blocking its answer on the ledger) and answers 202; one thread checks it
  within a second, retrying a failure with backoff a few times.
- **Durable:** the reconciler's scan (:func:`unalias_revoked`), at the
  bridge's start and every ``reconcile_seconds``: every version the ledger
  says REVOKED that MLflow holds, with an alias pointing at it, is checked.
  It needs no delivery, so an alias whose webhook was lost, or acknowledged
  by a bridge that crashed before the check, is removed by the next scan.

So an alias set on a revoked version stays for about a second while the
bridge, MLflow and the peer are up, and at most about one reconciler period
(30 s by default) plus a scan otherwise, once they are back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from modelledger.mlops.bridge.ledger_follower import APPLIED
from modelledger.mlops.bridge.outbox import backoff

__all__ = ["AliasCheck", "AliasChecks", "unalias_revoked"]

log = logging.getLogger("modelledger.bridge.aliases")

# (name, version) -> what the check did (VersionMirror.remove_aliases_if_revoked's outcome).
AliasCheck = Callable[[str, str], str]


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class AliasChecks:
    """Versions an alias was just set on, checked by one thread (see the module docstring).

    Args:
        check: The check of one version (``VersionMirror.remove_aliases_if_revoked``).
        max_pending: Versions waiting at most; more are left to the reconciler (a flood of deliveries).
        tries: Tries of a failing check before it is left to the reconciler.
        clock: Monotonic seconds (tests move it).
    """

    def __init__(
        self,
        check: AliasCheck,
        max_pending: int = 10_000,
        tries: int = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.check, self.max_pending, self.tries, self.clock = check, max_pending, tries, clock
        self._cv = threading.Condition()
        self._due: dict[tuple[str, str], tuple[float, int]] = {}  # version -> (when, failed tries)

    def submit(self, name: str, version: str) -> bool:
        """Queues a check of ``name``/``version`` (at once, never blocking); False if left to the reconciler."""
        key = (name, str(version))
        with self._cv:
            if key not in self._due:
                if len(self._due) >= self.max_pending:
                    log.warning(
                        "alias check left to the reconciler: too many pending", extra={"version": f"{name}/{version}"}
                    )
                    return False
                self._due[key] = (self.clock(), 0)
            self._cv.notify()
        return True

    def pending(self) -> int:
        """Versions waiting for their check."""
        with self._cv:
            return len(self._due)

    def run(self, stop: threading.Event) -> None:
        """Until ``stop`` is set: checks each due version, one at a time."""
        while not stop.is_set():
            self.run_once(wait=1.0)

    def run_once(self, wait: float = 0.0) -> bool:
        """Checks the next due version (waiting up to ``wait`` seconds for one); False if none was due."""
        with self._cv:
            key = self._next_due()
            if key is None and wait > 0:
                self._cv.wait(timeout=wait)
                key = self._next_due()
            if key is None:
                return False
            _, failed = self._due.pop(key)
        name, version = key
        try:
            outcome = self.check(name, version)
        except Exception as exc:  # MLflow or the peer down: retried, then the reconciler's
            failed += 1
            if failed < self.tries:
                with self._cv:
                    self._due.setdefault(key, (self.clock() + backoff(failed), failed))
                log.warning(
                    "alias check failed; retrying",
                    extra={"version": f"{name}/{version}", "reason": _reason(exc), "attempt": failed},
                )
            else:
                log.warning(
                    "alias check left to the reconciler",
                    extra={"version": f"{name}/{version}", "reason": _reason(exc), "attempt": failed},
                )
            return True
        log.info("alias set on a version checked", extra={"version": f"{name}/{version}", "outcome": outcome})
        return True

    def _next_due(self) -> tuple[str, str] | None:
        now = self.clock()
        due = [(when, key) for key, (when, _) in self._due.items() if when <= now]
        return min(due)[1] if due else None


def unalias_revoked(mlflow: Any, revoked: Iterable[tuple[str, str]], check: AliasCheck) -> list[str]:
    """The reconciler's pass: each revoked version an MLflow alias points at is checked; returns those it changed.

    Args:
        mlflow: :class:`~modelledger.mlops.bridge.mlflow_api.MlflowApi` (``get_registered_model_aliases``).
        revoked: The versions the ledger says REVOKED that this MLflow holds.
        check: ``VersionMirror.remove_aliases_if_revoked`` (it reads the ledger again, under the version's lock).

    A model's aliases are read once; a failure is logged and left to the next scan.
    """
    by_model: dict[str, set[str]] = defaultdict(set)
    for name, version in revoked:
        by_model[name].add(str(version))
    changed: list[str] = []
    for name in sorted(by_model):
        try:
            pointed = sorted({v for v in mlflow.get_registered_model_aliases(name).values() if v in by_model[name]})
            for version in pointed:
                if check(name, version) == APPLIED:
                    changed.append(f"{name}/{version}")
        except Exception as exc:
            log.warning("alias scan of a model failed; next scan", extra={"model": name, "reason": _reason(exc)})
    return changed

"""The bridge's threads: anchoring workers that lease outbox jobs and keep their leases alive, and the reconciler.

A worker is named ``host:pid:start time:index``, so that a restarted bridge
can tell the leases of its dead predecessor (:func:`owner_alive`) and take
their jobs over at once instead of waiting for the leases to expire.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from modelledger.mlops.bridge.alias_guard import AliasCheck
from modelledger.mlops.bridge.anchor import Anchorer
from modelledger.mlops.bridge.dead_letters import DeadLetters
from modelledger.mlops.bridge.outbox import Job, LeaseLostError, Outbox
from modelledger.mlops.bridge.reconciler import reconcile
from modelledger.runtime.processes import process_start_time
from modelledger.sdk.registry.client import RegistryClient

log = logging.getLogger("modelledger.bridge")


def worker_owner(index: int) -> str:
    """The lease owner name of this process's worker ``index``: ``host:pid:start time:index``."""
    return f"{socket.gethostname()}:{os.getpid()}:{process_start_time(os.getpid())}:{index}"


def owner_alive(owner: str) -> bool:
    """Whether the worker that holds a lease still runs: owners are ``host:pid:start time:worker``.

    Owners on other hosts are assumed alive (their leases expire on their own).
    """
    parts = owner.split(":")
    if len(parts) != 4 or parts[0] != socket.gethostname():
        return True
    try:
        pid = int(parts[1])
    except ValueError:
        return True
    return str(process_start_time(pid)) == parts[2]


def work(
    anchorer: Anchorer,
    outbox: Outbox,
    wake: threading.Event,
    stop: threading.Event,
    owner: str,
    lease_seconds: float,
) -> None:
    """Leases and processes jobs until ``stop`` is set, sleeping until ``wake`` or the next job is due."""
    while not stop.is_set():
        try:
            job = outbox.lease(owner, lease_seconds)
        except Exception:
            log.exception("outbox unavailable")
            stop.wait(1.0)
            continue
        if job is None:
            due = outbox.next_due()
            delay = 1.0 if due is None else max(0.05, min(1.0, due - time.time()))
            wake.wait(delay)
            wake.clear()
            continue
        t0 = time.perf_counter()
        beat = threading.Event()
        heart = threading.Thread(target=heartbeat, args=(outbox, job, beat, lease_seconds), daemon=True)
        heart.start()
        try:
            state = anchorer.process(job)
        except Exception:  # a bug or a broken outbox: this thread keeps serving; the lease expires
            log.exception("worker error", extra={"job": job.key})
            stop.wait(1.0)
            continue
        finally:
            beat.set()
            heart.join()
        log.info("job", extra={"job": job.key, "state": state, "seconds": round(time.perf_counter() - t0, 3)})


def heartbeat(outbox: Outbox, job: Job, done: threading.Event, lease_seconds: float) -> None:
    """Renews the job's lease every third of its length while the worker is busy with it."""
    period = lease_seconds / 3
    while not done.wait(period):
        try:
            outbox.renew(job, lease_seconds)
        except LeaseLostError:
            return
        except Exception as exc:
            log.warning("lease renewal failed", extra={"job": job.key, "reason": str(exc)})


def reconcile_loop(
    client: Any,
    registry: RegistryClient,
    outbox: Outbox,
    wake: threading.Event,
    stop: threading.Event,
    period: float,
    freshness: float,
    check_aliases: AliasCheck | None = None,
    dead_letters: tuple[DeadLetters, Callable[[str, str], str]] | None = None,
) -> None:
    """Every ``period`` seconds until ``stop``: reconciles the registry with the ledger and prunes old deliveries.

    With ``check_aliases``, each scan also removes the aliases of versions the ledger revoked; with
    ``dead_letters`` (the follower's list and ``VersionMirror.apply``), it re-mirrors the versions dead-lettered.
    """
    while not stop.is_set():
        try:
            report = reconcile(client, registry, outbox, check_aliases, dead_letters)
            outbox.prune_deliveries(time.time() - 2 * freshness)
            if report.enqueued or report.revived:
                wake.set()
            log.info(
                "reconciled",
                extra={
                    "scanned": report.scanned,
                    "enqueued": len(report.enqueued),
                    "revived": len(report.revived),
                    "conflicts": len(report.conflicts),
                    "unaliased": len(report.unaliased),
                    "remirrored": len(report.remirrored),
                    "full_pass": report.full_pass,
                },
            )
        except Exception as exc:
            log.warning(
                "reconcile failed", extra={"reason": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
            )
        stop.wait(period)

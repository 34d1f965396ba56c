"""The anchoring worker: one outbox job in, one VALID ledger record and its MLflow tags out.

Steps of a job (each durable result is checkpointed in the outbox, so a job
taken over after a crash resumes where it stopped):

0. re-read the version from the registry (the webhook was only a hint) and,
   at the same time, ask the ledger and locate the files; if the ledger
   already holds the version, skip to step 5;
1. fetch the artifacts (allowlisted URI, read from MLflow's bucket when it is
   on this stack's S3, into a private temporary folder); meanwhile read the
   run and the logged model and, once the files are located, tag the version ``pending``;
2-4. digest and copy to the anchored bucket in one pass while the run's
   datasets are registered and the model-signing bundle is made (the bridge's
   registrar identity); checkpoint the pointer, manifest and provenance;
5. a record already on the ledger is compared with what MLflow holds
   (:mod:`~modelledger.mlops.bridge.ledger_comparison`): tagged ``anchored``
   if it matches, ``conflict`` if not;
6. ``RegisterModelVersion`` through the Gateway, endorsed by every
   organisation; checkpoint the transaction id; wait for its commit status
   (only VALID counts) while ``ledger.tx_id``, ``model.digest`` and
   ``storage.uri`` are written;
7. ``ledger.block``, then ``ledger.status=anchored`` last
   (:mod:`~modelledger.mlops.bridge.outcomes`).

Every request made beside the main line is awaited before the job's outcome
is recorded, so no tag of an attempt lands after it
(:mod:`~modelledger.mlops.bridge.concurrency`).

A resubmitted registration is harmless: identical re-registration is
idempotent in the chaincode. Refusals (INVALID, NOT_AUTHORIZED, CONFLICT), a
source outside the allowlist, an unsafe model tree or a version missing from
the registry are permanent: the job is dead at once and the version tagged
``ledger.status=failed`` with ``ledger.error`` (the tags of a registration in
flight removed). Anything else (a peer, S3 or
MLflow unreachable) is retried with backoff, the version staying ``pending``
with the last error in ``ledger.error``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from modelledger.mlops.bridge.anchor_parts import AnchorParts, StepClock
from modelledger.mlops.bridge.artifacts import SourceRefusedError
from modelledger.mlops.bridge.concurrency import UntilRefused, all_done, fault_point, spawn
from modelledger.mlops.bridge.dataset_claims import register_datasets
from modelledger.mlops.bridge.errors import NotAModelError, NotReadyError, PermanentError
from modelledger.mlops.bridge.ledger_comparison import Held, disagreement
from modelledger.mlops.bridge.mlflow_api import RunReadOnce, is_prompt
from modelledger.mlops.bridge.outbox import Job, LeaseLostError, Outbox
from modelledger.mlops.bridge.outcomes import MAX_TAG_TEXT, Outcomes, is_missing, storage_uri
from modelledger.mlops.bridge.provenance import (
    collect,
    ledger_name,
    provenance_doc,
    provenance_records,
    read_sources,
)
from modelledger.mlops.bridge.tags import STATUS_PENDING, TAG_DIGEST, TAG_NOTE, TAG_STATUS, TAG_STORAGE, TAG_TX
from modelledger.mlops.bridge.version_files import locate_files, version_files
from modelledger.mlops.store.digest import Manifest, ModelTreeError, digest_files
from modelledger.mlops.store.index import StoragePointer
from modelledger.mlops.store.ledger_records import ledger_pointer, version_input
from modelledger.mlops.store.source import SourceError
from modelledger.sdk.gateway.errors import CommitError
from modelledger.sdk.ledger.queries import block_number_of
from modelledger.sdk.registry.client import Conflict, Invalid, NotAuthorized, NotFound
from modelledger.sdk.registry.names import InvalidNameError
from modelledger.sdk.registry.records import ModelVersion as LedgerModelVersion
from modelledger.sdk.registry.records import from_json

__all__ = ["Anchorer"]

log = logging.getLogger("modelledger.bridge.anchor")

# Where a version's files are: their allowlisted URI and the S3 client to read it with (None: through MLflow).
Located = Future[tuple[str, Any | None]]


@dataclasses.dataclass(frozen=True)
class _JobReads:
    """One job's reads, passed along its steps (an Anchorer keeps no state of the job it runs)."""

    mlflow: RunReadOnce  # the run is read once: for where the files are, for the provenance and the comparison
    located: Located | None  # None: not located (the files' copy is checkpointed already)


class _OnLedger(Exception):
    """The ledger holds the version already: it is only tagged (raised by the reads, caught by the job)."""

    def __init__(self, mv: Any, record: Any) -> None:
        super().__init__(f"{mv.name}/{mv.version} is on the ledger")
        self.mv, self.record = mv, record


class Anchorer:
    """Processes outbox jobs (one at a time per instance; run several instances for parallelism)."""

    def __init__(self, parts: AnchorParts, outbox: Outbox, lease_seconds: float) -> None:
        self.parts = parts
        self.outbox = outbox
        self.lease_seconds = lease_seconds
        # MLflow and ledger requests that run beside the job's main line (reads, tags).
        self._side = ThreadPoolExecutor(4, thread_name_prefix="anchor-side")
        self.outcomes = Outcomes(parts, outbox, self._side)

    # ------------------------------------------------------------------ the job
    def process(self, job: Job) -> str:
        """Runs one leased job to done, retry or dead; returns the job's new state."""
        o = self.outcomes
        try:
            return self._run(job)
        except LeaseLostError:
            log.warning("lease lost", extra={"job": job.key})
            return "lost"
        except NotAModelError as exc:
            return o.dead(job, str(exc), tag=False)
        except PermanentError as exc:
            return o.dead(job, str(exc))
        except (Invalid, NotAuthorized, Conflict) as exc:
            return o.dead(job, f"the ledger refused the registration: {exc}")
        except (SourceRefusedError, ModelTreeError) as exc:
            return o.dead(job, str(exc))
        except NotReadyError as exc:
            return o.retry(job, str(exc), tag=False)
        except Exception as exc:  # anything else is worth retrying: a node, S3 or MLflow down
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            return o.retry(job, reason, tag=True)

    def _run(self, job: Job) -> str:
        background: list[Future[Any]] = []
        try:
            return self._steps(job, background)
        finally:
            # Nothing of this job may still be writing once its outcome is recorded (process → retry/dead).
            futures_wait(background)

    def _spawn(self, background: list[Future[Any]], fn: Any, *args: Any) -> Future[Any]:
        """Runs ``fn(*args)`` beside the job's main line; ``_run`` waits for it before the job ends."""
        return spawn(self._side, background, fn, *args)

    def _steps(self, job: Job, background: list[Future[Any]]) -> str:
        """Steps 0-4 (reads, then fetch, digest, sign and copy), then 5-7; or compare and tag if on the ledger."""
        clock = StepClock()
        mlflow = RunReadOnce(self.parts.mlflow)
        # The reads at once: the version, the ledger, and where the files are (wasted only if on the ledger).
        version = self._spawn(background, self._model_version, job)
        on_ledger = self._spawn(background, self._on_ledger, job)
        located = (
            self._spawn(background, locate_files, self.parts, mlflow, job.name, job.version)
            if "pointer" not in job.checkpoint
            else None
        )
        reads = _JobReads(mlflow, located)
        due = self._spawn(background, self._due, version, on_ledger)
        # A version its webhook has just announced is all but never on the ledger yet: its files are
        # fetched and copied while the reads finish. If the reads refuse it after all (on the ledger,
        # gone, not ready, a prompt's), the copy stops at its next read, before any signature or index.
        speculate = located is not None and job.origin == "webhook" and job.attempts <= 1 and job.revivals == 0
        try:
            if not speculate:
                due.result()
                clock.lap("read")
            # The pending tag is written while the files are fetched; it must land before any later tag.
            pending = self._spawn(background, self._pending, job, due, located)
            if located is not None:
                try:
                    job = self._upload(job, due, clock, *located.result(), background, mlflow)
                except Exception:
                    due.result()  # a refusal by the reads explains more than the copy that went ahead of them
                    raise
                fault_point("after-upload")
            mv = due.result()
            pending.result()
        except _OnLedger as on:
            return self._already_on_ledger(job, on.mv, on.record, reads, background)
        return self._register(job, mv, reads, clock, background)

    # ------------------------------------------------------------------ 0. the reads
    def _model_version(self, job: Job) -> Any:
        try:
            mv = self.parts.mlflow.get_model_version(job.name, job.version)
        except Exception as exc:
            if is_missing(exc):
                raise PermanentError(f"model version {job.name}/{job.version} is not in the MLflow registry") from exc
            raise
        if is_prompt(mv):
            raise NotAModelError(f"{job.key} is a version of an MLflow prompt, not a model: prompts are not anchored")
        try:
            ledger_name(mv)
        except InvalidNameError as exc:
            raise PermanentError(f"{job.key} cannot be anchored: the ledger refuses its {exc}") from exc
        status = str(getattr(mv, "status", "READY"))
        if status.endswith("FAILED_REGISTRATION"):
            raise PermanentError(f"MLflow failed to register {job.key}")
        if not status.endswith("READY"):
            raise NotReadyError(f"{job.key} is {status} in MLflow")
        return mv

    def _on_ledger(self, job: Job) -> Any | None:
        try:
            return self.parts.registry.get_model_version(job.name, job.version)
        except NotFound:
            return None

    def _due(self, version: Future[Any], on_ledger: Future[Any | None]) -> Any:
        """The version, if it is to be registered now; raises _OnLedger if the ledger holds it already."""
        mv = version.result()
        record = on_ledger.result()
        if record is not None:
            raise _OnLedger(mv, record)
        return mv

    def _pending(self, job: Job, due: Future[Any], located: Located | None) -> None:
        mv = due.result()
        # Not while the files are being located: MLflow (one worker process) answers those reads first.
        futures_wait([located] if located is not None else [])
        if mv.tags.get(TAG_STATUS) != STATUS_PENDING:
            self.outcomes.tags(job, {TAG_STATUS: STATUS_PENDING})

    # ------------------------------------------------------------------ 1-4. fetch, digest, sign, copy
    def _upload(
        self,
        job: Job,
        due: Future[Any],
        clock: StepClock,
        uri: str,
        s3: Any | None,
        background: list[Future[Any]],
        mlflow: RunReadOnce,
    ) -> Job:
        """Fetches the files and digests, signs and copies them in one pass; checkpoints what the copy produced."""
        p = self.parts
        clock.lap("locate")
        # model-signing takes ~0.3 s to import: only the worker that signs pays for it, not every CLI call.
        from modelledger.mlops.store.signing import sign_manifest

        # The run and the logged model are read while the files are listed and copied.
        sources = self._spawn(background, lambda: read_sources(mlflow, due.result()))
        with tempfile.TemporaryDirectory(prefix="modelledger-anchor-", dir=p.scratch) as tmp:
            bundle = Path(tmp) / "model.sig.json"

            def sign(manifest: Manifest) -> Path:
                # A copy that went ahead of the reads stops here if they refuse it: no bundle, no index.
                due.result()
                # The digests of the bytes just read and stored are what is signed (no second read).
                name = PurePosixPath(urlparse(uri).path).name or job.name
                sign_manifest(manifest, bundle, p.signing.key, p.signing.certificate, p.signing.chain, name)
                return bundle

            try:
                with version_files(job.key, uri, s3, Path(tmp), p.tracking_uri) as (files, folder, skipped):
                    clock.lap("fetch")
                    # Only a sound model tree gets its datasets on the ledger: registered while the files upload.
                    with ThreadPoolExecutor(1, thread_name_prefix="anchor-datasets") as beside:
                        datasets = beside.submit(lambda: register_datasets(p.registry, sources.result()[0]))
                        gated = [UntilRefused(f, due) for f in files]
                        result = p.uploader.upload_files(gated, uri, bundle=sign, progress=False)
                        clock.lap("upload")
                        dataset_notes = datasets.result()
                    run, logged = sources.result()
                    prov = collect(due.result(), run, logged, folder())
                    prov = dataclasses.replace(prov, notes=(*prov.notes, *skipped, *dataset_notes))
            except SourceError as exc:
                raise RuntimeError(str(exc)) from exc
        if prov.notes:
            self.outcomes.tags(job, {TAG_NOTE: "; ".join(prov.notes)[:MAX_TAG_TEXT]})
        job = self.outbox.checkpoint(
            job,
            self.lease_seconds,
            pointer=result.pointer.to_json(),
            manifest=result.manifest.to_json(),
            provenance=provenance_doc(prov),
        )
        clock.lap("provenance")
        return job

    # ------------------------------------------------------------------ 5. a record already on the ledger
    def _already_on_ledger(
        self, job: Job, mv: Any, record: Any, reads: _JobReads, background: list[Future[Any]]
    ) -> str:
        """The ledger holds the version: tag it ``anchored`` only if the record matches MLflow's bytes.

        Whoever registered the record (this bridge, another registrar, a data
        scientist calling the chaincode directly), it is trusted only once its
        manifest equals the manifest of the bytes MLflow holds for the version,
        computed by this job, and it names this version's MLflow source.
        Otherwise the version is tagged ``conflict``.
        """
        reason = disagreement(job.key, record, self._held(job, mv, record, reads), self.parts.uploader)
        if reason:
            return self.outcomes.conflict(job, reason)
        tx_id = record.registered_tx_id
        block = job.checkpoint.get("block")
        if block is None or job.checkpoint.get("tx_id") != tx_id:
            block = block_number_of(self.parts.network, tx_id)
        pointer = ledger_pointer(record=record)
        return self.outcomes.finish(job, tx_id, int(block), record.model_digest, pointer, {}, mv.tags, background)

    def _held(self, job: Job, mv: Any, record: Any, reads: _JobReads) -> Held:
        """The manifest and provenance of what MLflow holds for the version, as the bridge would register it.

        A job that copied the files itself has both in its checkpoint (read from
        the bytes it stored), and uses them unless its checkpoint names another
        transaction than the record's or the job was revived (MLflow's artifacts
        may have changed since): then the files are read again (streamed, not
        stored). The provenance is the checkpoint's when this bridge registered
        the record itself (its transaction): that is what it registered, while
        the run may since have gained metrics or inputs. Otherwise the run and
        logged model are read again.
        """
        cp = job.checkpoint
        registered_here = "provenance" in cp and cp.get("tx_id") == record.registered_tx_id
        same_tx = cp.get("tx_id", record.registered_tx_id) == record.registered_tx_id
        if "manifest" in cp and "provenance" in cp and job.revivals == 0 and same_tx:
            return Held(Manifest.from_json(cp["manifest"]), cp["provenance"])
        uri, s3 = (
            reads.located.result()
            if reads.located is not None
            else locate_files(self.parts, reads.mlflow, job.name, job.version)
        )
        try:
            with (
                tempfile.TemporaryDirectory(prefix="modelledger-check-", dir=self.parts.scratch) as tmp,
                version_files(job.key, uri, s3, Path(tmp), self.parts.tracking_uri) as (files, folder, _),
            ):
                manifest = digest_files(files)
                if registered_here:
                    return Held(manifest, cp["provenance"])
                run, logged = read_sources(reads.mlflow, mv)
                return Held(manifest, provenance_doc(collect(mv, run, logged, folder())))
        except SourceError as exc:
            raise RuntimeError(str(exc)) from exc

    # ------------------------------------------------------------------ 6. register and wait for the commit
    def _register(self, job: Job, mv: Any, reads: _JobReads, clock: StepClock, background: list[Future[Any]]) -> str:
        """Submits ``RegisterModelVersion``, waits for its commit while the first tags are written, tags the rest."""
        p = self.parts
        pointer = StoragePointer.from_json(job.checkpoint["pointer"])
        manifest = Manifest.from_json(job.checkpoint["manifest"])
        record_in = version_input(
            name=job.name,
            version=job.version,
            manifest=manifest,
            pointer=pointer,
            **provenance_records(job.checkpoint["provenance"]),
        )
        try:
            commit = p.registry.register_model_version_async(record_in)
        except Conflict as exc:
            # Registered by someone else between the reads and this submit: compared like any record found there.
            record = self._on_ledger(job)
            if record is None:  # the peer read has not caught up with the commit yet: worth retrying
                why = f"the ledger refused {job.key} as registered, but its record is not readable yet"
                raise RuntimeError(why) from exc
            return self._already_on_ledger(job, mv, record, reads, background)
        clock.lap("submit")
        fault_point("after-submit")
        job = self.outbox.checkpoint(job, self.lease_seconds, tx_id=commit.transaction_id)
        fault_point("before-commit-status")
        # While the orderer cuts the block: the tags that do not depend on the outcome (status stays pending).
        written = {TAG_TX: commit.transaction_id, TAG_DIGEST: manifest.model_digest, TAG_STORAGE: storage_uri(pointer)}
        early = self.outcomes.write_tags(job, mv.tags, written, background)
        tx_id, block = self._committed(commit, early, clock)
        job = self.outbox.checkpoint(job, self.lease_seconds, tx_id=tx_id, block=block)
        state = self.outcomes.finish(job, tx_id, block, manifest.model_digest, pointer, written, {}, background)
        clock.lap("tags")
        log.info("anchored", extra={"job": job.key, "tx_id": tx_id, "block": block, "steps": clock.steps})
        return state

    def _committed(self, commit: Any, early: list[Future[Any]], clock: StepClock) -> tuple[str, int]:
        """Waits for the commit (only VALID counts) and the ``early`` tags; the transaction and block of the record."""
        try:
            status = commit.wait()
            clock.lap("commit")
        except CommitError as exc:
            # MVCC conflicts and the like: retried; the registration is idempotent.
            raise RuntimeError(f"transaction {exc.transaction_id} committed as {exc.code_name}") from exc
        all_done(early)
        # The record names the transaction that registered it: this one, or (after a resubmission that
        # only read the stored record back) an earlier one, which the tags must name instead.
        stored = from_json(LedgerModelVersion, json.loads(commit.result)) if commit.result else None
        tx_id, block = commit.transaction_id, status.block_number
        if stored is not None and stored.registered_tx_id and stored.registered_tx_id != tx_id:
            tx_id, block = stored.registered_tx_id, block_number_of(self.parts.network, stored.registered_tx_id)
        return tx_id, block

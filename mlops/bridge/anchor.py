"""The anchoring worker: one outbox job in, one VALID ledger record and its MLflow tags out.

Steps of a job (each durable result is checkpointed in the outbox, so a job
taken over after a crash resumes where it stopped):

0. re-read the version from the registry (the webhook was only a hint) and,
   at the same time, ask the ledger and locate the files; if the ledger
   already holds the version, skip to the tags;
1. fetch the artifacts (allowlisted URI, read from MLflow's bucket when it is
   on this stack's S3, into a private temporary folder); meanwhile read the
   run and the logged model and tag the version ``pending``;
2-4. digest and copy to the anchored bucket in one pass while the run's
   datasets are registered and the model-signing bundle is made (the bridge's
   registrar identity); checkpoint the pointer, manifest and provenance;
5. ``RegisterModelVersion`` through the Gateway, endorsed by every
   organisation; checkpoint the transaction id;
6. wait for its commit status (only VALID counts) while ``ledger.tx_id``,
   ``model.digest`` and ``storage.uri`` are written;
7. ``ledger.block``, then ``ledger.status=anchored`` last.

Every request made beside the main line is awaited before the job's outcome
is recorded, so no tag of an attempt lands after it.

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

import contextlib
import dataclasses
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError, ClientError

from modelledger.mlops.bridge.artifacts import (
    ArtifactAllowlist,
    SourceRefusedError,
    resolve_download_uri,
    stored_location,
)
from modelledger.mlops.bridge.mlflow_api import is_prompt
from modelledger.mlops.bridge.outbox import Job, LeaseLostError, Outbox
from modelledger.mlops.bridge.provenance import Provenance, collect, ledger_datasets, ledger_name
from modelledger.mlops.bridge.tags import (
    STATUS_ANCHORED,
    STATUS_CONFLICT,
    STATUS_FAILED,
    STATUS_PENDING,
    TAG_BLOCK,
    TAG_DIGEST,
    TAG_ERROR,
    TAG_NOTE,
    TAG_STATUS,
    TAG_STORAGE,
    TAG_TX,
)
from modelledger.mlops.store.digest import (
    Manifest,
    ModelTreeError,
    digest_files,
    list_files,
    manifest_differences,
)
from modelledger.mlops.store.index import StoragePointer
from modelledger.mlops.store.s3errors import NOT_THERE, error_code
from modelledger.mlops.store.source import SourceError, download_s3_objects, list_s3_tree, local_folder
from modelledger.mlops.store.upload import LocalFile, ModelFile, ModelUploader
from modelledger.mlops.store.verification import ledger_manifest, ledger_pointer
from modelledger.mlops.store.verify import verify_s3
from modelledger.sdk.gateway.errors import CommitError
from modelledger.sdk.gateway.gateway import Network
from modelledger.sdk.ledger.queries import block_number_of
from modelledger.sdk.registry.client import Conflict, Invalid, NotAuthorized, NotFound, RegistryClient
from modelledger.sdk.registry.names import InvalidNameError
from modelledger.sdk.registry.records import (
    DatasetRef,
    Framework,
    Library,
    ManifestFile,
    Metric,
    MLflowSource,
    ModelVersionInput,
    Param,
    Storage,
    from_json,
)
from modelledger.sdk.registry.records import Manifest as LedgerManifest
from modelledger.sdk.registry.records import ModelVersion as LedgerModelVersion

log = logging.getLogger("modelledger.bridge.anchor")


# Read from the model's files for the provenance (framework, pinned libraries); larger ones are not read.
PROVENANCE_FILES = ("MLmodel", "requirements.txt")
MAX_PROVENANCE_FILE = 1024 * 1024

# Fault injection for the crash tests only: the bridge process exits (as if killed) at this point.
FAULT_ENV = "MODELLEDGER_BRIDGE_FAULT"
FAULT_POINTS = ("after-upload", "after-submit", "before-commit-status")


# Where a version's files are: their allowlisted URI and the S3 client to read it with (None: through MLflow).
Located = Future[tuple[str, Any | None]]


class PermanentError(Exception):
    """The job cannot succeed by retrying; the message is the reason recorded and tagged."""


class NotAModelError(PermanentError):
    """The registry version is a prompt's: recorded, but no ledger tag is written on it."""


class _OnLedger(Exception):
    """The ledger holds the version already: it is only tagged (raised by the reads, caught by the job)."""

    def __init__(self, mv: Any, record: Any) -> None:
        super().__init__(f"{mv.name}/{mv.version} is on the ledger")
        self.mv, self.record = mv, record


@dataclass(frozen=True)
class _Held:
    """What MLflow holds for a version, as the bridge would register it: the manifest and the provenance JSON."""

    manifest: Manifest
    provenance: dict[str, Any]


class NotReadyError(Exception):
    """The version is still being created in MLflow; try again shortly."""


@dataclass(frozen=True)
class SigningIdentity:
    """The key, certificate and CA chain the bridge signs bundles with (its registrar identity)."""

    key: Path
    certificate: Path
    chain: list[Path]

    @classmethod
    def from_msp(cls, msp_dir: Path) -> SigningIdentity:
        def files(sub: str) -> list[Path]:
            return sorted(p for p in (msp_dir / sub).iterdir() if p.is_file())

        keys, certs = files("keystore"), files("signcerts")
        if len(keys) != 1 or len(certs) != 1:
            raise PermanentError(f"{msp_dir}: expected one key and one certificate")
        chain = files("cacerts")
        if (msp_dir / "intermediatecerts").is_dir():
            chain += files("intermediatecerts")
        return cls(keys[0], certs[0], chain)


@dataclass
class AnchorParts:
    """The outside world a worker talks to."""

    mlflow: Any  # mlflow.MlflowClient
    registry: RegistryClient
    network: Network
    uploader: ModelUploader
    signing: SigningIdentity
    allowlist: ArtifactAllowlist
    tracking_uri: str
    scratch: Path | None = None
    # MLflow's --artifacts-destination and a client of that S3 store: artifacts are then read there directly.
    artifacts_destination: str = ""
    artifacts_s3: Any | None = None


class StepClock:
    """Seconds spent in each step of one job, for the job's log line (operators see where time goes)."""

    def __init__(self) -> None:
        self._t = time.perf_counter()
        self.steps: dict[str, float] = {}

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.steps[step] = round(self.steps.get(step, 0.0) + now - self._t, 4)
        self._t = now


def _fault(point: str) -> None:
    if os.environ.get(FAULT_ENV) == point:
        log.warning("fault injection: exiting at %s", point)
        logging.shutdown()
        os._exit(137)


def _is_missing(exc: Exception) -> bool:
    return getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"


def logged_model_id(source: str | None) -> str:
    """The logged-model id of a ``models:/m-<id>`` source (MLflow 3), or ""."""
    rest = (source or "").removeprefix("models:/")
    return rest if rest != (source or "") and rest.startswith("m-") and "/" not in rest else ""


def storage_uri(pointer: StoragePointer) -> str:
    return f"{pointer.uri}?versionId={pointer.version_id}"


class Anchorer:
    """Processes outbox jobs (one at a time per instance; run several instances for parallelism)."""

    def __init__(self, parts: AnchorParts, outbox: Outbox, lease_seconds: float) -> None:
        self.parts = parts
        self.outbox = outbox
        self.lease_seconds = lease_seconds
        # MLflow and ledger requests that run beside the job's main line (reads, tags).
        self._side = ThreadPoolExecutor(4, thread_name_prefix="anchor-side")

    # ------------------------------------------------------------------ the job
    def process(self, job: Job) -> str:
        """Runs one leased job to done, retry or dead; returns the job's new state."""
        try:
            return self._run(job)
        except LeaseLostError:
            log.warning("lease lost", extra={"job": job.key})
            return "lost"
        except NotAModelError as exc:
            return self._dead(job, str(exc), tag=False)
        except PermanentError as exc:
            return self._dead(job, str(exc))
        except (Invalid, NotAuthorized, Conflict) as exc:
            return self._dead(job, f"the ledger refused the registration: {exc}")
        except (SourceRefusedError, ModelTreeError) as exc:
            return self._dead(job, str(exc))
        except NotReadyError as exc:
            return self._retry(job, str(exc), tag=False)
        except Exception as exc:  # anything else is worth retrying: a node, S3 or MLflow down
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            return self._retry(job, reason, tag=True)

    def _run(self, job: Job) -> str:
        background: list[Future[Any]] = []
        try:
            return self._steps(job, background)
        finally:
            # Nothing of this job may still be writing once its outcome is recorded (process → _retry/_dead).
            futures_wait(background)

    def _spawn(self, background: list[Future[Any]], fn: Any, *args: Any) -> Future[Any]:
        """Runs ``fn(*args)`` beside the job's main line; ``_run`` waits for it before the job ends."""
        future = self._side.submit(fn, *args)
        background.append(future)
        return future

    def _steps(self, job: Job, background: list[Future[Any]]) -> str:
        p = self.parts
        clock = StepClock()
        # The reads at once: the version, the ledger, and where the files are (wasted only if on the ledger).
        version = self._spawn(background, self._model_version, job)
        on_ledger = self._spawn(background, self._on_ledger, job)
        located = self._spawn(background, self._locate, job) if "pointer" not in job.checkpoint else None
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
            pending = self._spawn(background, self._pending, job, due)
            if located is not None:
                try:
                    job = self._upload(job, due, clock, *located.result(), background)
                except Exception:
                    due.result()  # a refusal by the reads explains more than the copy that went ahead of them
                    raise
                _fault("after-upload")
            mv = due.result()
            pending.result()
        except _OnLedger as on:
            return self._already_on_ledger(job, on.mv, on.record, located, background)
        pointer = StoragePointer.from_json(job.checkpoint["pointer"])
        manifest = Manifest.from_json(job.checkpoint["manifest"])
        record_in = ModelVersionInput(
            name=job.name,
            version=job.version,
            model_digest=manifest.model_digest,
            manifest=LedgerManifest(files=[ManifestFile(f.path, f.sha256, f.size) for f in manifest.files]),
            manifest_digest=manifest.manifest_digest,
            storage=Storage(pointer.bucket, pointer.key, pointer.sha256, pointer.version_id),
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
            return self._already_on_ledger(job, mv, record, located, background)
        clock.lap("submit")
        _fault("after-submit")
        job = self.outbox.checkpoint(job, self.lease_seconds, tx_id=commit.transaction_id)
        _fault("before-commit-status")
        # While the orderer cuts the block: the tags that do not depend on the outcome (status stays pending).
        written = {TAG_TX: commit.transaction_id, TAG_DIGEST: manifest.model_digest, TAG_STORAGE: storage_uri(pointer)}
        early = self._write_tags(job, mv.tags, written, background)
        try:
            status = commit.wait()
            clock.lap("commit")
        except CommitError as exc:
            # MVCC conflicts and the like: retried; the registration is idempotent.
            raise RuntimeError(f"transaction {exc.transaction_id} committed as {exc.code_name}") from exc
        _all_done(early)
        # The record names the transaction that registered it: this one, or (after a resubmission that
        # only read the stored record back) an earlier one, which the tags must name instead.
        stored = from_json(LedgerModelVersion, json.loads(commit.result)) if commit.result else None
        tx_id, block = commit.transaction_id, status.block_number
        if stored is not None and stored.registered_tx_id and stored.registered_tx_id != tx_id:
            tx_id, block = stored.registered_tx_id, block_number_of(p.network, stored.registered_tx_id)
        job = self.outbox.checkpoint(job, self.lease_seconds, tx_id=tx_id, block=block)
        state = self._finish(job, tx_id, block, manifest.model_digest, pointer, written, {}, background)
        clock.lap("tags")
        log.info("anchored", extra={"job": job.key, "tx_id": tx_id, "block": block, "steps": clock.steps})
        return state

    def _already_on_ledger(
        self, job: Job, mv: Any, record: Any, located: Located | None, background: list[Future[Any]]
    ) -> str:
        """The ledger holds the version: tag it ``anchored`` only if the record matches MLflow's bytes.

        Whoever registered the record (this bridge, another registrar, a data
        scientist calling the chaincode directly), it is trusted only once its
        manifest equals the manifest of the bytes MLflow holds for the version,
        computed by this job, and it names this version's MLflow source.
        Otherwise the version is tagged ``conflict``.
        """
        disagreement = self._disagreement(job, mv, record, located)
        if disagreement:
            return self._conflict(job, disagreement)
        tx_id = record.registered_tx_id
        block = job.checkpoint.get("block")
        if block is None or job.checkpoint.get("tx_id") != tx_id:
            block = block_number_of(self.parts.network, tx_id)
        pointer = ledger_pointer(record)
        return self._finish(job, tx_id, int(block), record.model_digest, pointer, {}, mv.tags, background)

    def _disagreement(self, job: Job, mv: Any, record: Any, located: Located | None) -> str:
        """Why the ledger's record is not what the bridge would register for this MLflow version ("" when it is).

        Compared: the manifest, file by file, and both digests; the MLflow
        source, run, logged model and user; the framework, libraries, params,
        metrics and training datasets; and the storage pointer, which must be a
        sound, locked copy of those files in the anchored bucket.
        """
        held = self._held(job, mv, record, located)
        reasons = provenance_differences(record, held.provenance)
        try:
            recorded = ledger_manifest(record)
        except ModelTreeError as exc:
            reasons.append(f"its manifest is not a valid manifest ({exc})")
        else:
            if not recorded.files:
                reasons.append("it lists no files")
            diff = manifest_differences(held.manifest, recorded)
            for label, paths in (
                ("files that differ", diff.changed),
                ("files only on the ledger", diff.only_second),
                ("files only in MLflow", diff.only_first),
            ):
                if paths:
                    reasons.append(f"{label}: {_some(paths)}")
            if not diff and recorded.files:
                for field, theirs, ours in (
                    ("modelDigest", record.model_digest, held.manifest.model_digest),
                    ("manifestDigest", record.manifest_digest, held.manifest.manifest_digest),
                ):
                    if theirs != ours:
                        reasons.append(f"its {field} {theirs} is not {ours}")
                reasons += self._copy_problems(record, held.manifest)
        if not reasons:
            return ""
        who = record.registrant
        return (
            f"the ledger's record of {job.key} (registered by {who.msp_id or '-'} {who.role or '-'}, certificate "
            f"{who.cert_fingerprint or '-'}, transaction {record.registered_tx_id or '-'}) does not match the "
            f"version MLflow holds: {'; '.join(reasons)}"
        )

    def _copy_problems(self, record: Any, manifest: Manifest) -> list[str]:
        """What is wrong with the record's storage pointer as the write-once copy of ``manifest`` ([] if nothing)."""
        uploader = self.parts.uploader
        pointer = ledger_pointer(record)
        if pointer.bucket != uploader.bucket:
            return [f"its storage is in bucket {pointer.bucket!r}, not the anchored bucket {uploader.bucket!r}"]
        report = verify_s3(uploader.client, pointer, manifest)
        if report.ok:
            return []
        # An S3 that cannot be read (down, throttling, refusing this credential) is not a finding against the
        # record: the job is retried. Only a copy read the same way twice, and reachable, is a conflict.
        _check_readable(uploader.client, pointer)
        if verify_s3(uploader.client, pointer, manifest).to_json() != report.to_json():
            raise RuntimeError(f"the anchored copy {pointer.uri} read differently twice; checking again later")
        found = report.error or "; ".join(
            f"{what}: {_some(paths)}"
            for what, paths in (
                ("changed", report.changed),
                ("missing", report.missing),
                ("extra", report.extra),
                ("not locked", report.unprotected),
            )
            if paths
        )
        return [f"its storage {pointer.uri} is not a sound write-once copy of the files ({found})"]

    def _held(self, job: Job, mv: Any, record: Any, located: Located | None) -> _Held:
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
            return _Held(Manifest.from_json(cp["manifest"]), cp["provenance"])
        uri, s3 = located.result() if located is not None else self._locate(job)
        try:
            with (
                tempfile.TemporaryDirectory(prefix="modelledger-check-", dir=self.parts.scratch) as tmp,
                self._model_files(job, uri, s3, Path(tmp)) as (files, folder, _),
            ):
                manifest = digest_files(files)
                if registered_here:
                    return _Held(manifest, cp["provenance"])
                run, logged = self._sources(mv)
                return _Held(manifest, provenance_doc(collect(mv, run, logged, folder())))
        except SourceError as exc:
            raise RuntimeError(str(exc)) from exc

    def _conflict(self, job: Job, reason: str) -> str:
        """Tags the version ``conflict`` with the reason (no ledger tags of a record that is not its own)."""
        log.error("conflict", extra={"job": job.key, "reason": reason})
        self._try_failed(job, reason, status=STATUS_CONFLICT)
        try:
            self.outbox.conflict(job, reason)
        except LeaseLostError:
            return "lost"
        return "conflict"

    def _model_version(self, job: Job) -> Any:
        try:
            mv = self.parts.mlflow.get_model_version(job.name, job.version)
        except Exception as exc:
            if _is_missing(exc):
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

    def _pending(self, job: Job, due: Future[Any]) -> None:
        if due.result().tags.get(TAG_STATUS) != STATUS_PENDING:
            self._tags(job, {TAG_STATUS: STATUS_PENDING})

    def _sources(self, mv: Any) -> tuple[Any | None, Any | None]:
        """The run and the logged model behind a version (either may be None)."""
        mlflow = self.parts.mlflow
        run = mlflow.get_run(mv.run_id) if mv.run_id else None
        logged = None
        model_id = getattr(mv, "model_id", None) or logged_model_id(mv.source)
        if model_id:
            logged = mlflow.get_logged_model(model_id)
            if run is None and getattr(logged, "source_run_id", None):
                run = mlflow.get_run(logged.source_run_id)
        return run, logged

    def _register_datasets(self, sources: Future[tuple[Any | None, Any | None]]) -> list[str]:
        """Registers the run's datasets, in parallel; the model's record references them, so they go first.

        Returns:
            Notes for the version's ``ledger.note`` tag: datasets this organisation claimed before with
            another description.
        """
        datasets = ledger_datasets(sources.result()[0])
        if not datasets:
            return []
        with ThreadPoolExecutor(min(8, len(datasets)), thread_name_prefix="dataset") as pool:
            return [note for note in pool.map(self._register_dataset, datasets) if note]

    def _register_dataset(self, ds: DatasetRef) -> str:
        """Records this organisation's claim on one of the run's datasets.

        Every organisation has its own claim on a sha256 (chaincode 1.3.0), so an
        identical claim returns at once and a ``Conflict`` means that this
        organisation claimed the sha256 before with another name, source or schema
        summary (the chaincode's message names them). That earlier claim stands:
        the model's record references the dataset by digest with the run's name
        and source, and the chaincode marks that reference ``registered`` only if
        the claim says the same (so here it is flagged ``registered: false``, and
        refused while ``strictDatasets`` is on). The differing description is
        logged as a warning and returned as a note (the version's ``ledger.note``
        tag).
        """
        try:
            self.parts.registry.register_dataset(ds.name, ds.sha256, ds.source)
        except Conflict as exc:
            log.warning(
                "dataset claimed before with another description",
                extra={"sha256": ds.sha256, "dataset": ds.name, "source": ds.source, "reason": exc.message},
            )
            return f"dataset {ds.name} ({ds.sha256[:12]}…) was claimed before with another description: {exc.message}"
        return ""

    def _locate(self, job: Job) -> tuple[str, Any | None]:
        """The allowlisted URI of the version's files, and the S3 client to read it with (None: through MLflow)."""
        p = self.parts
        uri = p.allowlist.check(resolve_download_uri(p.mlflow, job.name, job.version))
        if p.artifacts_s3 is not None:
            direct = stored_location(uri, p.artifacts_destination)
            if direct.startswith("s3://"):
                return p.allowlist.check(direct), p.artifacts_s3
        return uri, None

    @contextlib.contextmanager
    def _model_files(
        self, job: Job, uri: str, s3: Any | None, scratch: Path
    ) -> Iterator[tuple[list[ModelFile], Callable[[], Path], list[str]]]:
        """The version's files, a call giving the folder of their ``MLmodel`` and ``requirements.txt``, and notes.

        From MLflow's bucket the files are listed once and streamed into the
        upload; only the two small provenance files are downloaded, beside the
        upload (larger ones are left out of the provenance, and a note says
        so). Otherwise MLflow's client downloads them into ``scratch``. No
        files at all is worth retrying: they may not be visible yet.
        """
        if s3 is not None:
            objects = list_s3_tree(s3, uri)
            wanted = [o for o in objects if o.rel in PROVENANCE_FILES]
            small = [o for o in wanted if o.size <= MAX_PROVENANCE_FILE]
            notes = [
                f"{o.rel} over {MAX_PROVENANCE_FILE} bytes not read for the provenance"
                for o in wanted
                if o not in small
            ]
            provenance = self._side.submit(download_s3_objects, small, scratch / "provenance")
            try:
                yield list(objects), provenance.result, notes
            finally:
                provenance.cancel()  # not started yet (the upload failed first): never starts
                futures_wait([provenance])  # nothing may still write into scratch once it is removed
            return
        with local_folder(uri, scratch=scratch, tracking_uri=self.parts.tracking_uri) as folder:
            files = list_files(folder)
            if not files:
                raise SourceError(f"the artifacts of {job.key} at {uri} hold no files")
            yield [LocalFile(tf) for tf in files], lambda: folder, []

    def _upload(
        self, job: Job, due: Future[Any], clock: StepClock, uri: str, s3: Any | None, background: list[Future[Any]]
    ) -> Job:
        p = self.parts
        clock.lap("locate")
        # model-signing takes ~0.3 s to import: only the worker that signs pays for it, not every CLI call.
        from modelledger.mlops.store.signing import sign_manifest

        # The run and the logged model are read while the files are listed and copied.
        sources = self._spawn(background, lambda: self._sources(due.result()))
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
                with self._model_files(job, uri, s3, Path(tmp)) as (files, folder, skipped):
                    clock.lap("fetch")
                    # Only a sound model tree gets its datasets on the ledger: registered while the files upload.
                    with ThreadPoolExecutor(1, thread_name_prefix="anchor-datasets") as beside:
                        datasets = beside.submit(self._register_datasets, sources)
                        gated = [_UntilRefused(f, due) for f in files]
                        result = p.uploader.upload_files(gated, uri, bundle=sign, progress=False)
                        clock.lap("upload")
                        dataset_notes = datasets.result()
                    run, logged = sources.result()
                    prov = collect(due.result(), run, logged, folder())
                    prov = dataclasses.replace(prov, notes=(*prov.notes, *skipped, *dataset_notes))
            except SourceError as exc:
                raise RuntimeError(str(exc)) from exc
        if prov.notes:
            self._tags(job, {TAG_NOTE: "; ".join(prov.notes)[:4000]})
        job = self.outbox.checkpoint(
            job,
            self.lease_seconds,
            pointer=result.pointer.to_json(),
            manifest=result.manifest.to_json(),
            provenance=provenance_doc(prov),
        )
        clock.lap("provenance")
        return job

    # ------------------------------------------------------------------ outcomes
    def _write_tags(
        self, job: Job, known: dict[str, str], tags: dict[str, str], background: list[Future[Any]]
    ) -> list[Future[Any]]:
        """Starts writing ``tags`` (and removing a stale ``ledger.error``) in parallel; returns the requests."""
        mlflow = self.parts.mlflow

        def drop_error() -> None:
            try:
                mlflow.delete_model_version_tag(job.name, job.version, TAG_ERROR)
            except Exception as exc:
                if not _is_missing(exc):
                    raise

        def put(key: str, value: str) -> None:
            mlflow.set_model_version_tag(job.name, job.version, key, value)

        requests = [self._spawn(background, put, k, v) for k, v in tags.items()]
        return [*requests, self._spawn(background, drop_error)] if TAG_ERROR in known else requests

    def _finish(
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
        """Writes the ledger tags not yet ``written``, then ``ledger.status=anchored``; completes the job."""
        details = {TAG_TX: tx_id, TAG_BLOCK: str(block), TAG_DIGEST: model_digest, TAG_STORAGE: storage_uri(pointer)}
        _all_done(self._write_tags(job, known, {k: v for k, v in details.items() if written.get(k) != v}, background))
        # The status last: whoever sees "anchored" finds the other tags already there.
        self.parts.mlflow.set_model_version_tag(job.name, job.version, TAG_STATUS, STATUS_ANCHORED)
        self.outbox.complete(job, tx_id=tx_id, block=block)
        return "done"

    # The tags are written while this worker still holds the lease, before the outbox records the
    # outcome, so that a late tag never overwrites what a worker that took the job over wrote.
    def _retry(self, job: Job, reason: str, tag: bool) -> str:
        log.warning("retrying", extra={"job": job.key, "reason": reason, "attempt": job.attempts})
        last = self.outbox.out_of_attempts(job.attempts)
        if last:
            self._try_failed(job, f"gave up after {job.attempts} attempts: {reason}")
        elif tag:
            self._try_tags(job, {TAG_ERROR: reason[:4000], TAG_STATUS: STATUS_PENDING})
        try:
            return self.outbox.retry(job, reason).state
        except LeaseLostError:
            return "lost"

    def _dead(self, job: Job, reason: str, tag: bool = True) -> str:
        log.error("dead-lettered", extra={"job": job.key, "reason": reason})
        if tag:
            self._try_failed(job, reason)
        try:
            self.outbox.dead(job, reason)
        except LeaseLostError:
            return "lost"
        return "dead"

    def _try_failed(self, job: Job, reason: str, status: str = STATUS_FAILED) -> None:
        """Tags the version ``status`` (failed); first removes the tags written while a registration was in flight.

        A failed version must not name a transaction, digest or copy as if it had been anchored.
        """
        try:
            for key in (TAG_TX, TAG_BLOCK, TAG_DIGEST, TAG_STORAGE):
                try:
                    self.parts.mlflow.delete_model_version_tag(job.name, job.version, key)
                except Exception as exc:
                    if not _is_missing(exc):
                        raise
        except Exception as exc:  # MLflow down too: the reconciler tags later
            log.warning("cannot untag", extra={"job": job.key, "reason": str(exc).splitlines()[0] if str(exc) else ""})
        self._try_tags(job, {TAG_ERROR: reason[:4000], TAG_STATUS: status})

    def _try_tags(self, job: Job, tags: dict[str, str]) -> None:
        try:
            self._tags(job, tags)
        except Exception as exc:  # MLflow down too: the reconciler tags later
            log.warning("cannot tag", extra={"job": job.key, "reason": str(exc).splitlines()[0] if str(exc) else ""})

    def _tags(self, job: Job, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.parts.mlflow.set_model_version_tag(job.name, job.version, key, value)


class _UntilRefused:
    """A model file whose reading stops at its next read once the version's reads have refused it.

    A copy that went ahead of the reads (a just-announced version) then sends
    no more chunks of a version that is on the ledger, gone, not ready, or a
    prompt's; whatever the copy had sent is content-addressed and unreferenced.
    """

    def __init__(self, file: ModelFile, due: Future[Any]) -> None:
        self._file, self._due = file, due

    @property
    def rel(self) -> str:
        return self._file.rel

    @property
    def size(self) -> int:
        return self._file.size

    def check(self) -> None:
        if self._due.done():
            self._due.result()  # raises the refusal

    @contextlib.contextmanager
    def open(self) -> Iterator[Any]:
        self.check()
        with self._file.open() as reader:
            yield _CheckedReader(reader, self.check)


class _CheckedReader:
    def __init__(self, reader: Any, check: Callable[[], None]) -> None:
        self._reader, self._check = reader, check
        self.size = reader.size

    def read(self, size: int, /) -> bytes:
        self._check()
        return self._reader.read(size)  # type: ignore[no-any-return]

    def readinto(self, buffer: Any, /) -> int:
        self._check()
        return self._reader.readinto(buffer)  # type: ignore[no-any-return]

    def finish(self, size_read: int) -> None:
        self._reader.finish(size_read)


def _some(paths: list[str], limit: int = 10) -> str:
    """Up to ``limit`` paths, and how many more."""
    shown = ", ".join(paths[:limit])
    return shown if len(paths) <= limit else f"{shown} and {len(paths) - limit} more"


def _check_readable(client: Any, pointer: StoragePointer) -> None:
    """Raises RuntimeError (the job is retried) unless S3 answers for the copy's index, present or not."""
    try:
        client.head_object(Bucket=pointer.bucket, Key=pointer.key, VersionId=pointer.version_id)
    except ClientError as exc:
        if error_code(exc) not in NOT_THERE:
            raise RuntimeError(f"cannot read the anchored copy {pointer.uri}: {exc}") from exc
    except BotoCoreError as exc:
        raise RuntimeError(f"cannot reach the anchored copy {pointer.uri}: {exc}") from exc


def _all_done(futures: list[Future[Any]]) -> None:
    """Waits for every request, then raises the first failure (none is left running behind an error)."""
    futures_wait(futures)
    for future in futures:
        future.result()


def provenance_doc(prov: Provenance) -> dict[str, Any]:
    """The provenance as plain JSON (the checkpoint's form), rebuilt into records by :func:`provenance_records`."""
    fields = ("mlflow", "framework", "libraries", "params", "metrics", "datasets")

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return dataclasses.asdict(v)
        if isinstance(v, list):
            return [plain(x) for x in v]
        return v

    return {k: plain(getattr(prov, k)) for k in fields}


def provenance_records(doc: dict[str, Any]) -> dict[str, Any]:
    """The checkpointed provenance as the records ``ModelVersionInput`` takes."""
    return {
        "mlflow": MLflowSource(**doc["mlflow"]),
        "framework": Framework(**doc["framework"]),
        "libraries": [Library(**x) for x in doc["libraries"]],
        "params": [Param(**x) for x in doc["params"]],
        "metrics": [Metric(**x) for x in doc["metrics"]],
        "datasets": [DatasetRef(**x) for x in doc["datasets"]],
    }


def _rows(items: list[Any], fields: tuple[str, ...]) -> list[tuple[Any, ...]]:
    return sorted(tuple(getattr(x, f) for f in fields) for x in items)


def provenance_differences(record: Any, doc: dict[str, Any]) -> list[str]:
    """How a ledger record's provenance differs from ``doc`` (what the bridge reads from MLflow), [] if not."""
    want = provenance_records(doc)
    out: list[str] = []
    got_src, want_src = record.mlflow, want["mlflow"]
    if (got_src.source, got_src.run_id) != (want_src.source, want_src.run_id):
        out.append(
            f"it names another MLflow source ({got_src.source or '-'}, run {got_src.run_id or '-'}), not "
            f"{want_src.source} (run {want_src.run_id or '-'}; a model re-created under a used name?)"
        )
    elif (got_src.model_id, got_src.user) != (want_src.model_id, want_src.user):
        out.append(
            f"its MLflow logged model and user ({got_src.model_id or '-'}, {got_src.user or '-'}) are not "
            f"{want_src.model_id or '-'}, {want_src.user or '-'}"
        )
    if (record.framework.name, record.framework.version) != (want["framework"].name, want["framework"].version):
        out.append(f"its framework {record.framework.name} {record.framework.version} is not "
                   f"{want['framework'].name} {want['framework'].version}")
    for what, fields, key in (
        ("libraries", ("name", "version"), "name"),
        ("params", ("key", "value"), "key"),
        ("metrics", ("key", "value"), "key"),
        ("datasets", ("name", "sha256", "source"), "sha256"),
    ):
        got, expected = _rows(getattr(record, what), fields), _rows(want[what], fields)
        if got != expected:
            at = fields.index(key)
            differing = sorted({str(r[at]) for r in set(got) ^ set(expected)})
            out.append(f"its {what} differ from MLflow's ({_some(differing)})")
    return out

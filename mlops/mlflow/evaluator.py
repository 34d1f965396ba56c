"""``modelledger.mlflow.evaluate``: evaluate a registered version on hold-out data; record the verdict on the ledger.

One call does, in this order (docs/evaluation.md says what it guarantees and what not;
:mod:`modelledger.mlflow.hold_out` holds the input checks, the verdict and the errors):

1. checks the input (the hold-out data, its target column, the model URI) and
   computes the data's full SHA-256 (:func:`~modelledger.mlops.store.digest.dataset_digest`
   for a file, :func:`~modelledger.mlops.store.digest.dataframe_digest` for a DataFrame);
2. reads the version's ledger record as the evaluator and refuses a hold-out set that is one
   of its training datasets (same SHA-256);
3. if an earlier call already recorded this very evaluation (same model, data, targets, type, options
   and evaluator organisation: :func:`~modelledger.mlflow.hold_out.evaluation_key`) under the model's
   policy version now, returns that verdict (under another policy version, evaluates anew in a new run:
   a rerun by the same organisation adds no pass under the same policy version; after the policy
   changes, evaluate again, as the default does); if an earlier call finished its MLflow run and
   stored its artefacts but died before the ledger write, records that run after checking its bundle
   and verifying the model again
   (docs/evaluation.md, "A rerun never counts twice"). Earlier calls are known from the caller's
   private resume journal (:mod:`~modelledger.mlflow.resume_journal`), never from MLflow's run tags;
4. fetches the anchored copy and verifies it whole against the ledger
   (:func:`~modelledger.mlops.store.fetch.fetch_verified`: bytes against the ledger's manifest,
   signature by the registrant, status neither revoked nor rejected); anything else raises
   :class:`ModelNotVerified` and nothing runs;
5. makes sure the hold-out data is a registered dataset (the evaluator organisation's claim);
6. runs MLflow's own :func:`mlflow.models.evaluate` on the verified local copy, inside an MLflow
   run, so metrics and plots land in MLflow as usual;
7. bundles the run's artefacts and a summary deterministically
   (:func:`~modelledger.mlops.store.evaluation_artifacts.bundle_folder`) and stores the bundle
   write-once in the anchored bucket (S3 user ``evaluator``: ``evaluations/`` only, no delete);
8. records the evaluation on the ledger (``RecordEvaluation``) as the evaluator, and returns
   the ledger's verdict (:class:`EvaluationVerdict`).

A rerun never counts twice: the chaincode refuses the same run id from the same organisation,
and a rerun reuses the earlier run's id when that run got as far as its artefacts.

Why this module is long: the eight steps above are one transaction-like sequence whose order is the
guarantee (nothing runs before the verification, nothing is recorded before the artefacts are stored,
a rerun resumes rather than counts twice); split, the order would be spread over modules.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from modelledger.mlflow.hold_out import (
    FRESH,
    MODEL_TYPES,
    RECORDED_BEFORE,
    RERUN_POLICY_CHANGED,
    RESUMED,
    EvaluationError,
    EvaluationInputError,
    EvaluationVerdict,
    EvaluatorNotIndependent,
    HoldOut,
    HoldOutIsTrainingData,
    ModelNotVerified,
    evaluation_key,
    evaluation_options,
    is_frame,
    ledger_metrics,
    load_hold_out,
    parse_model_uri,
    resolve_model_uri,
    verdict_of,
)
from modelledger.mlflow.resume_journal import JournalEntry, journal_folder, read_entry, write_entry
from modelledger.mlops.store.evaluation_artifacts import (
    bundle_digest,
    bundle_folder,
    bundle_member,
    read_bundle,
    store_bundle,
)
from modelledger.sdk.registry.client import NotFound
from modelledger.sdk.registry.records import EvaluationInput, Metric

if TYPE_CHECKING:
    from modelledger.mlops.store.verification import LedgerEvidence

log = logging.getLogger(__name__)

# The ledger's refusals (sdk/registry/client.py) and the store's verification import gRPC and the signature
# code: they are imported where they are used, so that importing modelledger.mlflow stays cheap.

# The MLflow run tags an evaluation run carries (for people and the UI: a rerun trusts its private journal, not them).
RUN_TAG_KEY = "modelledger.evaluation.key"
RUN_TAG_MODEL = "modelledger.evaluation.model"
RUN_TAG_MODEL_DIGEST = "modelledger.evaluation.model_digest"
RUN_TAG_DATASET = "modelledger.evaluation.dataset_sha256"
RUN_TAG_ARTIFACTS_DIGEST = "modelledger.evaluation.artifacts_digest"
RUN_TAG_ARTIFACTS_LOCATION = "modelledger.evaluation.artifacts_location"
SUMMARY_FILE = "modelledger-evaluation.json"

__all__ = [
    "EvaluationError",
    "EvaluationInputError",
    "EvaluationVerdict",
    "EvaluatorLedger",
    "HoldOutIsTrainingData",
    "ModelNotVerified",
    "evaluate",
    "open_ledger",
]


# --------------------------------------------------------------------------- the ledger, as the evaluator
class EvaluatorLedger(Protocol):
    """What :func:`evaluate` needs of the ledger; :func:`open_ledger` gives the real one.

    Attributes:
        msp_id: The evaluator's organisation.
        registry: A registry client acting as the evaluator.
    """

    msp_id: str
    registry: Any

    def evidence(self, name: str, version: str) -> LedgerEvidence:
        """The version's record and its registrant organisation's MSP (:func:`ledger_evidence`)."""
        ...


@dataclass
class _GatewayLedger:
    msp_id: str
    registry: Any
    network: Any
    chaincode: str

    def evidence(self, name: str, version: str) -> LedgerEvidence:
        from modelledger.mlops.store.verification import ledger_evidence

        return ledger_evidence(self.network, self.chaincode, name, version)


@contextlib.contextmanager
def open_ledger(org: str, role: str = "evaluator", profile: str | Path | None = None) -> Iterator[EvaluatorLedger]:
    """Connects to the ledger as ``role`` of ``org`` with the connection profile (default: the state folder's).

    Raises:
        GatewayError: The profile, identity or peer is not usable.
    """
    from modelledger.runtime.settings import connection_profile_path
    from modelledger.sdk.profile import ConnectionProfile
    from modelledger.sdk.registry.client import RegistryClient

    prof = ConnectionProfile.load(profile or connection_profile_path())
    with prof.gateway(org, role) as gw:
        network = gw.network(prof.channel)
        yield _GatewayLedger(org, RegistryClient(network, prof.chaincode), network, prof.chaincode)


# --------------------------------------------------------------------------- the steps
def _mine(registry: Any, name: str, version: str, msp_id: str) -> dict[str, Any]:
    """The evaluations of the version recorded by ``msp_id``, by run id."""
    return {e.run_id: e for e in registry.list_evaluations(name, version) if e.evaluator.msp_id == msp_id}


def _ensure_dataset(ledger: EvaluatorLedger, hold_out: HoldOut) -> None:
    """Registers the hold-out data as a dataset of the evaluator's organisation unless it has claimed it already."""
    from modelledger.sdk.registry.client import Conflict, NotFound

    try:
        claims = ledger.registry.get_dataset_claims(hold_out.sha256)
    except NotFound:
        claims = []
    if any(c.owner == ledger.msp_id for c in claims):
        return
    # A Conflict: the organisation claimed this sha256 before with another name or source; it is registered.
    with contextlib.suppress(Conflict):
        ledger.registry.register_dataset(hold_out.name, hold_out.sha256, hold_out.source)  # evaluators may (1.4.0)


def _run_evaluation(
    model_dir: Path,
    hold_out: HoldOut,
    targets: str,
    model_type: str,
    tags: dict[str, str],
    work: Path,
    run_name: str | None,
    evaluator_config: dict[str, Any] | None,
    extra_metrics: Sequence[Any] | None,
) -> tuple[str, list[Metric], bytes]:
    """Runs ``mlflow.models.evaluate`` in a new MLflow run; returns its id, metrics and artefacts bundle."""
    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    from modelledger.mlflow import log_input_digest

    with mlflow.start_run(run_name=run_name, tags=tags) as run:
        run_id = run.info.run_id
        # The input's tag is the SHA-256 the ledger records, computed once when the data was read (a file's
        # bytes, or a DataFrame's serialisation): the file is not read again.
        if hold_out.original is None or is_frame(hold_out.original):
            dataset = mlflow.data.from_pandas(hold_out.frame, name=hold_out.name, targets=targets)
        else:
            where = resolve_dataset_source(str(Path(hold_out.original).resolve()))
            dataset = MetaDataset(source=where, name=hold_out.name)
        log_input_digest(dataset, "evaluation", hold_out.sha256, hold_out.source)
        result = mlflow.models.evaluate(
            model=str(model_dir),
            data=hold_out.frame,
            targets=targets,
            model_type=model_type,
            evaluator_config=evaluator_config,
            extra_metrics=list(extra_metrics) if extra_metrics else None,
        )
        metrics = ledger_metrics(dict(result.metrics))
        bundle = _bundle(run_id, metrics, tags, work)
        return run_id, metrics, bundle


def _bundle(run_id: str, metrics: list[Metric], tags: dict[str, str], work: Path) -> bytes:
    """The run's artefacts (downloaded from MLflow) and a summary, as one deterministic tar."""
    import mlflow

    folder = work / "artifacts"
    folder.mkdir()
    mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(folder))
    summary = {
        "runId": run_id,
        "model": tags[RUN_TAG_MODEL],
        "modelDigest": tags[RUN_TAG_MODEL_DIGEST],
        "datasetSha256": tags[RUN_TAG_DATASET],
        "metrics": {m.key: m.value for m in metrics},
    }
    (folder / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return bundle_folder(folder)


def _record(
    ledger: EvaluatorLedger, name: str, version: str, evaluation: EvaluationInput, how: str
) -> EvaluationVerdict:
    """Records the evaluation; a refusal of the same run id from this organisation means it was recorded before."""
    from modelledger.sdk.registry.client import Conflict

    try:
        mv = ledger.registry.record_evaluation(name, version, evaluation)
        mine = [e for e in mv.evaluations if e.run_id == evaluation.run_id and e.evaluator.msp_id == ledger.msp_id]
        if mine:
            return verdict_of(name, version, mine[-1], how)
    except Conflict:
        earlier = _mine(ledger.registry, name, version, ledger.msp_id).get(evaluation.run_id)
        if earlier is None:
            raise
        return verdict_of(name, version, earlier, RECORDED_BEFORE)
    earlier = _mine(ledger.registry, name, version, ledger.msp_id).get(evaluation.run_id)
    if earlier is None:
        raise EvaluationError(f"the ledger's answer for {name}/{version} lacks the evaluation of {evaluation.run_id}")
    return verdict_of(name, version, earlier, how)


def evaluate(
    model_uri: str,
    data: Any,
    targets: str | None = None,
    model_type: str | None = None,
    *,
    org: str = "Org1MSP",
    role: str = "evaluator",
    profile: str | Path | None = None,
    dataset_name: str | None = None,
    dataset_source: str | None = None,
    evaluator_config: dict[str, Any] | None = None,
    extra_metrics: Sequence[Any] | None = None,
    run_name: str | None = None,
    resume: bool = True,
    work_dir: str | Path | None = None,
    ledger: EvaluatorLedger | None = None,
    s3: Any | None = None,
    s3_settings: Any | None = None,
) -> EvaluationVerdict:
    """Evaluates a registered version on hold-out data with MLflow, and records the verdict on the ledger.

    The model's anchored copy is verified against the ledger in full before
    anything runs, and MLflow evaluates that verified copy. The MLflow run is the
    active experiment's, under the tracking URI in use (``MLFLOW_TRACKING_URI``).

    Args:
        model_uri: ``models:/NAME/VERSION`` or ``models:/NAME@ALIAS`` (the MLflow name is the ledger's).
        data: The hold-out data: a pandas DataFrame, or a CSV or Parquet file.
        targets: The target column.
        model_type: ``classifier`` or ``regressor`` (as ``mlflow.models.evaluate`` takes it).
        org: The evaluator's organisation (MSP id).
        role: The role to act as (its certificate carries it); the chaincode lets ``evaluator`` record.
        profile: The connection profile (default: the one ``make up`` writes in the state folder).
        dataset_name: The hold-out dataset's name on the ledger (default: the file name, or ``holdout``).
        dataset_source: Where it came from, for the ledger (default: the file's path, or ``dataframe``).
        evaluator_config: Passed to ``mlflow.models.evaluate``.
        extra_metrics: Passed to ``mlflow.models.evaluate``.
        run_name: The MLflow run's name.
        resume: Reuse an earlier call's run of the same evaluation (default), as the caller's private resume
            journal in the state folder names it (:mod:`~modelledger.mlflow.resume_journal`; never MLflow's
            run tags), after verifying the model again; an earlier verdict is returned only if it was judged by
            the model's policy version now (``GetModel``), else the evaluation runs anew in a new run
            (``how == "rerun-policy-changed"``). False runs anew: the ledger then records a second evaluation by
            the same organisation (a rerun by the same organisation adds no pass under the same policy version;
            after the policy changes, evaluate again (the default does so)).
        work_dir: Where the verified copy and the artefacts are put while the call runs (default: temp).
        ledger: The ledger as the evaluator (default: :func:`open_ledger` with ``org``, ``role``, ``profile``).
        s3: A boto3 client as the S3 ``evaluator`` user (default: from the state folder).
        s3_settings: The S3 settings (default: from the environment).

    Returns:
        The verdict the ledger recorded.

    Raises:
        EvaluationInputError: Bad input; nothing ran and nothing changed.
        HoldOutIsTrainingData: The data is a training dataset of the version; nothing ran.
        ModelNotVerified: The anchored copy does not verify against the ledger; nothing ran.
        EvaluationError: The evaluation could not be recorded (e.g. its bundle could not be stored, or a resumed
            run's bundle is not this evaluation's, or its journal entry is not private: ``JournalError``).
        GatewayError: The ledger refused (its typed refusals: ``NotFound``, ``Conflict``, ``NotAuthorized``...).
        S3AccessError: No S3 credentials for the evaluator.
    """
    if model_type not in MODEL_TYPES:
        raise EvaluationInputError(f"model_type must be one of {', '.join(MODEL_TYPES)}, not {model_type!r}")
    evaluation_options(evaluator_config, extra_metrics)  # options the key cannot hold fail before anything runs
    parse_model_uri(model_uri)  # bad input fails before anything is asked of MLflow or the ledger
    hold_out = load_hold_out(data, targets or "", dataset_name, dataset_source)
    name, version = resolve_model_uri(model_uri)
    with contextlib.ExitStack() as stack:
        if ledger is None:
            ledger = stack.enter_context(open_ledger(org, role, profile))
        return _evaluate(
            ledger,
            name,
            version,
            hold_out,
            targets or "",
            model_type,
            evaluator_config=evaluator_config,
            extra_metrics=extra_metrics,
            run_name=run_name,
            resume=resume,
            work_dir=work_dir,
            s3=s3,
            s3_settings=s3_settings,
        )


def _evaluate(
    ledger: EvaluatorLedger,
    name: str,
    version: str,
    hold_out: HoldOut,
    targets: str,
    model_type: str,
    *,
    evaluator_config: dict[str, Any] | None,
    extra_metrics: Sequence[Any] | None,
    run_name: str | None,
    resume: bool,
    work_dir: str | Path | None,
    s3: Any | None,
    s3_settings: Any | None,
) -> EvaluationVerdict:
    from modelledger.mlops.store.fetch import fetch_verified
    from modelledger.mlops.store.s3_access import s3_client
    from modelledger.runtime.settings import S3Settings, S3User

    evidence = ledger.evidence(name, version)
    record = evidence.record
    training = [d for d in record.datasets if d.sha256 == hold_out.sha256]
    if training:
        raise HoldOutIsTrainingData(
            f"dataset {hold_out.sha256} is a training dataset of {name} version {version} ({training[0].name}): "
            "a hold-out set must not be one"
        )
    # The policy in force, read once: it decides the independence check now and whether an earlier verdict stands.
    try:
        policy, unread = ledger.registry.get_model(name).policy, None
    except NotFound as exc:  # a model the evaluator may not read: the chaincode decides
        policy, unread = None, exc
    _refuse_if_not_independent(policy, ledger.msp_id, name, version, record.registrant.msp_id)
    key = evaluation_key(
        name,
        version,
        record.model_digest,
        hold_out.sha256,
        targets,
        model_type,
        ledger.msp_id,
        evaluator_config,
        extra_metrics,
    )
    settings = s3_settings or S3Settings.from_env()
    client = s3 if s3 is not None else s3_client(settings, user=S3User.EVALUATOR)
    journal = journal_folder(settings.state_dir)
    entry = read_entry(journal, key) if resume else None
    how = FRESH
    if entry is not None:
        earlier = _mine(ledger.registry, name, version, ledger.msp_id).get(entry.run_id)
        if earlier is not None and earlier.dataset_sha256 == hold_out.sha256:
            if unread is not None:
                raise unread
            judged_by = earlier.policy.version if earlier.policy is not None else None
            in_force = policy.version if policy is not None else None
            if judged_by == in_force:
                return verdict_of(name, version, earlier, RECORDED_BEFORE)
            # The gate counts passes under the policy in force only: the earlier verdict no longer counts.
            log.warning(
                "%s version %s: the earlier evaluation (run %s) was judged by %s, the model's policy is now %s: "
                "evaluating again in a new run",
                name,
                version,
                entry.run_id,
                _policy_words(judged_by),
                _policy_words(in_force),
            )
            entry, how = None, RERUN_POLICY_CHANGED
    with tempfile.TemporaryDirectory(prefix="modelledger-evaluate-", dir=work_dir) as tmp:
        work = Path(tmp)
        model_dir = work / "model"
        # Also before a resumed run is recorded: the model must verify now, not only when that run ran.
        verification = fetch_verified(client, evidence, model_dir)
        if not verification.ok:
            raise ModelNotVerified(verification)
        _ensure_dataset(ledger, hold_out)
        if entry is not None:
            evaluation = _stored_evaluation(client, entry, f"{name}/{version}", record.model_digest, hold_out.sha256)
            return _record(ledger, name, version, evaluation, RESUMED)
        tags = {
            RUN_TAG_KEY: key,
            RUN_TAG_MODEL: f"{name}/{version}",
            RUN_TAG_MODEL_DIGEST: record.model_digest,
            RUN_TAG_DATASET: hold_out.sha256,
        }
        run_id, metrics, bundle = _run_evaluation(
            model_dir, hold_out, targets, model_type, tags, work, run_name, evaluator_config, extra_metrics
        )
        try:
            stored = store_bundle(client, settings.bucket, bundle)
        except Exception:
            _mark_failed(run_id)
            raise
        _tag_artifacts(run_id, bundle_digest(bundle), stored.location)
        write_entry(journal, JournalEntry(key, run_id, stored.sha256, stored.location))
    evaluation = EvaluationInput(
        artifacts_digest=stored.sha256,
        artifacts_location=stored.location,
        dataset_sha256=hold_out.sha256,
        metrics=metrics,
        run_id=run_id,
    )
    return _record(ledger, name, version, evaluation, how)


def _refuse_if_not_independent(policy: Any, evaluator: str, name: str, version: str, registrant: str) -> None:
    """Refuses, before anything runs, what the chaincode would refuse only once the evaluation is done: an
    evaluator of the registrant's organisation when the policy in force (None: none, or unreadable) asks for
    another."""
    if policy is not None and policy.independent_evaluator and evaluator == registrant:
        raise EvaluatorNotIndependent(
            f"policy version {policy.version} of model {name!r} requires an evaluator of another organisation "
            f"than {registrant}, which registered version {version!r}; nothing was run"
        )


def _policy_words(version: int | None) -> str:
    return f"policy version {version}" if version is not None else "no policy"


def _stored_evaluation(
    client: Any, entry: JournalEntry, model: str, model_digest: str, dataset_sha256: str
) -> EvaluationInput:
    """The evaluation of an earlier run, from its locked bundle (checked against its digest), not from MLflow.

    The metrics recorded are the summary's in the bundle, exactly those the earlier call would have recorded;
    MLflow's copy of the run could have been changed since. The summary must be this evaluation's: this model
    and version, the ledger's model digest, this hold-out data, and the journal's run.

    Raises:
        EvaluationError: The bundle is not this evaluation's (or cannot be read: ``EvaluationStoreError``).
    """
    summary = json.loads(
        bundle_member(read_bundle(client, entry.artifacts_location, entry.artifacts_digest), SUMMARY_FILE)
    )
    expected = {"model": model, "modelDigest": model_digest, "datasetSha256": dataset_sha256, "runId": entry.run_id}
    wrong = sorted(k for k, v in expected.items() if summary.get(k) != v)
    if wrong:
        raise EvaluationError(
            f"the bundle at {entry.artifacts_location} is not this evaluation's ({', '.join(wrong)} differ): "
            "it is not recorded; run again with resume=False (--rerun)"
        )
    return EvaluationInput(
        artifacts_digest=entry.artifacts_digest,
        artifacts_location=entry.artifacts_location,
        dataset_sha256=dataset_sha256,
        metrics=[Metric(k, float(v)) for k, v in sorted(summary["metrics"].items())],
        run_id=entry.run_id,
    )


def _tag_artifacts(run_id: str, digest: str, location: str) -> None:
    """Marks the run as ready to record (what a rerun resumes from)."""
    from mlflow import MlflowClient

    client = MlflowClient()
    client.set_tag(run_id, RUN_TAG_ARTIFACTS_DIGEST, digest)
    client.set_tag(run_id, RUN_TAG_ARTIFACTS_LOCATION, location)


def _mark_failed(run_id: str) -> None:
    """A run whose bundle could not be stored is FAILED (a rerun does not resume it)."""
    from mlflow import MlflowClient

    with contextlib.suppress(Exception):
        MlflowClient().set_terminated(run_id, status="FAILED")

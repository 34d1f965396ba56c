"""The pieces of ``modelledger.mlflow.evaluate`` that need no MLflow run and no server: its input, its verdict.

- the input: the ``models:/`` URI (:func:`parse_model_uri`, :func:`resolve_model_uri`), the hold-out
  data and its full SHA-256 (:func:`load_hold_out`), the identity of an evaluation
  (:func:`evaluation_key`) and the metrics as the ledger takes them (:func:`ledger_metrics`);
- the outcome: :class:`EvaluationVerdict` (what the ledger recorded, :func:`verdict_of`) and the
  errors that mean nothing was recorded (:class:`EvaluationError` and its kinds).

:mod:`modelledger.mlflow.evaluator` runs the evaluation with these.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelledger.mlops.store.digest import dataframe_digest
from modelledger.sdk.registry.limits import LIMITS
from modelledger.sdk.registry.records import Metric
from modelledger.sdk.registry.statuses import PASSED

if TYPE_CHECKING:
    from modelledger.mlops.store.verification import Verification

# What the verdict says about how it came about.
FRESH = "fresh"  # this call ran the evaluation and recorded it
RESUMED = "resumed"  # an earlier call's run (artefacts stored, not recorded) was recorded by this call
RECORDED_BEFORE = "recorded-before"  # an earlier call had recorded this evaluation: nothing was done
# An earlier call had recorded this evaluation, judged by another policy version than the model's now: the gate
# no longer counts it, so this call ran the evaluation anew (a new run id) and recorded it.
RERUN_POLICY_CHANGED = "rerun-policy-changed"
MODEL_TYPES = ("classifier", "regressor")  # what mlflow.models.evaluate's default evaluator scores on a target


class EvaluationError(Exception):
    """Nothing was recorded on the ledger; the message says why."""


class EvaluationInputError(EvaluationError, ValueError):
    """The model URI, the data or an option is not usable; nothing was run and nothing changed."""


class ModelNotVerified(EvaluationError):
    """The version's anchored copy does not verify against the ledger: nothing was run.

    Attributes:
        verification: Every check, with the failing ones named.
    """

    def __init__(self, verification: Verification) -> None:
        super().__init__(verification.summary())
        self.verification = verification


class HoldOutIsTrainingData(EvaluationError):
    """The hold-out data is one of the version's training datasets (same SHA-256): nothing was run."""


class EvaluatorNotIndependent(EvaluationError):
    """The model's policy asks for an evaluator of another organisation than the registrant's: nothing was run."""


@dataclass(frozen=True)
class EvaluationVerdict:
    """What the ledger recorded for an evaluation: its verdict and where everything is.

    Attributes:
        name: The model.
        version: Its version.
        result: ``PASSED``, ``FAILED`` or ``NO_POLICY``, as the chaincode computed it.
        failures: Why it failed, one line per threshold missed or metric missing.
        metrics: The metrics recorded.
        policy_version: The version of the policy it was judged by (None: no policy in force).
        tx_id: The ledger transaction that recorded it.
        run_id: The MLflow run of the evaluation.
        dataset_sha256: The hold-out data's full SHA-256.
        artifacts_digest: SHA-256 of the artefacts bundle.
        artifacts_location: Its write-once copy (``s3://bucket/key?versionId=...``).
        evaluator: ``role@MSP`` from the certificate.
        time: When it was recorded.
        how: :data:`FRESH`, :data:`RESUMED`, :data:`RECORDED_BEFORE` or :data:`RERUN_POLICY_CHANGED`.
    """

    name: str
    version: str
    result: str
    failures: tuple[str, ...]
    metrics: dict[str, float]
    policy_version: int | None
    tx_id: str
    run_id: str
    dataset_sha256: str
    artifacts_digest: str
    artifacts_location: str
    evaluator: str = ""
    time: str = ""
    how: str = FRESH

    @property
    def passed(self) -> bool:
        return self.result == PASSED

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "result": self.result,
            "failures": list(self.failures),
            "metrics": dict(sorted(self.metrics.items())),
            "policy_version": self.policy_version,
            "tx_id": self.tx_id,
            "run_id": self.run_id,
            "dataset_sha256": self.dataset_sha256,
            "artifacts_digest": self.artifacts_digest,
            "artifacts_location": self.artifacts_location,
            "evaluator": self.evaluator,
            "time": self.time,
            "how": self.how,
        }


def verdict_of(name: str, version: str, evaluation: Any, how: str = FRESH) -> EvaluationVerdict:
    """The verdict of one ``Evaluation`` record of the ledger."""
    policy = getattr(evaluation, "policy", None)
    actor = evaluation.evaluator
    return EvaluationVerdict(
        name=name,
        version=version,
        result=evaluation.result,
        failures=tuple(evaluation.failures or ()),
        metrics={m.key: m.value for m in evaluation.metrics or ()},
        policy_version=policy.version if policy is not None else None,
        tx_id=evaluation.tx_id,
        run_id=evaluation.run_id,
        dataset_sha256=evaluation.dataset_sha256,
        artifacts_digest=evaluation.artifacts_digest,
        artifacts_location=evaluation.artifacts_location,
        evaluator=f"{actor.role}@{actor.msp_id}" if actor.role else actor.msp_id,
        time=evaluation.time,
        how=how,
    )


# --------------------------------------------------------------------------- input
def parse_model_uri(model_uri: str) -> tuple[str, str, str]:
    """``models:/NAME/VERSION`` or ``models:/NAME@ALIAS`` as (name, version, alias); one of the last two is "".

    Raises:
        EvaluationInputError: Anything else (the ledger knows registered versions, not runs or paths).
    """
    rest = model_uri.removeprefix("models:/") if model_uri.startswith("models:/") else ""
    if "@" in rest:
        name, _, alias = rest.rpartition("@")
        if name and alias and "/" not in alias:
            return name, "", alias
    elif "/" in rest:
        name, _, version = rest.rpartition("/")
        if name and version.isdigit() and len(version) <= LIMITS.version_digits:
            return name, version, ""
    raise EvaluationInputError(
        f"{model_uri!r} is not a registered version: give models:/NAME/VERSION or models:/NAME@ALIAS"
    )


def resolve_model_uri(model_uri: str) -> tuple[str, str]:
    """The registered (name, version) a ``models:/`` URI names; an alias is asked of MLflow's registry.

    Raises:
        EvaluationInputError: The URI is malformed, or MLflow knows no such alias.
    """
    name, version, alias = parse_model_uri(model_uri)
    if version:
        return name, version
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return name, str(MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        raise EvaluationInputError(f"{model_uri}: MLflow cannot resolve the alias: {exc.message}") from exc


def is_frame(data: Any) -> bool:
    """Whether ``data`` is a DataFrame (pandas, or anything with ``columns``, ``dtypes`` and ``itertuples``)."""
    return all(hasattr(data, a) for a in ("columns", "dtypes", "itertuples"))


@dataclass(frozen=True)
class HoldOut:
    """The hold-out data as MLflow gets it, and its full-content SHA-256, name and source for the ledger."""

    frame: Any
    sha256: str
    name: str
    source: str
    original: Any = field(repr=False, default=None)


def load_hold_out(data: Any, targets: str, name: str | None = None, source: str | None = None) -> HoldOut:
    """Reads the hold-out data (a pandas DataFrame, or a CSV or Parquet file) and digests its full content.

    A file's SHA-256 is that of its bytes (as :func:`~modelledger.mlflow.log_dataset` computes it for a
    file), a DataFrame's that of its canonical serialisation. A file is read once: the frame is parsed from
    the very bytes that are hashed.

    Raises:
        EvaluationInputError: The file is missing or unreadable, the data is empty, or ``targets`` is no column.
    """
    import pandas as pd

    if is_frame(data):
        frame, sha = data, dataframe_digest(data)
        label, where = name or "holdout", source or "dataframe"
    elif isinstance(data, (str, Path)):
        path = Path(data)
        if not path.is_file():
            raise EvaluationInputError(f"{path}: no such file (give a CSV or Parquet file, or a DataFrame)")
        try:
            # One read: the bytes hashed are the bytes parsed (a file changed meanwhile cannot split the two).
            raw = path.read_bytes()
            sha = hashlib.sha256(raw).hexdigest()  # as dataset_digest digests one file: its bytes
            parquet = path.suffix.lower() in (".parquet", ".pq")
            frame = pd.read_parquet(io.BytesIO(raw)) if parquet else pd.read_csv(io.BytesIO(raw))
        except (OSError, ValueError) as exc:
            raise EvaluationInputError(f"{path}: cannot read the hold-out data: {exc}") from exc
        label, where = name or path.name, source or str(path.resolve())
    else:
        raise EvaluationInputError(f"the hold-out data must be a DataFrame or a file, not {type(data).__name__}")
    if not targets:
        raise EvaluationInputError("name the target column (targets=...)")
    if targets not in [str(c) for c in frame.columns]:
        columns = ", ".join(str(c) for c in frame.columns[:20])
        raise EvaluationInputError(f"the hold-out data has no column {targets!r} (columns: {columns})")
    if len(frame) == 0:
        raise EvaluationInputError("the hold-out data has no rows")
    return HoldOut(frame, sha, label[: LIMITS.label_chars], where[: LIMITS.uri_chars], data)


def evaluation_options(config: Any, extra_metrics: Any = None) -> dict[str, Any]:
    """The options that make two evaluations differ, as the key holds them: the config and the extra metrics' names.

    Raises:
        EvaluationInputError: The config does not serialise as JSON (a value would collide with its ``str``), or
            an extra metric has no name.
    """
    names = []
    for metric in extra_metrics or ():
        name = getattr(metric, "name", None) or getattr(metric, "__name__", None)
        if not isinstance(name, str) or not name:
            raise EvaluationInputError(f"extra metric {metric!r} has no name")
        names.append(name)
    try:
        json.dumps(config, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        plain = "str, number, bool, null, list, dict"
        raise EvaluationInputError(f"evaluator_config must be plain JSON ({plain}): {exc}") from exc
    return {"config": config, "extraMetrics": sorted(names)}


def evaluation_key(
    name: str,
    version: str,
    model_digest: str,
    dataset: str,
    targets: str,
    model_type: str,
    msp_id: str,
    config: Any,
    extra_metrics: Any = None,
) -> str:
    """The identity of an evaluation: the same key is the same evaluation (a rerun finds its run by it).

    Raises:
        EvaluationInputError: The options do not serialise (:func:`evaluation_options`).
    """
    doc = {
        **evaluation_options(config, extra_metrics),
        "dataset": dataset,
        "evaluator": msp_id,
        "modelDigest": model_digest,
        "modelType": model_type,
        "name": name,
        "targets": targets,
        "version": version,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, allow_nan=False).encode()).hexdigest()


def ledger_metrics(metrics: dict[str, Any]) -> list[Metric]:
    """MLflow's metrics as the ledger takes them: finite numbers only, sorted by key.

    Raises:
        EvaluationError: More metrics than the chaincode accepts.
    """
    out = []
    for key, value in sorted(metrics.items()):
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        # The ledger takes finite, normal numbers (a subnormal one, below 2.2e-308, is refused there).
        if math.isfinite(number) and (number == 0 or abs(number) >= sys.float_info.min):
            out.append(Metric(str(key), number))
    if not out:
        raise EvaluationError("the evaluation produced no numeric metric to record")
    most = LIMITS.evaluation_metrics
    if len(out) > most:
        raise EvaluationError(f"the evaluation produced {len(out)} metrics; the ledger takes at most {most}")
    return out

"""``modelledger.mlflow``: the one call a data scientist adds to make training data provenance cryptographic.

:func:`log_dataset` hashes the full content of a dataset (files, folders or a
pandas DataFrame; never MLflow's sampled digest), logs it as an input of the
active MLflow run as MLflow always does, and tags that input with the
SHA-256. When a model of that run is registered, the bridge registers the
dataset on the ledger (as its organisation's registrar) and the model's
ledger record references it by digest. Passing ``registry`` registers it on
the ledger at once, as the caller's own Fabric identity.

It also names the MLflow tags the bridge writes on a registered version (``TAG_*``,
with the values of ``ledger.status`` as ``STATUS_*``) and the two tags
:func:`log_dataset` puts on a run's input (``TAG_DATASET_SHA256``, ``TAG_DATASET_SOURCE``):
scripts use these constants rather than the strings (docs/bridge.md explains each).

:func:`evaluate` is the evaluator's call: it verifies a registered version against the ledger,
evaluates it with ``mlflow.models.evaluate`` on hold-out data, stores the artefacts write-once and
records the verdict on the ledger (docs/evaluation.md). It and its result and errors are imported
on first use (:mod:`modelledger.mlflow.evaluator`), so ``log_dataset`` does not pay for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelledger.mlops.bridge.tags import (
    STATUS_ANCHORED,
    STATUS_CONFLICT,
    STATUS_FAILED,
    STATUS_PENDING,
    TAG_ALIASES_REMOVED,
    TAG_APPROVALS,
    TAG_BLOCK,
    TAG_DATASET_SHA256,
    TAG_DATASET_SOURCE,
    TAG_DEPLOYMENTS,
    TAG_DIGEST,
    TAG_ERROR,
    TAG_EVALUATION,
    TAG_NOTE,
    TAG_STATUS,
    TAG_STORAGE,
    TAG_TX,
)
from modelledger.mlops.store.digest import dataframe_digest, dataset_digest
from modelledger.runtime.lazy_exports import lazy_exports
from modelledger.sdk.registry.limits import LIMITS

# What a data scientist imports: the one call, its result, and the tag vocabulary.
__all__ = [
    "STATUS_ANCHORED",
    "STATUS_CONFLICT",
    "STATUS_FAILED",
    "STATUS_PENDING",
    "TAG_ALIASES_REMOVED",
    "TAG_APPROVALS",
    "TAG_BLOCK",
    "TAG_DATASET_SHA256",
    "TAG_DATASET_SOURCE",
    "TAG_DEPLOYMENTS",
    "TAG_DIGEST",
    "TAG_ERROR",
    "TAG_EVALUATION",
    "TAG_NOTE",
    "TAG_STATUS",
    "TAG_STORAGE",
    "TAG_TX",
    "EvaluationError",
    "EvaluationInputError",
    "EvaluationVerdict",
    "EvaluatorNotIndependent",
    "HoldOutIsTrainingData",
    "LoggedDataset",
    "ModelNotVerified",
    "evaluate",
    "log_dataset",
]

# The evaluator's names, imported from modelledger.mlflow.evaluator when first read.
_HOMES = {
    name: "evaluator"
    for name in (
        "EvaluationError",
        "EvaluationInputError",
        "EvaluationVerdict",
        "EvaluatorNotIndependent",
        "HoldOutIsTrainingData",
        "ModelNotVerified",
        "evaluate",
    )
}
__getattr__, __dir__ = lazy_exports(__name__, _HOMES, __all__)


class LoggedDataset:
    """What :func:`log_dataset` logged: name, full-content SHA-256 and source."""

    def __init__(self, name: str, sha256: str, source: str) -> None:
        self.name = name
        self.sha256 = sha256
        self.source = source

    def __repr__(self) -> str:
        return f"LoggedDataset(name={self.name!r}, sha256={self.sha256!r}, source={self.source!r})"


def _is_frame(data: Any) -> bool:
    return all(hasattr(data, a) for a in ("columns", "dtypes", "itertuples"))


def log_dataset(
    data: str | Path | Sequence[str | Path] | Any,
    name: str | None = None,
    source: str | None = None,
    context: str = "training",
    targets: str | None = None,
    registry: Any | None = None,
) -> LoggedDataset:
    """Logs ``data`` as an input of the active MLflow run, with its full-content SHA-256.

    Args:
        data: A file, a folder, several of them, or a pandas DataFrame.
        name: Dataset name (default: the file or folder name, or ``dataframe``).
        source: Where the data came from, as recorded on the ledger (default: the
            absolute path(s); for a DataFrame, ``"dataframe"`` unless given).
        context: MLflow's input context (``training``, ``validation`` ...).
        targets: For a DataFrame, the target column (as in ``mlflow.data.from_pandas``).
        registry: A :class:`~modelledger.sdk.registry.client.RegistryClient` to register the
            dataset on the ledger now (otherwise the bridge does when it anchors a model).

    Returns:
        The name, SHA-256 and source that were logged.

    Raises:
        ValueError: ``data`` is none of the accepted kinds, or a path does not exist.
    """
    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    if _is_frame(data):
        sha = dataframe_digest(data)
        label = name or "dataframe"
        where = source or "dataframe"
        # ``source`` is free text for the ledger; MLflow would try to resolve it as a URI, so it only goes in the tag.
        dataset = mlflow.data.from_pandas(data, name=label, targets=targets)
    else:
        paths = [Path(data)] if isinstance(data, (str, Path)) else [Path(p) for p in data]
        if not paths:
            raise ValueError("log_dataset needs at least one file or folder")
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise ValueError(f"log_dataset: no such file or folder: {', '.join(missing)}")
        sha = dataset_digest(paths)
        label = name or paths[0].name
        where = source or ",".join(str(p.resolve()) for p in paths)
        dataset = MetaDataset(source=resolve_dataset_source(str(paths[0].resolve())), name=label)
    ledger_source = log_input_digest(dataset, context, sha, where)
    if registry is not None:
        registry.register_dataset(label, sha, ledger_source)
    return LoggedDataset(label, sha, where)


def log_input_digest(dataset: Any, context: str, sha256: str, source: str) -> str:
    """Logs an MLflow dataset as an input of the active run, tagged with a SHA-256 already computed.

    For a caller that has read the data's bytes once and digested them (``evaluate``): nothing is read again.

    Returns:
        The source as tagged (cut to the chaincode's limit on a dataset source).
    """
    import mlflow

    ledger_source = source[: LIMITS.uri_chars]  # the chaincode's limit on a dataset source
    mlflow.log_input(dataset, context=context, tags={TAG_DATASET_SHA256: sha256, TAG_DATASET_SOURCE: ledger_source})
    return ledger_source

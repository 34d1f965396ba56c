"""What the ledger records about where a model version came from, read from MLflow and the model folder.

- hyperparameters and metrics of the run (and of the logged model, which win);
- the MLflow run id, source, logged-model id, and the MLflow user;
- the framework (the model's MLmodel flavor and its version) and the pinned
  libraries of its ``requirements.txt``;
- the training datasets: the run's dataset inputs that
  :func:`modelledger.mlflow.log_dataset` logged with a full-content SHA-256
  (input tags ``modelledger.sha256`` and ``modelledger.source``). Inputs
  logged otherwise carry only MLflow's sampled digest and are left out.

The model's name and version must be in the ledger's name class
(:mod:`modelledger.sdk.registry.names`, the chaincode's rule):
:func:`ledger_name` says so before anything is read.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from modelledger.mlops.bridge.tags import TAG_DATASET_SHA256, TAG_DATASET_SOURCE
from modelledger.sdk.registry.limits import LIMITS
from modelledger.sdk.registry.names import check_model_name, check_model_version
from modelledger.sdk.registry.records import DatasetRef, Framework, Library, Metric, MLflowSource, Param

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^;\s]+)")


# The registry chaincode's limits (sdk/registry/limits.json); provenance beyond them is left out, and said so.
MAX_PARAMS = LIMITS.params
MAX_METRICS = LIMITS.metrics
MAX_LIBRARIES = LIMITS.libraries
MAX_DATASETS = LIMITS.datasets
MAX_PARAM_VALUE = LIMITS.param_value_chars
MAX_LABEL = LIMITS.label_chars
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Provenance:
    """Everything but the digests and the storage pointer; ``notes`` says what did not fit on the ledger."""

    mlflow: MLflowSource
    framework: Framework
    libraries: list[Library]
    params: list[Param]
    metrics: list[Metric]
    datasets: list[DatasetRef]
    notes: tuple[str, ...] = ()


def ledger_name(model_version: Any) -> tuple[str, str]:
    """The name and version under which the ledger records an MLflow model version.

    Args:
        model_version: MLflow's ``ModelVersion`` (``name``, ``version``).

    Raises:
        InvalidNameError: The name or version is outside the ledger's name class: the
            chaincode would refuse the registration, so nothing is worth fetching or signing.
    """
    return check_model_name(str(model_version.name)), check_model_version(str(model_version.version))


def _fit(items: list[Any], keep: Any, limit: int, what: str, notes: list[str]) -> list[Any]:
    fitting = [x for x in items if keep(x)]
    if len(fitting) < len(items):
        notes.append(f"{len(items) - len(fitting)} {what} too long for the ledger left out")
    if len(fitting) > limit:
        notes.append(f"{len(fitting) - limit} {what} beyond the first {limit} left out")
    return fitting[:limit]


def framework_of(model_dir: Path) -> Framework:
    """The model's flavor (other than ``python_function``) and its version, from ``MLmodel``.

    The ledger needs both: a model with only the ``python_function`` flavor is
    that flavor with its Python version, and anything not said is ``unknown``.
    """
    try:
        doc = yaml.safe_load((model_dir / "MLmodel").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return Framework(name=UNKNOWN, version=UNKNOWN)
    flavors: dict[str, Any] = (doc.get("flavors") or {}) if isinstance(doc, dict) else {}
    named = [(n, c) for n, c in flavors.items() if isinstance(c, dict)]
    for name, conf in [
        *[x for x in named if x[0] != "python_function"],
        *[x for x in named if x[0] == "python_function"],
    ]:
        version = next((str(v) for k, v in sorted(conf.items()) if k.endswith("_version") and v), "")
        return Framework(name=name[:MAX_LABEL], version=(version or UNKNOWN)[:MAX_LABEL])
    return Framework(name=UNKNOWN, version=UNKNOWN)


def libraries_of(model_dir: Path) -> list[Library]:
    """The ``name==version`` pins of ``requirements.txt`` (other lines are not versions and are skipped)."""
    try:
        lines = (model_dir / "requirements.txt").read_text().splitlines()
    except OSError:
        return []
    seen: dict[str, str] = {}
    for line in lines:
        m = _PIN.match(line.strip())
        if m and m.group(1).lower() not in seen:
            seen[m.group(1).lower()] = m.group(2)
    return [Library(name=n, version=v) for n, v in sorted(seen.items())]


def datasets_of(run: Any) -> list[DatasetRef]:
    """Dataset inputs of the run that carry a full-content SHA-256 (see the module docstring)."""
    refs: dict[str, DatasetRef] = {}
    inputs = getattr(getattr(run, "inputs", None), "dataset_inputs", None) or []
    for di in inputs:
        tags = {t.key: t.value for t in (di.tags or [])}
        sha = tags.get(TAG_DATASET_SHA256, "")
        if not _HEX64.fullmatch(sha):
            continue
        source = tags.get(TAG_DATASET_SOURCE) or str(di.dataset.source or "")
        refs.setdefault(sha, DatasetRef(name=di.dataset.name or sha[:12], sha256=sha, source=source or "unknown"))
    return sorted(refs.values(), key=lambda r: r.sha256)


def ledger_datasets(run: Any | None, notes: list[str] | None = None) -> list[DatasetRef]:
    """The run's datasets that the model's ledger record references (those that fit the chaincode's limits).

    The bridge registers exactly these before the model version; ``notes`` gets what was left out.
    """
    found = datasets_of(run) if run is not None else []
    fits = lambda x: len(x.name) <= MAX_LABEL and len(x.source) <= LIMITS.uri_chars  # noqa: E731
    return _fit(found, fits, MAX_DATASETS, "datasets", [] if notes is None else notes)


def _params(*sources: dict[str, str] | None) -> list[Param]:
    merged: dict[str, str] = {}
    for s in sources:
        merged.update({str(k): str(v) for k, v in (s or {}).items()})
    return [Param(key=k, value=v) for k, v in sorted(merged.items())]


def _metrics(*sources: dict[str, float] | None) -> list[Metric]:
    merged: dict[str, float] = {}
    for s in sources:
        merged.update({str(k): float(v) for k, v in (s or {}).items()})
    return [Metric(key=k, value=v) for k, v in sorted(merged.items()) if math.isfinite(v)]


def logged_model_id(source: str | None) -> str:
    """The logged-model id of a ``models:/m-<id>`` source (MLflow 3), or ""."""
    rest = (source or "").removeprefix("models:/")
    return rest if rest != (source or "") and rest.startswith("m-") and "/" not in rest else ""


def read_sources(mlflow: Any, model_version: Any) -> tuple[Any | None, Any | None]:
    """The run and the logged model behind a version (either may be None), read through ``mlflow``."""
    mv = model_version
    run = mlflow.get_run(mv.run_id) if mv.run_id else None
    logged = None
    model_id = getattr(mv, "model_id", None) or logged_model_id(mv.source)
    if model_id:
        logged = mlflow.get_logged_model(model_id)
        if run is None and getattr(logged, "source_run_id", None):
            run = mlflow.get_run(logged.source_run_id)
    return run, logged


def collect(model_version: Any, run: Any | None, logged_model: Any | None, model_dir: Path) -> Provenance:
    """Provenance of one MLflow model version.

    Args:
        model_version: MLflow's ``ModelVersion`` (name, version, source, run_id, user_id).
        run: The run that produced the model, or None.
        logged_model: MLflow 3's ``LoggedModel`` behind a ``models:/m-…`` source, or None.
        model_dir: The fetched model folder.

    Raises:
        InvalidNameError: See :func:`ledger_name`.
    """
    ledger_name(model_version)
    run_params = run.data.params if run is not None else None
    run_metrics = run.data.metrics if run is not None else None
    lm_params = getattr(logged_model, "params", None) if logged_model is not None else None
    lm_metrics = None
    if logged_model is not None:
        lm_metrics = {m.key: m.value for m in (getattr(logged_model, "metrics", None) or [])}
    run_id = model_version.run_id or (run.info.run_id if run is not None else "")
    user = model_version.user_id or (run.info.user_id if run is not None else "") or ""
    notes: list[str] = []
    short = lambda *texts: all(len(t) <= MAX_LABEL for t in texts)  # noqa: E731
    fits_value = lambda x: len(x.value) <= MAX_PARAM_VALUE  # noqa: E731
    libraries = _fit(libraries_of(model_dir), lambda x: short(x.name, x.version), MAX_LIBRARIES, "libraries", notes)
    params = _fit(_params(run_params, lm_params), fits_value, MAX_PARAMS, "params", notes)
    metrics = _fit(_metrics(run_metrics, lm_metrics), lambda x: True, MAX_METRICS, "metrics", notes)
    datasets = ledger_datasets(run, notes)
    return Provenance(
        mlflow=MLflowSource(
            model_id=getattr(logged_model, "model_id", "") or "",
            run_id=run_id or "",
            source=model_version.source or "",
            user=user[:MAX_LABEL],
        ),
        framework=framework_of(model_dir),
        libraries=libraries,
        params=params,
        metrics=metrics,
        datasets=datasets,
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------- as the job keeps it
# Read from the model's files for the provenance (framework, pinned libraries); larger ones are not read.
PROVENANCE_FILES = ("MLmodel", "requirements.txt")
MAX_PROVENANCE_FILE = 1024 * 1024


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

"""Typed records of the registry chaincode (see chaincode/CONTRACT.md).

Why this module is long: it mirrors ``chaincode/registry/records.go``, one
dataclass per Go struct, so that the two can be read (and checked) side by
side; splitting it would split that mirror.

Field names are snake_case here and camelCase on the ledger; :func:`from_json`
and :func:`to_json` convert, recursively, using the dataclasses' type hints.
``chaincode/registry/testdata/records.json`` and ``tests/unit/test_sdk_records.py``
keep the dataclasses equal to the Go records field for field, so the chaincode
of this release sends no field they lack. A field from a newer chaincode is
kept, not dropped: :func:`unknown_fields` returns it, :func:`to_json` writes it
back, and a warning names it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _convert(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(inner[0], value)
    if origin is list:
        (item,) = typing.get_args(tp)
        return [_convert(item, v) for v in value]
    if dataclasses.is_dataclass(tp):
        return from_json(tp, value)  # type: ignore[arg-type]
    if tp is float and isinstance(value, int):
        return float(value)
    return value


_UNKNOWN = "_unknown_fields"
_warned: set[tuple[str, str]] = set()
log = logging.getLogger("modelledger.sdk.registry")


def from_json(cls: type[T], data: dict[str, Any]) -> T:
    """Builds the dataclass ``cls`` from a chaincode JSON object; absent optional fields take their defaults.

    A field ``cls`` does not have (sent by a newer chaincode) is kept, not dropped:
    :func:`unknown_fields` returns it, :func:`to_json` writes it back, and a warning
    names it (once per record type and field).
    """
    hints = typing.get_type_hints(cls)
    kwargs = {}
    known = set()
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        key = _camel(f.name)
        known.add(key)
        if key in data:
            kwargs[f.name] = _convert(hints[f.name], data[key])
    record = cls(**kwargs)
    unknown = {k: v for k, v in data.items() if k not in known}
    if unknown:
        object.__setattr__(record, _UNKNOWN, unknown)  # not a field: equality and the conformance test ignore it
        new = sorted(k for k in unknown if (cls.__name__, k) not in _warned)
        if new:
            _warned.update((cls.__name__, k) for k in new)
            log.warning(
                "the chaincode's %s record has fields this SDK does not know: %s (kept as read; a newer chaincode "
                "than this modelledger?)",
                cls.__name__,
                ", ".join(new),
            )
    return record


def unknown_fields(record: Any) -> dict[str, Any]:
    """The fields of the chaincode's JSON that ``record``'s dataclass lacks (from a newer chaincode), as read.

    Only the record itself: a record nested in it keeps its own.
    """
    return dict(getattr(record, _UNKNOWN, {}))


def to_json(record: Any) -> Any:
    """The chaincode JSON form (camelCase keys) of a record, list or value."""
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        known = {_camel(f.name): to_json(getattr(record, f.name)) for f in dataclasses.fields(record)}
        return {**known, **unknown_fields(record)}
    if isinstance(record, list):
        return [to_json(v) for v in record]
    return record


@dataclass(frozen=True)
class Actor:
    """Who did something: taken by the chaincode from the transaction's creator."""

    cert_fingerprint: str = ""
    msp_id: str = ""
    role: str = ""


@dataclass(frozen=True)
class Change:
    """The last change of a record."""

    action: str = ""
    actor: Actor = field(default_factory=Actor)
    time: str = ""
    tx_id: str = ""


@dataclass(frozen=True)
class Framework:
    name: str = ""
    version: str = ""


@dataclass(frozen=True)
class Library:
    name: str = ""
    version: str = ""


@dataclass(frozen=True)
class ManifestFile:
    """One file of a model: path relative to the model folder, size, SHA-256."""

    path: str = ""
    sha256: str = ""
    size: int = 0


@dataclass(frozen=True)
class Manifest:
    files: list[ManifestFile] = field(default_factory=list)


@dataclass(frozen=True)
class Param:
    key: str = ""
    value: str = ""


@dataclass(frozen=True)
class Metric:
    key: str = ""
    value: float = 0.0


@dataclass(frozen=True)
class MLflowSource:
    """Where the version came from in MLflow, and the MLflow user who registered it."""

    model_id: str = ""
    run_id: str = ""
    source: str = ""
    user: str = ""


@dataclass(frozen=True)
class Storage:
    """The write-once copy of the artifacts."""

    bucket: str = ""
    key: str = ""
    sha256: str = ""
    version_id: str = ""


@dataclass(frozen=True)
class DatasetRef:
    """A training dataset of a model version.

    ``registered`` is True when the registrant's organisation had claimed the
    sha256 with this name and source; False (flagged) when it had no claim, or
    one with another name or source.
    """

    name: str = ""
    sha256: str = ""
    source: str = ""
    registered: bool = False


@dataclass(frozen=True)
class Approval:
    actor: Actor = field(default_factory=Actor)
    comment: str = ""
    decision: str = ""
    msp_id: str = ""
    time: str = ""
    tx_id: str = ""


@dataclass(frozen=True)
class Deployment:
    actor: Actor = field(default_factory=Actor)
    endpoint: str = ""
    environment: str = ""
    time: str = ""
    tx_id: str = ""


@dataclass(frozen=True)
class Revocation:
    actor: Actor = field(default_factory=Actor)
    reason: str = ""
    time: str = ""
    tx_id: str = ""


@dataclass(frozen=True)
class MetricThreshold:
    """One bound on a named metric: ``min`` and/or ``max`` (None: no bound on that side; at least one is set)."""

    metric: str = ""
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class ModelPolicyInput:
    """What ``SetModelPolicy`` takes: thresholds (unique metrics), passes required, whether the evaluator must be
    of another organisation than the registrant."""

    thresholds: list[MetricThreshold]
    required_passes: int = 1
    independent_evaluator: bool = False

    def to_json(self) -> dict[str, Any]:
        """The chaincode input: a bound that is not set is left out (never ``null``)."""
        doc = to_json(self)
        doc["thresholds"] = [{k: v for k, v in t.items() if v is not None} for t in doc["thresholds"]]
        return doc


@dataclass(frozen=True)
class ModelPolicy:
    """The model's policy as the ledger holds it; ``version`` counts its changes from 1.

    Thresholds are sorted by metric. An evaluation passes when every threshold
    holds; a version needs ``required_passes`` passing evaluations judged by the
    current ``version`` before it can be approved or deployed.
    """

    version: int = 0
    thresholds: list[MetricThreshold] = field(default_factory=list)
    required_passes: int = 0
    independent_evaluator: bool = False
    last_change: Change = field(default_factory=Change)


@dataclass(frozen=True)
class ModelVersionInput:
    """What ``RegisterModelVersion`` takes (the registrant is never part of it)."""

    name: str
    version: str
    model_digest: str
    manifest: Manifest
    manifest_digest: str
    storage: Storage
    mlflow: MLflowSource = field(default_factory=MLflowSource)
    framework: Framework = field(default_factory=Framework)
    libraries: list[Library] = field(default_factory=list)
    params: list[Param] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)
    datasets: list[DatasetRef] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The chaincode input: dataset references without the ``registered`` flag."""
        doc = to_json(self)
        for d in doc["datasets"]:
            d.pop("registered", None)
        return doc


@dataclass(frozen=True)
class EvaluationInput:
    """What ``RecordEvaluation`` takes (the evaluator is never part of it: the chaincode takes it from the certificate).

    Attributes:
        dataset_sha256: The hold-out dataset's full SHA-256; it must be registered, and no training dataset of
            the version.
        run_id: The MLflow run of the evaluation.
        artifacts_digest: SHA-256 (64 lowercase hex) of the evaluation's artefacts bundle.
        metrics: The measured metrics (unique keys).
        artifacts_location: Where the write-once copy of the artefacts is (may be empty).
    """

    dataset_sha256: str
    run_id: str
    artifacts_digest: str
    metrics: list[Metric]
    artifacts_location: str = ""


@dataclass(frozen=True)
class Evaluation:
    """One evaluation of a version on a hold-out dataset, with the verdict the chaincode computed.

    ``result`` is ``PASSED``, ``FAILED`` or ``NO_POLICY`` (:mod:`~modelledger.sdk.registry.statuses`);
    ``policy`` is the policy it was judged by (None: the model had none); ``failures`` says, one line per
    threshold, why it failed (empty otherwise).
    """

    result: str = ""
    metrics: list[Metric] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    policy: ModelPolicy | None = None
    dataset_sha256: str = ""
    run_id: str = ""
    artifacts_digest: str = ""
    artifacts_location: str = ""
    evaluator: Actor = field(default_factory=Actor)
    time: str = ""
    tx_id: str = ""


@dataclass(frozen=True)
class ModelVersion:
    """A registered model version as the ledger holds it.

    ``approval_orgs`` is the approval set when it was registered (empty for a
    version registered before chaincode 1.3.0 or while the settings were unset:
    then the current approval set decides). ``evaluations`` are in the order they were recorded (empty for a
    version recorded before chaincode 1.4.0 or never evaluated).
    """

    name: str = ""
    version: str = ""
    owner: str = ""
    status: str = ""
    model_digest: str = ""
    manifest: Manifest = field(default_factory=Manifest)
    manifest_digest: str = ""
    storage: Storage = field(default_factory=Storage)
    mlflow: MLflowSource = field(default_factory=MLflowSource)
    framework: Framework = field(default_factory=Framework)
    libraries: list[Library] = field(default_factory=list)
    params: list[Param] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)
    datasets: list[DatasetRef] = field(default_factory=list)
    registrant: Actor = field(default_factory=Actor)
    registered_at: str = ""
    registered_tx_id: str = ""
    approval_orgs: list[str] = field(default_factory=list)
    evaluations: list[Evaluation] = field(default_factory=list)
    approvals: list[Approval] = field(default_factory=list)
    deployments: list[Deployment] = field(default_factory=list)
    revocation: Revocation | None = None
    last_change: Change = field(default_factory=Change)


@dataclass(frozen=True)
class Model:
    """A registered model name: its owner organisation, read grants and evaluation policy (None: no policy)."""

    name: str = ""
    owner: str = ""
    grants: list[str] = field(default_factory=list)
    policy: ModelPolicy | None = None
    registered_at: str = ""
    registered_tx_id: str = ""
    last_change: Change = field(default_factory=Change)


@dataclass(frozen=True)
class Dataset:
    """One organisation's claim on a dataset: ``owner`` is the claiming organisation's MSP id."""

    name: str = ""
    sha256: str = ""
    source: str = ""
    schema_summary: str = ""
    owner: str = ""
    registrant: Actor = field(default_factory=Actor)
    registered_at: str = ""
    registered_tx_id: str = ""


@dataclass(frozen=True)
class DeployedVersion:
    """Which version an environment runs."""

    name: str = ""
    version: str = ""
    environment: str = ""
    endpoint: str = ""
    status: str = ""
    actor: Actor = field(default_factory=Actor)
    time: str = ""
    tx_id: str = ""


@dataclass(frozen=True)
class Settings:
    approval_orgs: list[str] = field(default_factory=list)
    strict_datasets: bool = False
    last_change: Change | None = None


@dataclass(frozen=True)
class RemovalVote:
    """One organisation's vote (by one of its admins) to remove another from the approval set."""

    msp_id: str = ""
    reason: str = ""
    actor: Actor = field(default_factory=Actor)
    time: str = ""
    tx_id: str = ""


@dataclass(frozen=True)
class ApprovalSetRemoval:
    """The open proposal to remove ``msp_id`` from the approval set; ``removed`` once the last vote removed it.

    ``approval_orgs`` is the approval set when the proposal opened (``msp_id``
    included) and ``settings_tx_id`` the transaction that had last changed the
    settings then: any later change of the settings voids the proposal.
    ``needed`` is a majority of that whole set.
    """

    msp_id: str = ""
    approval_orgs: list[str] = field(default_factory=list)
    settings_tx_id: str = ""
    needed: int = 0
    removed: bool = False
    votes: list[RemovalVote] = field(default_factory=list)


@dataclass(frozen=True)
class ModelRef:
    name: str = ""
    version: str = ""


@dataclass(frozen=True)
class ModelVersionPage:
    records: list[ModelVersion] = field(default_factory=list)
    bookmark: str = ""
    fetched: int = 0


@dataclass(frozen=True)
class HistoryEntry:
    tx_id: str = ""
    time: str = ""
    action: str = ""
    actor: Actor | None = None
    status: str = ""
    is_delete: bool = False


@dataclass(frozen=True)
class AccessLogEntry:
    name: str = ""
    version: str = ""
    decision: str = ""
    purpose: str = ""
    reason: str = ""
    actor: Actor = field(default_factory=Actor)
    time: str = ""
    tx_id: str = ""


@dataclass(frozen=True)
class AccessLogPage:
    records: list[AccessLogEntry] = field(default_factory=list)
    bookmark: str = ""
    fetched: int = 0


@dataclass(frozen=True)
class ArtifactAccess:
    """The decision of ``AuthorizeArtifactAccess``; ``storage`` only when granted."""

    name: str = ""
    version: str = ""
    decision: str = ""
    purpose: str = ""
    reason: str = ""
    status: str = ""
    model_digest: str = ""
    manifest_digest: str = ""
    storage: Storage | None = None
    tx_id: str = ""

    @property
    def granted(self) -> bool:
        return self.decision == "GRANTED"


# ---------------------------------------------------------------------- event payloads
@dataclass(frozen=True)
class ModelVersionEvent:
    """Payload of the ``ModelVersion*`` events: ``msp_id`` is the caller's organisation, ``status`` the new status.

    ``environment`` is set for ``ModelVersionDeployed`` only, ``result`` (``PASSED``, ``FAILED``, ``NO_POLICY``)
    for ``ModelVersionEvaluated`` only.
    """

    name: str = ""
    version: str = ""
    status: str = ""
    msp_id: str = ""
    environment: str = ""
    result: str = ""
    tx_id: str = ""


@dataclass(frozen=True)
class DatasetEvent:
    """Payload of ``DatasetRegistered``: ``msp_id`` is the claiming organisation."""

    name: str = ""
    sha256: str = ""
    msp_id: str = ""
    tx_id: str = ""


@dataclass(frozen=True)
class AccessEvent:
    """Payload of ``AccessGranted`` and ``AccessRevoked``: ``msp_id`` is the organisation whose access changed."""

    name: str = ""
    msp_id: str = ""
    tx_id: str = ""


@dataclass(frozen=True)
class ArtifactAccessEvent:
    """Payload of ``ArtifactAccess``: ``msp_id`` is the caller's organisation."""

    name: str = ""
    version: str = ""
    decision: str = ""
    msp_id: str = ""
    tx_id: str = ""


@dataclass(frozen=True)
class ModelPolicyEvent:
    """Payload of ``ModelPolicyChanged``: ``msp_id`` is the owner organisation, ``policy_version`` the new version."""

    name: str = ""
    policy_version: int = 0
    msp_id: str = ""
    tx_id: str = ""


@dataclass(frozen=True)
class SettingsEvent:
    """Payload of ``SettingsChanged``."""

    approval_orgs: list[str] = field(default_factory=list)
    strict_datasets: bool = False
    tx_id: str = ""


@dataclass(frozen=True)
class RemovalEvent:
    """Payload of ``ApprovalSetRemovalProposed`` and ``ApprovalSetMemberRemoved``.

    ``msp_id`` is the organisation voted out, ``votes`` the MSP ids that voted for it,
    ``approval_orgs`` the approval set after the call.
    """

    msp_id: str = ""
    needed: int = 0
    votes: list[str] = field(default_factory=list)
    approval_orgs: list[str] = field(default_factory=list)
    tx_id: str = ""


EVENT_PAYLOADS: dict[str, type] = {
    "ModelVersionRegistered": ModelVersionEvent,
    "ModelVersionApproved": ModelVersionEvent,
    "ModelVersionRejected": ModelVersionEvent,
    "ModelVersionRevoked": ModelVersionEvent,
    "ModelVersionDeployed": ModelVersionEvent,
    "ModelVersionEvaluated": ModelVersionEvent,
    "ModelPolicyChanged": ModelPolicyEvent,
    "DatasetRegistered": DatasetEvent,
    "AccessGranted": AccessEvent,
    "AccessRevoked": AccessEvent,
    "ArtifactAccess": ArtifactAccessEvent,
    "SettingsChanged": SettingsEvent,
    "ApprovalSetRemovalProposed": RemovalEvent,
    "ApprovalSetMemberRemoved": RemovalEvent,
}
"""The payload record of each event the registry chaincode emits, by event name."""


def event_payload(name: str, payload: bytes) -> Any:
    """The typed payload of a registry chaincode event.

    Raises:
        ValueError: ``name`` is not an event of the registry chaincode, or the payload is not a JSON object.
    """
    cls = EVENT_PAYLOADS.get(name)
    if cls is None:
        known = ", ".join(sorted(EVENT_PAYLOADS))
        raise ValueError(f"{name!r} is not an event of the registry chaincode (one of: {known})")
    try:
        data = json.loads(payload)
    except ValueError as exc:
        raise ValueError(f"the payload of event {name} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"the payload of event {name} is not a JSON object")
    return from_json(cls, data)

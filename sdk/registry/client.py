"""The typed registry client: one method per function of the registry chaincode.

Refusals of the chaincode come back from the Gateway as endorse or evaluate
errors whose per-peer details hold the chaincode's message, which starts with
its class (``INVALID:``, ``NOT_AUTHORIZED:``, ``NOT_FOUND:``, ``CONFLICT:``).
:class:`RegistryClient` raises the matching typed exception, chained to the
Gateway error, with the chaincode's message.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from modelledger.sdk.gateway.errors import EndorseError, EvaluateError, GatewayError, TransactionError
from modelledger.sdk.gateway.gateway import Contract, Network
from modelledger.sdk.gateway.transaction import Commit, Status
from modelledger.sdk.registry.records import (
    AccessLogPage,
    ApprovalSetRemoval,
    ArtifactAccess,
    Dataset,
    DeployedVersion,
    Evaluation,
    EvaluationInput,
    HistoryEntry,
    Model,
    ModelPolicyInput,
    ModelRef,
    ModelVersion,
    ModelVersionInput,
    ModelVersionPage,
    Settings,
    from_json,
    to_json,
)

T = TypeVar("T")


class RegistryError(GatewayError):
    """The registry chaincode refused a call.

    Attributes:
        message: The chaincode's message, e.g. ``NOT_FOUND: model "m" version "1"``.
        transaction_id: The refused transaction's id.
    """

    prefix = ""

    def __init__(self, message: str, transaction_id: str = "") -> None:
        self.message = message
        self.transaction_id = transaction_id
        super().__init__(message)


class Invalid(RegistryError):
    """The input breaks a rule (``INVALID:``)."""

    prefix = "INVALID:"


class NotAuthorized(RegistryError):
    """The caller's role or organisation may not do this (``NOT_AUTHORIZED:``)."""

    prefix = "NOT_AUTHORIZED:"


class NotFound(RegistryError):
    """No such record, or the caller may not know it (``NOT_FOUND:``)."""

    prefix = "NOT_FOUND:"


class Conflict(RegistryError):
    """The request contradicts the ledger (``CONFLICT:``)."""

    prefix = "CONFLICT:"


_CLASSES: tuple[type[RegistryError], ...] = (Invalid, NotAuthorized, NotFound, Conflict)


def chaincode_message(error: TransactionError) -> str:
    """The chaincode's own message inside a Gateway error (from the peers' details), if any."""
    texts = [d.message for d in error.details] + [error.status_message]
    for text in texts:
        # The chaincode's message starts with its class; the earliest class prefix is that start
        # (a later one may be quoted inside it, e.g. a name echoed back).
        found = [at for at in (text.find(cls.prefix) for cls in _CLASSES) if at >= 0]
        if found:
            return text[min(found) :]
    return ""


def refusal(error: TransactionError) -> RegistryError | None:
    """The typed refusal a Gateway error carries, or None if it is not a chaincode refusal."""
    message = chaincode_message(error)
    for cls in _CLASSES:
        if message.startswith(cls.prefix):
            return cls(message, error.transaction_id)
    return None


@contextlib.contextmanager
def _typed_refusals() -> Iterator[None]:
    """Turns the chaincode's refusals (``INVALID:`` ...) into the typed errors; other errors pass as they are."""
    try:
        yield
    except (EndorseError, EvaluateError) as exc:
        typed = refusal(exc)
        if typed is not None:
            raise typed from exc
        raise


class RegistryClient:
    """Calls the registry chaincode as the Gateway's identity."""

    def __init__(self, network: Network, chaincode: str = "registry") -> None:
        self.contract: Contract = network.contract(chaincode)
        self._local = threading.local()

    @property
    def last_status(self) -> Status | None:
        """Commit status of this thread's last submitted transaction (block number, code)."""
        return getattr(self._local, "status", None)

    # ------------------------------------------------------------------ plumbing
    def _submit(self, function: str, *args: str, endorsing_organizations: Sequence[str] = ()) -> Any:
        with _typed_refusals():
            result, status = self.contract.submit_with_status(
                function, list(args), endorsing_organizations=endorsing_organizations
            )
        self._local.status = status
        return json.loads(result) if result else None

    def _evaluate(self, function: str, *args: str) -> Any:
        with _typed_refusals():
            result = self.contract.evaluate(function, list(args))
        return json.loads(result) if result else None

    # ------------------------------------------------------------------ model versions
    def register_model_version(self, record: ModelVersionInput) -> ModelVersion:
        """Registers a version (idempotent for identical content); the registrant is the caller."""
        body = json.dumps(record.to_json(), separators=(",", ":"), sort_keys=True)
        return from_json(ModelVersion, self._submit("RegisterModelVersion", body))

    def register_model_version_async(self, record: ModelVersionInput) -> Commit:
        """Endorses and submits the registration; returns before the commit (``.transaction_id``, ``.status()``).

        For callers that must record the transaction id durably before waiting
        for its commit status. Refusals at endorsement raise the typed errors.
        """
        body = json.dumps(record.to_json(), separators=(",", ":"), sort_keys=True)
        with _typed_refusals():
            return self.contract.submit_async("RegisterModelVersion", [body])

    def get_model_version(self, name: str, version: str) -> ModelVersion:
        return from_json(ModelVersion, self._evaluate("GetModelVersion", name, version))

    def get_model(self, name: str) -> Model:
        return from_json(Model, self._evaluate("GetModel", name))

    def list_model_versions(self, name: str = "", page_size: int = 100, bookmark: str = "") -> ModelVersionPage:
        return from_json(ModelVersionPage, self._evaluate("ListModelVersions", name, str(page_size), bookmark))

    def find_by_digest(self, model_digest: str) -> list[ModelRef]:
        return [from_json(ModelRef, r) for r in self._evaluate("FindByDigest", model_digest) or []]

    def get_history(self, name: str, version: str) -> list[HistoryEntry]:
        return [from_json(HistoryEntry, r) for r in self._evaluate("GetHistory", name, version) or []]

    # ------------------------------------------------------------------ decisions
    def approve(self, name: str, version: str, comment: str = "") -> ModelVersion:
        return from_json(ModelVersion, self._submit("ApproveModelVersion", name, version, comment))

    def reject(self, name: str, version: str, reason: str) -> ModelVersion:
        return from_json(ModelVersion, self._submit("RejectModelVersion", name, version, reason))

    def revoke(self, name: str, version: str, reason: str) -> ModelVersion:
        return from_json(ModelVersion, self._submit("RevokeModelVersion", name, version, reason))

    def record_deployment(self, name: str, version: str, environment: str, endpoint: str) -> ModelVersion:
        return from_json(ModelVersion, self._submit("RecordDeployment", name, version, environment, endpoint))

    def get_deployment(self, environment: str, name: str) -> DeployedVersion:
        return from_json(DeployedVersion, self._evaluate("GetDeployment", environment, name))

    # ------------------------------------------------------------------ evaluations and the policy
    def set_model_policy(self, name: str, policy: ModelPolicyInput) -> Model:
        """Sets the evaluation policy of a model (an admin of the owner organisation); its version counts up.

        Setting the policy in force again changes nothing (no new version).

        Raises:
            NotAuthorized: The caller is no admin of the owner organisation.
            Invalid: The policy breaks a rule (no threshold, a threshold without bounds, passes out of range).
        """
        body = json.dumps(policy.to_json(), separators=(",", ":"), sort_keys=True)
        return from_json(Model, self._submit("SetModelPolicy", name, body))

    def record_evaluation(self, name: str, version: str, evaluation: EvaluationInput) -> ModelVersion:
        """Records an evaluation on a hold-out dataset (an evaluator); the chaincode judges it against the policy.

        Returns the version with the new evaluation last in ``evaluations`` (its ``result`` is the verdict).

        Raises:
            Conflict: The version is revoked or rejected, the dataset is one of its training datasets, this run
                was recorded by this organisation already, or it holds the most evaluations it may.
            NotFound: The caller may not read the version, or the dataset is not registered.
            NotAuthorized: The policy wants an evaluator of another organisation than the registrant's.
        """
        body = json.dumps(to_json(evaluation), separators=(",", ":"), sort_keys=True)
        return from_json(ModelVersion, self._submit("RecordEvaluation", name, version, body))

    def list_evaluations(self, name: str, version: str) -> list[Evaluation]:
        """The version's evaluations, in the order they were recorded."""
        return [from_json(Evaluation, e) for e in self._evaluate("ListEvaluations", name, version) or []]

    # ------------------------------------------------------------------ access
    def grant_access(self, name: str, msp_id: str) -> Model:
        return from_json(Model, self._submit("GrantAccess", name, msp_id))

    def revoke_access(self, name: str, msp_id: str) -> Model:
        return from_json(Model, self._submit("RevokeAccess", name, msp_id))

    def authorize_artifact_access(self, name: str, version: str, purpose: str = "") -> ArtifactAccess:
        """Records the access on the ledger (a submitted transaction) and returns the decision.

        Nothing is logged for a version that does not exist (the answer is the same
        ``DENIED``). Concurrent accesses to one version do not conflict with each other.
        """
        return from_json(ArtifactAccess, self._submit("AuthorizeArtifactAccess", name, version, purpose))

    def list_access_log(self, name: str, version: str = "", page_size: int = 100, bookmark: str = "") -> AccessLogPage:
        return from_json(AccessLogPage, self._evaluate("ListAccessLog", name, version, str(page_size), bookmark))

    # ------------------------------------------------------------------ datasets and settings
    def register_dataset(self, name: str, sha256: str, source: str, schema_summary: str = "") -> Dataset:
        """Records the caller's organisation's claim on a dataset (idempotent for identical content).

        Raises:
            Conflict: The organisation claimed this sha256 before with other content.
        """
        body = json.dumps(
            {"name": name, "schemaSummary": schema_summary, "sha256": sha256, "source": source}, sort_keys=True
        )
        return from_json(Dataset, self._submit("RegisterDataset", body))

    def get_dataset(self, sha256: str) -> Dataset:
        """One claim on a dataset: this organisation's, else the first one by MSP id (``NotFound`` when none).

        The shape of chaincode 1.2.0; :meth:`get_dataset_claims` returns every claim.
        """
        return from_json(Dataset, self._evaluate("GetDataset", sha256))

    def get_dataset_claims(self, sha256: str) -> list[Dataset]:
        """Every organisation's claim on a dataset, sorted by organisation (``NotFound`` when none)."""
        return [from_json(Dataset, d) for d in self._evaluate("GetDatasetClaims", sha256) or []]

    def get_settings(self) -> Settings:
        return from_json(Settings, self._evaluate("GetSettings"))

    def set_settings(self, approval_orgs: Sequence[str], strict_datasets: bool = False) -> Settings:
        body = json.dumps({"approvalOrgs": list(approval_orgs), "strictDatasets": strict_datasets})
        return from_json(Settings, self._submit("SetSettings", body))

    def propose_approval_set_removal(self, msp_id: str, reason: str) -> ApprovalSetRemoval:
        """Votes (as an admin of a member) to remove another member; ``removed`` once a majority of the set agreed.

        Raises:
            Conflict: ``msp_id`` is not in the set, or the set has two members (no vote can remove one).
        """
        return from_json(ApprovalSetRemoval, self._submit("ProposeApprovalSetRemoval", msp_id, reason))

    def get_approval_set_removal(self, msp_id: str) -> ApprovalSetRemoval:
        """The open proposal to remove ``msp_id`` (``NotFound`` when none, or the settings changed since it opened)."""
        return from_json(ApprovalSetRemoval, self._evaluate("GetApprovalSetRemoval", msp_id))

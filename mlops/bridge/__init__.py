"""The MLflow bridge: every model version registered in MLflow becomes a VALID record on the ledger.

Its flow, one module per part (docs/bridge.md tells it for operators and
data scientists):

- a webhook delivery arrives [webhooks: checked; receiver: answered] and
  becomes a job in the durable outbox [outbox];
- a worker [workers] leases the job and anchors it [anchor]: it reads the
  version, fetches its files [version_files], digests, signs and copies them to
  the anchored bucket, compares with a record already on the ledger
  [ledger_comparison], registers it and waits for the commit, and tags the
  version in MLflow [outcomes, with the vocabulary of tags];
- the reconciler [reconciler] finds what no webhook announced;
- the ledger follower [ledger_follower] follows the chaincode's events from
  a durable checkpoint and mirrors each state change of a version (approved,
  rejected, revoked, deployed, evaluated) onto its tags, removing a revoked
  version's aliases;
- ``bridge install`` puts the webhook in MLflow [webhook_install];
  ``bridge serve`` wires it all [service].

Public surface: :class:`Bridge` and :class:`BridgeError`; :func:`install_webhook`;
:class:`Anchorer` with :class:`AnchorParts` and :class:`SigningIdentity`;
:class:`Outbox` and :class:`Job`; :class:`Receiver`; :func:`reconcile`;
:class:`MlflowApi`, :func:`mlflow_client`, :func:`registry_has_version`;
MLflow's users (:class:`MlflowUser`, :func:`act_as`, :func:`read_user`); and
the tag vocabulary (``TAG_*``, ``STATUS_*``, ``ANCHORING``: what each status means, and
``LEDGER_STATUS_TAGS``: the tag of each ledger status once anchored); :class:`LedgerFollower`
and :class:`VersionMirror`.

The names are imported on first use (PEP 562, :mod:`modelledger.runtime.lazy_exports`), not with the package: the
tracking server imports :mod:`~modelledger.mlops.bridge.mlflow_credentials`
(through its authorization module) and should not load the worker, boto3 and gRPC.
"""

from __future__ import annotations

from modelledger.runtime.lazy_exports import lazy_exports

# Each public name, and the module of this package that holds it.
_HOMES = {
    "Anchorer": "anchor",
    "AnchorParts": "anchor_parts",
    "SigningIdentity": "anchor_parts",
    "ArtifactAllowlist": "artifacts",
    "BridgeError": "errors",
    "PermanentError": "errors",
    "MlflowApi": "mlflow_api",
    "is_prompt": "mlflow_api",
    "mlflow_client": "mlflow_api",
    "registry_has_version": "mlflow_api",
    "MlflowAuthError": "mlflow_credentials",
    "MlflowCredentials": "mlflow_credentials",
    "MlflowUser": "mlflow_credentials",
    "act_as": "mlflow_credentials",
    "acting_as": "mlflow_credentials",
    "read_user": "mlflow_credentials",
    "user_env": "mlflow_credentials",
    "LedgerFollower": "ledger_follower",
    "VersionMirror": "ledger_follower",
    "Job": "outbox",
    "LeaseLostError": "outbox",
    "Outbox": "outbox",
    "Provenance": "provenance",
    "Receiver": "receiver",
    "ReconcileReport": "reconciler",
    "reconcile": "reconciler",
    "Bridge": "service",
    "ANCHORING": "tags",
    "ANCHORED_STATUSES": "tags",
    "LEDGER_STATUS_TAGS": "tags",
    "TAG_ALIASES_REMOVED": "tags",
    "TAG_APPROVALS": "tags",
    "TAG_DEPLOYMENTS": "tags",
    "TAG_EVALUATION": "tags",
    "STATUS_ANCHORED": "tags",
    "STATUS_CONFLICT": "tags",
    "STATUS_FAILED": "tags",
    "STATUS_PENDING": "tags",
    "TAG_BLOCK": "tags",
    "TAG_DIGEST": "tags",
    "TAG_ERROR": "tags",
    "TAG_NOTE": "tags",
    "TAG_STATUS": "tags",
    "TAG_STORAGE": "tags",
    "TAG_TX": "tags",
    "WEBHOOK_NAME": "webhook_install",
    "install_webhook": "webhook_install",
    "SecretFile": "webhook_secret",
    "EVENTS": "webhooks",
    "check_delivery": "webhooks",
}

__all__ = [
    "ANCHORED_STATUSES",
    "ANCHORING",
    "EVENTS",
    "LEDGER_STATUS_TAGS",
    "STATUS_ANCHORED",
    "STATUS_CONFLICT",
    "STATUS_FAILED",
    "STATUS_PENDING",
    "TAG_ALIASES_REMOVED",
    "TAG_APPROVALS",
    "TAG_BLOCK",
    "TAG_DEPLOYMENTS",
    "TAG_DIGEST",
    "TAG_ERROR",
    "TAG_EVALUATION",
    "TAG_NOTE",
    "TAG_STATUS",
    "TAG_STORAGE",
    "TAG_TX",
    "WEBHOOK_NAME",
    "AnchorParts",
    "Anchorer",
    "ArtifactAllowlist",
    "Bridge",
    "BridgeError",
    "Job",
    "LeaseLostError",
    "LedgerFollower",
    "MlflowApi",
    "MlflowAuthError",
    "MlflowCredentials",
    "MlflowUser",
    "Outbox",
    "PermanentError",
    "Provenance",
    "Receiver",
    "ReconcileReport",
    "SecretFile",
    "SigningIdentity",
    "VersionMirror",
    "act_as",
    "acting_as",
    "check_delivery",
    "install_webhook",
    "is_prompt",
    "mlflow_client",
    "read_user",
    "reconcile",
    "registry_has_version",
    "user_env",
]


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, __all__)

"""Typed settings of the MLflow tracking server and the bridge, read from environment variables.

| variable                              | default                                         |
|---------------------------------------|-------------------------------------------------|
| MODELLEDGER_STATE_DIR                 | <repo>/.state (``mlflow/`` and ``bridge/``)     |
| MODELLEDGER_MLFLOW_PORT               | 7950                                            |
| MODELLEDGER_MLFLOW_BACKEND_URI        | sqlite:///<state>/mlflow/mlflow.db              |
| MODELLEDGER_MLFLOW_ARTIFACTS_BUCKET   | modelledger-mlflow (on the stack's MinIO)       |
| MODELLEDGER_BRIDGE_PORT               | 7960                                            |
| MODELLEDGER_BRIDGE_ORG                | Org1MSP (submits as its ``registrar``)          |
| MODELLEDGER_BRIDGE_WORKERS            | 2 (anchoring jobs in parallel)                  |
| MODELLEDGER_BRIDGE_MAX_BODY           | 262144 (bytes of a webhook delivery)            |
| MODELLEDGER_BRIDGE_FRESHNESS          | 300 (seconds a delivery's timestamp may be off) |
| MODELLEDGER_BRIDGE_RECONCILE_SECONDS  | 30                                              |
| MODELLEDGER_BRIDGE_MAX_ATTEMPTS       | 12 (then the job is dead-lettered)              |
| MODELLEDGER_BRIDGE_RETENTION_DAYS     | the S3 bucket's retention                       |
| MODELLEDGER_BRIDGE_SCRATCH_DIR        | the system's temporary folder (fetched models)  |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from modelledger.mlops.bridge.proxied_artifacts import PROXIED_S3_SCHEME
from modelledger.mlops.store.s3server import DEFAULT_MLFLOW_BUCKET, MLFLOW_ARTIFACTS_PREFIX, MLFLOW_BUCKET_ENV
from modelledger.network.environment import env_number, env_optional_path, env_path, env_str
from modelledger.network.settings import REPO_ROOT

DEFAULT_MLFLOW_PORT = 7950
DEFAULT_BRIDGE_PORT = 7960
WEBHOOK_PATH = "/webhooks/mlflow"


@dataclass(frozen=True)
class MlflowSettings:
    """The local MLflow tracking server.

    Attributes:
        state_dir: Root of all runtime state; MLflow uses ``state_dir/mlflow``.
        host: Loopback address it listens on.
        port: HTTP port.
        backend_uri: SQL backend; empty means SQLite in the state folder.
        artifacts_bucket: Bucket on the stack's MinIO that holds MLflow's artifacts
            (``--artifacts-destination``; clients reach them through the server).
        health_timeout: Seconds ``up`` waits (the first start migrates the database).
    """

    state_dir: Path = field(default_factory=lambda: REPO_ROOT / ".state")
    host: str = "127.0.0.1"
    port: int = DEFAULT_MLFLOW_PORT
    backend_uri: str = ""
    artifacts_bucket: str = DEFAULT_MLFLOW_BUCKET
    health_timeout: float = 180.0

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError(f"MODELLEDGER_MLFLOW_PORT must be between 1 and 65535, got {self.port}")

    @classmethod
    def from_env(cls) -> MlflowSettings:
        return cls(
            state_dir=env_path("MODELLEDGER_STATE_DIR", REPO_ROOT / ".state"),
            port=env_number("MODELLEDGER_MLFLOW_PORT", DEFAULT_MLFLOW_PORT, int),
            backend_uri=env_str("MODELLEDGER_MLFLOW_BACKEND_URI", ""),
            artifacts_bucket=env_str(MLFLOW_BUCKET_ENV, DEFAULT_MLFLOW_BUCKET),
            health_timeout=env_number("MODELLEDGER_MLFLOW_HEALTH_TIMEOUT", 180.0, float),
        )

    @property
    def mlflow_dir(self) -> Path:
        return self.state_dir / "mlflow"

    @property
    def backend_store_uri(self) -> str:
        return self.backend_uri or f"sqlite:///{self.mlflow_dir / 'mlflow.db'}"

    @property
    def tracking_uri(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def artifacts_destination(self) -> str:
        """Where MLflow's artifacts are stored: ``s3://<bucket>/artifacts``."""
        return f"s3://{self.artifacts_bucket}/{MLFLOW_ARTIFACTS_PREFIX}"

    @property
    def server_artifacts_destination(self) -> str:
        """The same location as the server's ``--artifacts-destination``: under the ``modelledger-s3`` scheme,
        whose repository gives clients no presigned URL, so they all transfer through the server."""
        return f"{PROXIED_S3_SCHEME}://{self.artifacts_bucket}/{MLFLOW_ARTIFACTS_PREFIX}"

    @property
    def flask_key_file(self) -> Path:
        """The secret key of MLflow's Flask app (0600; basic-auth needs one that all workers share)."""
        return self.mlflow_dir / "flask-secret.key"

    @property
    def webhook_key_file(self) -> Path:
        """The Fernet key MLflow encrypts stored webhook secrets with (0600)."""
        return self.mlflow_dir / "webhook-encryption.key"


@dataclass(frozen=True)
class BridgeSettings:
    """The bridge process: receiver address, identity, limits and timings.

    Attributes:
        state_dir: Root of all runtime state; the bridge uses ``state_dir/bridge``.
        host: Loopback address the webhook receiver listens on.
        port: The receiver's HTTP port.
        org: The organisation the bridge submits for, as its ``registrar`` identity.
        workers: Anchoring jobs run in parallel.
        max_body: Largest webhook body accepted, in bytes.
        freshness: Seconds a delivery's timestamp may differ from now (MLflow's retries span ~7 s).
        reconcile_seconds: Period of the reconciler's registry scan.
        max_attempts: Attempts of one job before it is dead-lettered.
        retention_days: COMPLIANCE retention of anchored objects (0: the S3 bucket's).
        lease_seconds: How long a worker owns a job before another may take it over.
        scratch_dir: Where a job's files are fetched (one 0700 folder per job, removed after it);
            needs free space for the largest model times ``workers``. None: the system's temporary folder.
    """

    state_dir: Path = field(default_factory=lambda: REPO_ROOT / ".state")
    host: str = "127.0.0.1"
    port: int = DEFAULT_BRIDGE_PORT
    org: str = "Org1MSP"
    workers: int = 2
    max_body: int = 256 * 1024
    freshness: float = 300.0
    reconcile_seconds: float = 30.0
    max_attempts: int = 12
    retention_days: int = 0
    lease_seconds: float = 300.0
    scratch_dir: Path | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError(f"MODELLEDGER_BRIDGE_PORT must be between 1 and 65535, got {self.port}")
        if self.workers < 1 or self.max_attempts < 1 or self.max_body < 1024:
            raise ValueError("bridge workers and max attempts must be at least 1, max body at least 1024 bytes")
        if self.scratch_dir is not None and not self.scratch_dir.is_dir():
            raise ValueError(f"MODELLEDGER_BRIDGE_SCRATCH_DIR {self.scratch_dir} is not a folder")
        if self.freshness < 30:
            raise ValueError("MODELLEDGER_BRIDGE_FRESHNESS must be at least 30 s (MLflow retries over ~7 s)")

    @classmethod
    def from_env(cls) -> BridgeSettings:
        return cls(
            state_dir=env_path("MODELLEDGER_STATE_DIR", REPO_ROOT / ".state"),
            port=env_number("MODELLEDGER_BRIDGE_PORT", DEFAULT_BRIDGE_PORT, int),
            org=env_str("MODELLEDGER_BRIDGE_ORG", "Org1MSP"),
            workers=env_number("MODELLEDGER_BRIDGE_WORKERS", 2, int),
            max_body=env_number("MODELLEDGER_BRIDGE_MAX_BODY", 256 * 1024, int),
            freshness=env_number("MODELLEDGER_BRIDGE_FRESHNESS", 300.0, float),
            reconcile_seconds=env_number("MODELLEDGER_BRIDGE_RECONCILE_SECONDS", 30.0, float),
            max_attempts=env_number("MODELLEDGER_BRIDGE_MAX_ATTEMPTS", 12, int),
            retention_days=env_number("MODELLEDGER_BRIDGE_RETENTION_DAYS", 0, int),
            scratch_dir=env_optional_path("MODELLEDGER_BRIDGE_SCRATCH_DIR"),
        )

    @property
    def bridge_dir(self) -> Path:
        return self.state_dir / "bridge"

    @property
    def outbox_file(self) -> Path:
        return self.bridge_dir / "outbox.db"

    @property
    def secret_file(self) -> Path:
        """The webhook's HMAC secret (0600), written by ``bridge install``."""
        return self.bridge_dir / "webhook-secret"

    @property
    def webhook_url(self) -> str:
        return f"http://{self.host}:{self.port}{WEBHOOK_PATH}"

"""Every ``MODELLEDGER_*`` setting, read from the environment in this one module.

Each part has a frozen settings class with a ``from_env()``; the state
folder and the connection profile each have one function
(:func:`state_dir`, :func:`connection_profile_path`). A malformed value is an
error naming the variable, never a silent default.

Why this module is long: it is the one place that reads ``MODELLEDGER_*``
variables, so it grows with the table below; each settings class is short.

| variable                             | default                                                   |
|--------------------------------------|-----------------------------------------------------------|
| MODELLEDGER_STATE_DIR                | <repo>/.state (every part's state under it)               |
| MODELLEDGER_TOOLS_DIR                | <repo>/.tools                                             |
| MODELLEDGER_TOPOLOGY                 | network/topology.yaml                                     |
| MODELLEDGER_PORT_BASE                | the topology's own port_base                              |
| MODELLEDGER_HEALTH_TIMEOUT           | 60 (seconds; network and S3 server)                       |
| MODELLEDGER_FABRIC_LOGGING_SPEC      | INFO (the Fabric nodes' log level)                        |
| MODELLEDGER_S3_PORT                  | 7900 (console: port + 1)                                  |
| MODELLEDGER_S3_BUCKET                | modelledger-anchored                                      |
| MODELLEDGER_S3_RETENTION_DAYS        | 3653 (10 years)                                           |
| MODELLEDGER_MLFLOW_ARTIFACTS_BUCKET  | modelledger-mlflow (on the stack's MinIO)                 |
| MODELLEDGER_MLFLOW_PORT              | 7950                                                      |
| MODELLEDGER_MLFLOW_BACKEND_URI       | sqlite:///<state>/mlflow/mlflow.db                        |
| MODELLEDGER_MLFLOW_HEALTH_TIMEOUT    | 180 (seconds; the first start migrates the database)      |
| MODELLEDGER_BRIDGE_PORT              | 7960                                                      |
| MODELLEDGER_BRIDGE_ORG               | Org1MSP (submits as its ``registrar``)                    |
| MODELLEDGER_BRIDGE_WORKERS           | 2 (anchoring jobs in parallel)                            |
| MODELLEDGER_BRIDGE_MAX_BODY          | 262144 (bytes of a webhook delivery)                      |
| MODELLEDGER_BRIDGE_FRESHNESS         | 300 (seconds a delivery's timestamp may be off)           |
| MODELLEDGER_BRIDGE_RECONCILE_SECONDS | 30                                                        |
| MODELLEDGER_BRIDGE_MAX_ATTEMPTS      | 12 (then the job is dead-lettered)                        |
| MODELLEDGER_BRIDGE_RETENTION_DAYS    | the S3 bucket's retention                                 |
| MODELLEDGER_BRIDGE_SCRATCH_DIR       | the system's temporary folder (fetched models)            |
| MODELLEDGER_BRIDGE_FAULT             | unset (crash tests only: where the bridge exits)          |
| MODELLEDGER_MLFLOW_WEBHOOK_TARGET    | set by ``mlflow up`` in the tracking server's environment |
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from pathlib import Path

from modelledger.runtime.environment import env_number, env_optional_int, env_optional_path, env_path, env_str

# The variables' names: every other module names a variable through these constants.
STATE_DIR_ENV = "MODELLEDGER_STATE_DIR"
TOOLS_DIR_ENV = "MODELLEDGER_TOOLS_DIR"
TOPOLOGY_ENV = "MODELLEDGER_TOPOLOGY"
PORT_BASE_ENV = "MODELLEDGER_PORT_BASE"
HEALTH_TIMEOUT_ENV = "MODELLEDGER_HEALTH_TIMEOUT"
FABRIC_LOGGING_SPEC_ENV = "MODELLEDGER_FABRIC_LOGGING_SPEC"
S3_PORT_ENV = "MODELLEDGER_S3_PORT"
S3_BUCKET_ENV = "MODELLEDGER_S3_BUCKET"
S3_RETENTION_DAYS_ENV = "MODELLEDGER_S3_RETENTION_DAYS"
MLFLOW_BUCKET_ENV = "MODELLEDGER_MLFLOW_ARTIFACTS_BUCKET"
MLFLOW_PORT_ENV = "MODELLEDGER_MLFLOW_PORT"
MLFLOW_BACKEND_URI_ENV = "MODELLEDGER_MLFLOW_BACKEND_URI"
MLFLOW_HEALTH_TIMEOUT_ENV = "MODELLEDGER_MLFLOW_HEALTH_TIMEOUT"
BRIDGE_PORT_ENV = "MODELLEDGER_BRIDGE_PORT"
BRIDGE_ORG_ENV = "MODELLEDGER_BRIDGE_ORG"
BRIDGE_WORKERS_ENV = "MODELLEDGER_BRIDGE_WORKERS"
BRIDGE_MAX_BODY_ENV = "MODELLEDGER_BRIDGE_MAX_BODY"
BRIDGE_FRESHNESS_ENV = "MODELLEDGER_BRIDGE_FRESHNESS"
BRIDGE_RECONCILE_SECONDS_ENV = "MODELLEDGER_BRIDGE_RECONCILE_SECONDS"
BRIDGE_MAX_ATTEMPTS_ENV = "MODELLEDGER_BRIDGE_MAX_ATTEMPTS"
BRIDGE_RETENTION_DAYS_ENV = "MODELLEDGER_BRIDGE_RETENTION_DAYS"
BRIDGE_SCRATCH_DIR_ENV = "MODELLEDGER_BRIDGE_SCRATCH_DIR"
# Fault injection for the bridge's crash tests only: the bridge process exits (as if killed) at this point.
BRIDGE_FAULT_ENV = "MODELLEDGER_BRIDGE_FAULT"
# The tracking server's environment names the one URL a webhook may point at (the bridge's receiver).
WEBHOOK_TARGET_ENV = "MODELLEDGER_MLFLOW_WEBHOOK_TARGET"

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STATE_DIR = REPO_ROOT / ".state"
DEFAULT_TOOLS_DIR = REPO_ROOT / ".tools"
DEFAULT_TOPOLOGY = REPO_ROOT / "network" / "topology.yaml"
CONNECTION_PROFILE_FILE = "connection-profile.yaml"
# The tracking server's artifact store scheme (pyproject.toml's ``mlflow.artifact_repository`` entry point).
PROXIED_S3_SCHEME = "modelledger-s3"


def state_dir() -> Path:
    """The root of all runtime state: ``MODELLEDGER_STATE_DIR``, or ``<repo>/.state``."""
    return env_path(STATE_DIR_ENV, DEFAULT_STATE_DIR)


def tools_dir() -> Path:
    """Where ``make tools`` installs the binaries: ``MODELLEDGER_TOOLS_DIR``, or ``<repo>/.tools``."""
    return env_path(TOOLS_DIR_ENV, DEFAULT_TOOLS_DIR)


def connection_profile_path() -> Path:
    """The connection profile ``network up`` writes for the state folder in use."""
    return NetworkSettings(state_dir=state_dir()).connection_profile


# --------------------------------------------------------------------------- network
@dataclass(frozen=True)
class NetworkSettings:
    """Where the network lives and how it is laid out.

    Attributes:
        state_dir: Root of all runtime state; the network uses ``state_dir/network``.
        tools_dir: Where ``make tools`` installed the binaries (``tools_dir/bin``).
        topology_path: The topology file.
        port_base: Shifts every topology port by ``port_base - topology.port_base``.
        health_timeout: Seconds to wait for every node to report healthy.
    """

    state_dir: Path = field(default_factory=lambda: DEFAULT_STATE_DIR)
    tools_dir: Path = field(default_factory=lambda: DEFAULT_TOOLS_DIR)
    topology_path: Path = DEFAULT_TOPOLOGY
    port_base: int | None = None
    health_timeout: float = 60.0

    @classmethod
    def from_env(cls) -> NetworkSettings:
        """Reads the settings from ``MODELLEDGER_*`` environment variables."""
        return cls(
            state_dir=state_dir(),
            tools_dir=tools_dir(),
            topology_path=env_path(TOPOLOGY_ENV, DEFAULT_TOPOLOGY),
            port_base=env_optional_int(PORT_BASE_ENV),
            health_timeout=env_number(HEALTH_TIMEOUT_ENV, 60.0, float),
        )

    @property
    def network_dir(self) -> Path:
        """The folder holding every generated file of the network."""
        return self.state_dir / "network"

    @staticmethod
    def connection_profile_in(network_dir: Path) -> Path:
        """Where ``network up`` writes the connection profile of the network in ``network_dir``: its one
        definition (:attr:`connection_profile`, :func:`connection_profile_path` and the network's layout use it)."""
        return network_dir / CONNECTION_PROFILE_FILE

    @property
    def connection_profile(self) -> Path:
        """The connection profile ``network up`` writes (see :func:`connection_profile_path`)."""
        return self.connection_profile_in(self.network_dir)


# --------------------------------------------------------------------------- S3 (MinIO)
S3_DRIVE_COUNT = 4
DEFAULT_S3_PORT = 7900
DEFAULT_S3_BUCKET = "modelledger-anchored"
# Ten years, leap days included: a common record-keeping period for audit evidence (COMPLIANCE mode:
# nobody, root included, can delete a version or shorten its retention before then).
DEFAULT_S3_RETENTION_DAYS = 3653
# MLflow's artifacts: ``s3://<bucket>/<prefix>/…`` (the tracking server's --artifacts-destination).
DEFAULT_MLFLOW_BUCKET = "modelledger-mlflow"
MLFLOW_ARTIFACTS_PREFIX = "artifacts"
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class S3User(enum.StrEnum):
    """Who holds an S3 credential. Each holds only its own, and its policy allows only its work."""

    ROOT = "root"
    """Administers MinIO (users, policies, buckets): ``s3 up`` only."""
    MLFLOW = "mlflow"
    """The tracking server: reads and writes its artifact prefix, nothing else."""
    BRIDGE = "bridge"
    """The bridge and ``store upload``: write and retain anchored copies (no delete), read MLflow's artifacts."""
    AUDITOR = "auditor"
    """Read-only on the anchored bucket: ``store verify``/``fetch``, ``s3 status``, the demo's checks, auditors."""
    EVALUATOR = "evaluator"
    """``modelledger.mlflow.evaluate``: the auditor's reads, and new locked objects under ``evaluations/`` only."""


@dataclass(frozen=True)
class S3Settings:
    """Where the S3 server lives, where it listens, and the anchored bucket's settings.

    Attributes:
        state_dir: Root of all runtime state; the S3 server uses ``state_dir/s3``.
        tools_dir: Where ``make tools`` installed ``bin/minio``.
        port: The S3 API port on ``host`` (HTTPS); the console, if enabled, would use ``port + 1``.
        bucket: The anchored-artifacts bucket (Object Lock, versioning, default retention).
        retention_days: The bucket's default COMPLIANCE retention in whole days (S3 counts
            default retention in days; uploads can set a shorter per-object retain-until date).
        mlflow_bucket: The bucket of MLflow's artifacts (under ``MLFLOW_ARTIFACTS_PREFIX``).
        health_timeout: Seconds ``up`` waits for the server to report ready.
        host: The loopback address the server listens on.
    """

    state_dir: Path = field(default_factory=lambda: DEFAULT_STATE_DIR)
    tools_dir: Path = field(default_factory=lambda: DEFAULT_TOOLS_DIR)
    port: int = DEFAULT_S3_PORT
    bucket: str = DEFAULT_S3_BUCKET
    retention_days: int = DEFAULT_S3_RETENTION_DAYS
    health_timeout: float = 60.0
    host: str = "127.0.0.1"
    mlflow_bucket: str = DEFAULT_MLFLOW_BUCKET

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65534:
            raise ValueError(f"{S3_PORT_ENV} must be between 1 and 65534, got {self.port}")
        for var, bucket in ((S3_BUCKET_ENV, self.bucket), (MLFLOW_BUCKET_ENV, self.mlflow_bucket)):
            if not _BUCKET_NAME.match(bucket) or ".." in bucket:
                raise ValueError(
                    f"{var} {bucket!r} is not a valid S3 bucket name (3-63 lowercase letters, digits, '-' or '.')"
                )
        if self.bucket == self.mlflow_bucket:
            raise ValueError(f"{S3_BUCKET_ENV} and {MLFLOW_BUCKET_ENV} must differ, both are {self.bucket!r}")
        if self.retention_days < 1:
            raise ValueError(f"{S3_RETENTION_DAYS_ENV} must be at least 1, got {self.retention_days}")

    @classmethod
    def from_env(cls) -> S3Settings:
        """Reads the settings from ``MODELLEDGER_*`` environment variables.

        Raises:
            ValueError: A variable is malformed; the message names it.
        """
        return cls(
            state_dir=state_dir(),
            tools_dir=tools_dir(),
            port=env_number(S3_PORT_ENV, DEFAULT_S3_PORT, int),
            bucket=env_str(S3_BUCKET_ENV, DEFAULT_S3_BUCKET),
            retention_days=env_number(S3_RETENTION_DAYS_ENV, DEFAULT_S3_RETENTION_DAYS, int),
            health_timeout=env_number(HEALTH_TIMEOUT_ENV, 60.0, float),
            mlflow_bucket=env_str(MLFLOW_BUCKET_ENV, DEFAULT_MLFLOW_BUCKET),
        )

    # --- where things are -------------------------------------------------------------
    @property
    def s3_dir(self) -> Path:
        """The folder holding all of the S3 server's state."""
        return self.state_dir / "s3"

    @property
    def drives(self) -> list[Path]:
        """The drive folders MinIO erasure-codes over (``data/d1`` … ``data/d4``)."""
        return [self.s3_dir / "data" / f"d{i}" for i in range(1, S3_DRIVE_COUNT + 1)]

    @property
    def certs_dir(self) -> Path:
        """MinIO's ``--certs-dir``: ``public.crt``, ``private.key``, ``CAs/``, and our ``ca.crt``."""
        return self.s3_dir / "certs"

    @property
    def ca_file(self) -> Path:
        """The private CA's certificate: every client verifies the server against it."""
        return self.certs_dir / "ca.crt"

    @property
    def ca_key_file(self) -> Path:
        """The private CA's key (0600), kept outside the certs folder MinIO reads."""
        return self.s3_dir / "ca" / "ca.key"

    @property
    def server_cert_file(self) -> Path:
        """The server's TLS certificate."""
        return self.certs_dir / "public.crt"

    @property
    def server_key_file(self) -> Path:
        """The server's TLS key (0600)."""
        return self.certs_dir / "private.key"

    @property
    def credentials_file(self) -> Path:
        """The root access key and secret (JSON, 0600)."""
        return self.s3_dir / "credentials.json"

    @property
    def users_dir(self) -> Path:
        """The folder (0700) of the users' credential files."""
        return self.s3_dir / "users"

    def user_credentials_file(self, user: S3User) -> Path:
        """Where ``user``'s key is kept (0600): the root's JSON file, or an AWS shared-credentials file
        (``[default]`` profile) that boto3 and MLflow read through ``AWS_SHARED_CREDENTIALS_FILE``."""
        if user is S3User.ROOT:
            return self.credentials_file
        return self.users_dir / f"{user.value}.credentials"

    @property
    def connection_file(self) -> Path:
        """Endpoint, bucket, CA and credentials paths for other tools (no secret in it)."""
        return self.s3_dir / "connection.json"

    @property
    def minio_binary(self) -> Path:
        """The MinIO server built by ``make tools``."""
        return self.tools_dir / "bin" / "minio"

    @property
    def console_port(self) -> int:
        """The console's port (the console itself is off)."""
        return self.port + 1

    @property
    def endpoint_url(self) -> str:
        """The S3 API endpoint."""
        return f"https://{self.host}:{self.port}"


# --------------------------------------------------------------------------- MLflow and the bridge
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

    state_dir: Path = field(default_factory=lambda: DEFAULT_STATE_DIR)
    host: str = "127.0.0.1"
    port: int = DEFAULT_MLFLOW_PORT
    backend_uri: str = ""
    artifacts_bucket: str = DEFAULT_MLFLOW_BUCKET
    health_timeout: float = 180.0

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError(f"{MLFLOW_PORT_ENV} must be between 1 and 65535, got {self.port}")

    @classmethod
    def from_env(cls) -> MlflowSettings:
        return cls(
            state_dir=state_dir(),
            port=env_number(MLFLOW_PORT_ENV, DEFAULT_MLFLOW_PORT, int),
            backend_uri=env_str(MLFLOW_BACKEND_URI_ENV, ""),
            artifacts_bucket=env_str(MLFLOW_BUCKET_ENV, DEFAULT_MLFLOW_BUCKET),
            health_timeout=env_number(MLFLOW_HEALTH_TIMEOUT_ENV, 180.0, float),
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

    state_dir: Path = field(default_factory=lambda: DEFAULT_STATE_DIR)
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
            raise ValueError(f"{BRIDGE_PORT_ENV} must be between 1 and 65535, got {self.port}")
        if self.workers < 1 or self.max_attempts < 1 or self.max_body < 1024:
            raise ValueError("bridge workers and max attempts must be at least 1, max body at least 1024 bytes")
        if self.scratch_dir is not None and not self.scratch_dir.is_dir():
            raise ValueError(f"{BRIDGE_SCRATCH_DIR_ENV} {self.scratch_dir} is not a folder")
        if self.freshness < 30:
            raise ValueError(f"{BRIDGE_FRESHNESS_ENV} must be at least 30 s (MLflow retries over ~7 s)")

    @classmethod
    def from_env(cls) -> BridgeSettings:
        return cls(
            state_dir=state_dir(),
            port=env_number(BRIDGE_PORT_ENV, DEFAULT_BRIDGE_PORT, int),
            org=env_str(BRIDGE_ORG_ENV, "Org1MSP"),
            workers=env_number(BRIDGE_WORKERS_ENV, 2, int),
            max_body=env_number(BRIDGE_MAX_BODY_ENV, 256 * 1024, int),
            freshness=env_number(BRIDGE_FRESHNESS_ENV, 300.0, float),
            reconcile_seconds=env_number(BRIDGE_RECONCILE_SECONDS_ENV, 30.0, float),
            max_attempts=env_number(BRIDGE_MAX_ATTEMPTS_ENV, 12, int),
            retention_days=env_number(BRIDGE_RETENTION_DAYS_ENV, 0, int),
            scratch_dir=env_optional_path(BRIDGE_SCRATCH_DIR_ENV),
        )

    @property
    def bridge_dir(self) -> Path:
        return self.state_dir / "bridge"

    @property
    def outbox_file(self) -> Path:
        return self.bridge_dir / "outbox.db"

    @property
    def follower_checkpoint_file(self) -> Path:
        """The ledger follower's checkpoint (0600, replaced atomically): where its chaincode events resume."""
        return self.bridge_dir / "ledger-events.json"

    @property
    def follower_dead_letter_file(self) -> Path:
        """The ledger follower's dead letters (0600, replaced atomically): events moved past, for the reconciler."""
        return self.bridge_dir / "ledger-dead-letters.json"

    @property
    def secret_file(self) -> Path:
        """The webhook's HMAC secret (0600), written by ``bridge install``."""
        return self.bridge_dir / "webhook-secret"

    @property
    def webhook_url(self) -> str:
        return f"http://{self.host}:{self.port}{WEBHOOK_PATH}"


def fabric_logging_spec() -> str:
    """The Fabric nodes' log level (``MODELLEDGER_FABRIC_LOGGING_SPEC``, Fabric's syntax), or ``INFO``."""
    return env_str(FABRIC_LOGGING_SPEC_ENV, "INFO")


def bridge_fault_point() -> str:
    """The point at which the bridge exits for a crash test (``MODELLEDGER_BRIDGE_FAULT``), or "" (never)."""
    return env_str(BRIDGE_FAULT_ENV, "")


def webhook_target() -> str:
    """The one URL the tracking server lets a webhook point at (``MODELLEDGER_MLFLOW_WEBHOOK_TARGET``), or ""."""
    return env_str(WEBHOOK_TARGET_ENV, "")

"""The S3 server (MinIO, a native process on loopback) and the anchored bucket.

``S3Server.up()`` does only what is missing: root credentials (a random access
key and secret, generated once into a mode-0600 file), a private TLS CA and a
server certificate for ``127.0.0.1``/``localhost``, four drive folders (so
erasure coding has parity), the ``minio`` process (supervised by pid like the
Fabric nodes), the anchored bucket with Object Lock and a default retention in
COMPLIANCE mode, MLflow's artifacts bucket, and one MinIO user per holder with
a policy that allows only its work (:class:`S3User`, :func:`user_policy`). The
root credentials serve only this administration. On a healthy server it
changes nothing.

Everything else speaks S3 through :func:`s3_client` as one of those users, a
boto3 client that verifies TLS against our CA; nothing MinIO-specific is
needed there, so the same code runs against AWS S3. Users and policies are
made with MinIO's admin API through MinIO's own Python SDK (``minio``'s
``MinioAdmin``, plain HTTPS; no ``mc`` binary).

| variable                       | default                |
|--------------------------------|------------------------|
| MODELLEDGER_STATE_DIR          | <repo>/.state (S3 under ``s3/``) |
| MODELLEDGER_TOOLS_DIR          | <repo>/.tools          |
| MODELLEDGER_S3_PORT            | 7900 (console: port + 1) |
| MODELLEDGER_S3_BUCKET          | modelledger-anchored   |
| MODELLEDGER_S3_RETENTION_DAYS  | 3653 (10 years)        |
| MODELLEDGER_MLFLOW_ARTIFACTS_BUCKET | modelledger-mlflow |
| MODELLEDGER_HEALTH_TIMEOUT     | 60 (seconds)           |
"""

from __future__ import annotations

import configparser
import datetime as dt
import enum
import json
import os
import re
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from modelledger.mlops.store.s3errors import error_code
from modelledger.network.ca import create_tls_ca, issue_tls_certificate, tls_context
from modelledger.network.configuration import write_if_changed
from modelledger.network.environment import env_number, env_path, env_str
from modelledger.network.private_files import make_private_dir, write_private_file
from modelledger.network.processes import ProcessInfo, SupervisedServer, UpReport, wait_port_free
from modelledger.network.settings import REPO_ROOT

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from botocore.config import Config

REGION = "us-east-1"
PROCESS_NAME = "minio"
DRIVE_COUNT = 4
RETENTION_MODE = "COMPLIANCE"
DEFAULT_PORT = 7900
DEFAULT_BUCKET = "modelledger-anchored"
# Ten years, leap days included: a common record-keeping period for audit evidence (COMPLIANCE mode:
# nobody, root included, can delete a version or shorten its retention before then).
DEFAULT_RETENTION_DAYS = 3653
# MLflow's artifacts: ``s3://<bucket>/<prefix>/…`` (the tracking server's --artifacts-destination).
MLFLOW_BUCKET_ENV = "MODELLEDGER_MLFLOW_ARTIFACTS_BUCKET"
DEFAULT_MLFLOW_BUCKET = "modelledger-mlflow"
MLFLOW_ARTIFACTS_PREFIX = "artifacts"
# Written into the S3 state folder by ``up``; ``clean`` deletes only a folder that carries it.
STATE_MARKER = ".modelledger-s3"
# ``up`` issues a new server certificate when the current one expires sooner than this.
CERT_RENEW_BEFORE = dt.timedelta(days=30)
TLS_HOSTS = ["127.0.0.1", "localhost"]

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")

Progress = Callable[[str], None]


class S3ServerError(Exception):
    """The S3 server or the anchored bucket could not be set up, started or queried."""


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

    state_dir: Path = field(default_factory=lambda: REPO_ROOT / ".state")
    tools_dir: Path = field(default_factory=lambda: REPO_ROOT / ".tools")
    port: int = DEFAULT_PORT
    bucket: str = DEFAULT_BUCKET
    retention_days: int = DEFAULT_RETENTION_DAYS
    health_timeout: float = 60.0
    host: str = "127.0.0.1"
    mlflow_bucket: str = DEFAULT_MLFLOW_BUCKET

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65534:
            raise ValueError(f"MODELLEDGER_S3_PORT must be between 1 and 65534, got {self.port}")
        for var, bucket in (("MODELLEDGER_S3_BUCKET", self.bucket), (MLFLOW_BUCKET_ENV, self.mlflow_bucket)):
            if not _BUCKET_NAME.match(bucket) or ".." in bucket:
                raise ValueError(
                    f"{var} {bucket!r} is not a valid S3 bucket name (3-63 lowercase letters, digits, '-' or '.')"
                )
        if self.bucket == self.mlflow_bucket:
            raise ValueError(f"MODELLEDGER_S3_BUCKET and {MLFLOW_BUCKET_ENV} must differ, both are {self.bucket!r}")
        if self.retention_days < 1:
            raise ValueError(f"MODELLEDGER_S3_RETENTION_DAYS must be at least 1, got {self.retention_days}")

    @classmethod
    def from_env(cls) -> S3Settings:
        """Reads the settings from ``MODELLEDGER_*`` environment variables.

        Raises:
            ValueError: A variable is malformed; the message names it.
        """
        return cls(
            state_dir=env_path("MODELLEDGER_STATE_DIR", REPO_ROOT / ".state"),
            tools_dir=env_path("MODELLEDGER_TOOLS_DIR", REPO_ROOT / ".tools"),
            port=env_number("MODELLEDGER_S3_PORT", DEFAULT_PORT, int),
            bucket=env_str("MODELLEDGER_S3_BUCKET", DEFAULT_BUCKET),
            retention_days=env_number("MODELLEDGER_S3_RETENTION_DAYS", DEFAULT_RETENTION_DAYS, int),
            health_timeout=env_number("MODELLEDGER_HEALTH_TIMEOUT", 60.0, float),
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
        return [self.s3_dir / "data" / f"d{i}" for i in range(1, DRIVE_COUNT + 1)]

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


# --------------------------------------------------------------------------- credentials
@dataclass(frozen=True)
class S3Credentials:
    """The server's root credentials; ``repr`` never shows the secret."""

    access_key: str
    secret_key: str = field(repr=False)


def read_credentials(settings: S3Settings) -> S3Credentials:
    """The credentials generated by ``up``.

    Raises:
        S3ServerError: The file is missing or unreadable (run ``modelledger s3 up``).
    """
    path = settings.credentials_file
    try:
        data = json.loads(path.read_text())
        return S3Credentials(str(data["access_key"]), str(data["secret_key"]))
    except FileNotFoundError as exc:
        raise S3ServerError(f"no S3 credentials at {path}; run `make s3-up` first") from exc
    except (OSError, ValueError, KeyError) as exc:
        raise S3ServerError(f"cannot read S3 credentials from {path}: {exc}") from exc


def read_user_credentials(settings: S3Settings, user: S3User) -> S3Credentials:
    """The credentials of ``user``, as ``up`` wrote them.

    Raises:
        S3ServerError: The file is missing or damaged (run ``make s3-up``).
    """
    if user is S3User.ROOT:
        return read_credentials(settings)
    path = settings.user_credentials_file(user)
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(path.read_text(), source=str(path))
        section = parser["default"]
        return S3Credentials(section["aws_access_key_id"], section["aws_secret_access_key"])
    except FileNotFoundError as exc:
        raise S3ServerError(f"no S3 credentials for {user.value} at {path}; run `make s3-up` first") from exc
    except (OSError, configparser.Error, KeyError) as exc:
        # Not the exception's text: configparser quotes the offending line, which may hold the secret.
        raise S3ServerError(
            f"cannot read S3 credentials of {user.value} from {path} ({type(exc).__name__}); "
            "fix or delete the file and run `make s3-up`"
        ) from exc


def aws_env(settings: S3Settings, user: S3User) -> dict[str, str]:
    """The environment under which a child process's boto3 (MLflow's S3 client too) acts as ``user``.

    It names the credential file; the key itself is never in an environment, a command line or a log.
    """
    return {
        "AWS_SHARED_CREDENTIALS_FILE": str(settings.user_credentials_file(user)),
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CA_BUNDLE": str(settings.ca_file),
    }


def ensure_credentials(settings: S3Settings) -> bool:
    """Generates the root credentials into a mode-0600 file unless present; returns True if generated."""
    path = settings.credentials_file
    if path.exists():
        read_credentials(settings)  # fails loudly on a damaged file
        return False
    creds = {"access_key": secrets.token_hex(10), "secret_key": secrets.token_hex(20)}
    write_private_file(path, json.dumps(creds) + "\n")
    return True


# --------------------------------------------------------------------------- TLS
def _cert_expires(path: Path) -> dt.datetime | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes()).not_valid_after_utc
    except (OSError, ValueError):
        return None


def ensure_tls(settings: S3Settings) -> list[str]:
    """Creates the private CA and the server certificate where missing or about to expire.

    Files follow MinIO's ``--certs-dir`` layout: ``public.crt``/``private.key``
    for the server, ``CAs/ca.crt`` for the CA MinIO trusts; ``ca.crt`` beside
    them is what clients verify against. MinIO reloads changed certificates by itself.

    Returns:
        What was done (empty if nothing).
    """
    actions: list[str] = []
    s = settings
    if not (s.ca_file.is_file() and s.ca_key_file.is_file()):
        ca_cert, ca_key = create_tls_ca(s.ca_file, s.ca_key_file, "ModelLedger S3 TLS CA")
        s.server_cert_file.unlink(missing_ok=True)
        actions.append("created the S3 TLS CA")
    else:
        ca_cert = x509.load_pem_x509_certificate(s.ca_file.read_bytes())
        loaded = serialization.load_pem_private_key(s.ca_key_file.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise S3ServerError(f"{s.ca_key_file} is not an EC private key")
        ca_key = loaded
    expires = _cert_expires(s.server_cert_file) if s.server_key_file.is_file() else None
    if expires is None or expires - dt.datetime.now(dt.UTC) < CERT_RENEW_BEFORE:
        issue_tls_certificate(ca_cert, ca_key, s.server_cert_file, s.server_key_file, TLS_HOSTS)
        actions.append("issued the S3 server TLS certificate" if expires is None else "renewed the S3 TLS certificate")
    cas = s.certs_dir / "CAs" / "ca.crt"
    if write_if_changed(cas, s.ca_file.read_text()):
        actions.append("installed the CA in certs/CAs")
    return actions


# --------------------------------------------------------------------------- the process
def minio_argv(settings: S3Settings) -> list[str]:
    """The MinIO command line. It carries no secret: credentials go through the environment."""
    return [
        str(settings.minio_binary),
        "server",
        "--address",
        f"{settings.host}:{settings.port}",
        "--console-address",
        f"{settings.host}:{settings.console_port}",
        "--certs-dir",
        str(settings.certs_dir),
        # Hides sensitive details (addresses, hostnames) from the log.
        "--anonymous",
        *[str(d) for d in settings.drives],
    ]


def minio_env(settings: S3Settings, creds: S3Credentials) -> dict[str, str]:
    """MinIO's complete environment (nothing else is inherited, e.g. not ``CI``)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(settings.s3_dir),
        "MINIO_ROOT_USER": creds.access_key,
        "MINIO_ROOT_PASSWORD": creds.secret_key,
        "MINIO_BROWSER": "off",
        "MINIO_UPDATE": "off",
        "MINIO_SITE_REGION": REGION,
        # The drives are folders on one disk, usually the root file system, which
        # MinIO refuses for multi-drive setups unless told which drives are small
        # enough to be "root drives": none, with a threshold of one byte.
        "MINIO_ROOTDRIVE_THRESHOLD_SIZE": "1",
    }


def server_health(settings: S3Settings, timeout: float = 2.0) -> tuple[bool, str]:
    """``GET /minio/health/ready`` over TLS verified with our CA: (ready, detail)."""
    if not settings.ca_file.is_file():
        return False, f"no CA certificate at {settings.ca_file}"
    url = f"{settings.endpoint_url}/minio/health/ready"
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=tls_context(settings.ca_file)) as resp:
            return resp.status == 200, "ready" if resp.status == 200 else f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, str(reason)


# --------------------------------------------------------------------------- boto3
def client_config(config: Config | None = None) -> Config:
    """The botocore configuration of :func:`s3_client`, merged with ``config`` if given.

    Path-style addressing and SigV4 in us-east-1. Payload signing is off:
    over TLS the body is then sent as ``UNSIGNED-PAYLOAD`` and its integrity
    rests on the ``x-amz-checksum-*`` the caller sends, so bytes are not hashed
    twice. botocore adds checksums of its own only where an operation requires
    one (``when_required``), and validates response checksums only when asked.
    """
    from botocore.config import Config

    base = Config(
        region_name=REGION,
        signature_version="s3v4",
        s3={"addressing_style": "path", "payload_signing_enabled": False},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=10,
        read_timeout=120,
    )
    return base.merge(config) if config is not None else base


def s3_client(settings: S3Settings | None = None, config: Config | None = None, *, user: S3User) -> BaseClient:
    """A boto3 S3 client for the server of ``settings`` (default: from the environment), acting as ``user``.

    TLS is verified against ``settings.ca_file``; credentials come from the
    file ``up`` wrote for ``user``. ``config`` (a ``botocore.config.Config``)
    is merged on top of :func:`client_config`, e.g. to raise ``max_pool_connections``.

    Raises:
        S3ServerError: No credentials yet (the server was never brought up).
    """
    import boto3

    s = settings or S3Settings.from_env()
    creds = read_user_credentials(s, user)
    return boto3.session.Session().client(
        "s3",
        endpoint_url=s.endpoint_url,
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        region_name=REGION,
        verify=str(s.ca_file),
        config=client_config(config),
    )


def ensure_anchored_bucket(client: BaseClient, settings: S3Settings) -> list[str]:
    """Creates the anchored bucket with Object Lock, and sets its default COMPLIANCE retention.

    Object Lock turns versioning on; it cannot be added to an existing bucket
    here, so a bucket of that name without it is an error, not something to fix.

    Returns:
        What was done (empty if the bucket was already as configured).

    Raises:
        S3ServerError: The bucket exists without Object Lock or versioning, or S3 refused a call.
    """
    from botocore.exceptions import ClientError

    bucket, actions = settings.bucket, []
    try:
        if _create_bucket_if_missing(client, bucket, ObjectLockEnabledForBucket=True):
            actions.append(f"created bucket {bucket} with Object Lock")
        state = bucket_state(client, bucket)
        if state["object_lock"] != "Enabled":
            raise S3ServerError(
                f"bucket {bucket} exists without Object Lock, which can only be enabled at creation; "
                "choose another MODELLEDGER_S3_BUCKET"
            )
        if state["versioning"] != "Enabled":
            raise S3ServerError(f"bucket {bucket} has Object Lock but versioning is {state['versioning']!r}")
        want = (RETENTION_MODE, settings.retention_days)
        if (state["retention_mode"], state["retention_days"]) != want:
            client.put_object_lock_configuration(
                Bucket=bucket,
                ObjectLockConfiguration={
                    "ObjectLockEnabled": "Enabled",
                    "Rule": {"DefaultRetention": {"Mode": RETENTION_MODE, "Days": settings.retention_days}},
                },
            )
            actions.append(f"set default retention of {bucket} to {RETENTION_MODE} {settings.retention_days} day(s)")
    except ClientError as exc:
        raise S3ServerError(f"S3 refused a call while setting up bucket {bucket}: {exc}") from exc
    return actions


def bucket_state(client: BaseClient, bucket: str) -> dict[str, Any]:
    """Object Lock, default retention and versioning of ``bucket`` as S3 reports them."""
    from botocore.exceptions import ClientError

    try:
        lock = client.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    except ClientError as exc:
        if error_code(exc) != "ObjectLockConfigurationNotFoundError":
            raise
        lock = {}
    retention = lock.get("Rule", {}).get("DefaultRetention", {})
    versioning = client.get_bucket_versioning(Bucket=bucket).get("Status", "")
    return {
        "bucket": bucket,
        "object_lock": lock.get("ObjectLockEnabled", ""),
        "retention_mode": retention.get("Mode", ""),
        "retention_days": retention.get("Days"),
        "versioning": versioning,
    }


def _create_bucket_if_missing(client: BaseClient, bucket: str, **create: Any) -> bool:
    """Creates ``bucket`` (with ``create``'s settings) unless it exists; True if created now.

    Raises:
        ClientError: S3 refused the probe (other than "no such bucket") or the creation.
    """
    from botocore.exceptions import ClientError

    try:
        client.head_bucket(Bucket=bucket)
        return False
    except ClientError as exc:
        if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
            raise
    client.create_bucket(Bucket=bucket, **create)
    return True


def ensure_mlflow_bucket(client: BaseClient, settings: S3Settings) -> list[str]:
    """Creates MLflow's artifacts bucket (plain: MLflow deletes and overwrites its artifacts) unless present.

    Raises:
        S3ServerError: S3 refused a call.
    """
    from botocore.exceptions import ClientError

    bucket = settings.mlflow_bucket
    try:
        return [f"created bucket {bucket} for MLflow's artifacts"] if _create_bucket_if_missing(client, bucket) else []
    except ClientError as exc:
        raise S3ServerError(f"S3 refused a call while setting up bucket {bucket}: {exc}") from exc


# --------------------------------------------------------------------------- users and policies
USER_PREFIX = "modelledger-"


def policy_name(user: S3User) -> str:
    """The name of ``user``'s MinIO policy (also its access key id)."""
    return f"{USER_PREFIX}{user.value}"


def user_policy(settings: S3Settings, user: S3User) -> dict[str, Any]:
    """The IAM policy of ``user``: exactly what its work needs, nothing else.

    - MLflow: list, read, write and delete under ``<mlflow bucket>/artifacts/``; nothing elsewhere.
    - The bridge: write new versions into the anchored bucket with a retention
      (``PutObjectRetention`` also lets it extend one; COMPLIANCE mode refuses any
      shortening, to everyone), read them back; list and read MLflow's artifacts.
      No delete, no legal hold, no GOVERNANCE lock (root could bypass it), no bucket
      settings (so it cannot lower the default retention). The retention's length is
      the bridge's own setting: S3 policies cannot bound it on a write.
    - The auditor: read the anchored bucket, its versions, retentions and lock settings.

    Raises:
        ValueError: ``user`` is the root, which has no policy.
    """
    anchored, mlflow = f"arn:aws:s3:::{settings.bucket}", f"arn:aws:s3:::{settings.mlflow_bucket}"
    artifacts = f"{mlflow}/{MLFLOW_ARTIFACTS_PREFIX}/*"
    list_artifacts = {
        "Effect": "Allow",
        "Action": ["s3:ListBucket"],
        "Resource": [mlflow],
        "Condition": {"StringLike": {"s3:prefix": [MLFLOW_ARTIFACTS_PREFIX, f"{MLFLOW_ARTIFACTS_PREFIX}/*"]}},
    }
    statements: dict[S3User, list[dict[str, Any]]] = {
        S3User.MLFLOW: [
            list_artifacts,
            {
                "Effect": "Allow",
                "Action": [
                    "s3:AbortMultipartUpload",
                    "s3:DeleteObject",
                    "s3:GetObject",
                    "s3:ListMultipartUploadParts",
                    "s3:PutObject",
                ],
                "Resource": [artifacts],
            },
        ],
        S3User.BRIDGE: [
            {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:ListBucketVersions"], "Resource": [anchored]},
            {
                "Effect": "Allow",
                "Action": [
                    "s3:GetObject",
                    "s3:GetObjectRetention",
                    "s3:GetObjectVersion",
                    "s3:PutObject",
                    "s3:PutObjectRetention",
                ],
                "Resource": [f"{anchored}/*"],
            },
            {
                # GOVERNANCE mode would let the root delete the version at once (BypassGovernanceRetention).
                # MinIO enforces this condition on both calls (it rejects a remaining-retention-days one
                # on PutObject as a malformed policy), so the bridge can only write COMPLIANCE locks.
                "Effect": "Deny",
                "Action": ["s3:PutObject", "s3:PutObjectRetention"],
                "Resource": [f"{anchored}/*"],
                "Condition": {"StringEquals": {"s3:object-lock-mode": ["GOVERNANCE"]}},
            },
            list_artifacts,
            {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [artifacts]},
        ],
        S3User.AUDITOR: [
            {
                "Effect": "Allow",
                "Action": [
                    "s3:GetBucketObjectLockConfiguration",
                    "s3:GetBucketVersioning",
                    "s3:ListBucket",
                    "s3:ListBucketVersions",
                ],
                "Resource": [anchored],
            },
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectRetention", "s3:GetObjectVersion"],
                "Resource": [f"{anchored}/*"],
            },
        ],
    }
    if user not in statements:
        raise ValueError(f"the {user.value} user has no policy: it administers MinIO")
    return {"Version": "2012-10-17", "Statement": statements[user]}


def _canonical_policy(policy: dict[str, Any]) -> str:
    """A policy in a form that ignores the order MinIO gives back lists and keys in."""

    def norm(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: norm(v) for k, v in value.items()}
        if isinstance(value, list):
            return sorted((norm(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
        return value

    return json.dumps(norm(policy), sort_keys=True)


def _admin(settings: S3Settings) -> Any:
    """MinIO's admin client (``minio.MinioAdmin``) as the root, TLS verified against our CA."""
    import urllib3
    from minio import MinioAdmin
    from minio.credentials import StaticProvider

    root = read_credentials(settings)
    http = urllib3.PoolManager(
        cert_reqs="CERT_REQUIRED",
        ca_certs=str(settings.ca_file),
        timeout=urllib3.Timeout(connect=10, read=60),
        retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
    )
    return MinioAdmin(
        endpoint=f"{settings.host}:{settings.port}",
        credentials=StaticProvider(root.access_key, root.secret_key),
        region=REGION,
        http_client=http,
    )


def _admin_read(call: Callable[[], str]) -> dict[str, Any] | None:
    """The JSON an admin query returns, or None when MinIO has no such user or policy (HTTP 404)."""
    from minio.error import MinioAdminException

    try:
        return json.loads(call())
    except MinioAdminException as exc:
        if exc._code == "404":
            return None
        raise


def ensure_users(settings: S3Settings) -> list[str]:
    """Creates the MLflow, bridge and auditor users with their policies, doing only what is missing.

    A user's secret is generated once into its 0600 credential file; the user
    is (re)created from that file whenever MinIO does not know it.

    Returns:
        What was done (empty if all was in place).

    Raises:
        S3ServerError: MinIO refused or could not be reached.
    """
    import urllib3.exceptions
    from minio.error import MinioAdminException

    actions: list[str] = []
    make_private_dir(settings.users_dir, tighten=True)
    admin = _admin(settings)
    try:
        for user in (S3User.MLFLOW, S3User.BRIDGE, S3User.AUDITOR):
            name, path = policy_name(user), settings.user_credentials_file(user)
            fresh = not path.exists()
            if fresh:
                key = secrets.token_hex(20)
                write_private_file(path, f"[default]\naws_access_key_id = {name}\naws_secret_access_key = {key}\n")
                actions.append(f"generated S3 credentials for {user.value}")
            creds = read_user_credentials(settings, user)
            want = user_policy(settings, user)
            have = _admin_read(lambda name=name: admin.policy_info(name))
            if have is None or _canonical_policy(have) != _canonical_policy(want):
                admin.policy_add(name, policy=want)
                actions.append(f"set S3 policy {name}")
            info = _admin_read(lambda creds=creds: admin.user_info(creds.access_key))
            if fresh or info is None:
                admin.user_add(creds.access_key, creds.secret_key)
                actions.append(f"created S3 user {creds.access_key}")
            if info is None or info.get("policyName") != name or info.get("status") != "enabled":
                admin.policy_set(name, user=creds.access_key)
    except (MinioAdminException, urllib3.exceptions.HTTPError, ValueError) as exc:
        raise S3ServerError(f"MinIO refused to set up its users and policies: {exc}") from exc
    return actions


# --------------------------------------------------------------------------- the server
@dataclass
class S3Status:
    """The S3 server as seen now."""

    endpoint: str
    running: bool
    healthy: bool
    detail: str
    pid: int | None
    rss_kib: int
    peak_rss_kib: int
    bucket: dict[str, Any]
    state_dir: str
    log: str

    @property
    def ok(self) -> bool:
        """True when the server is ready and the bucket is locked and versioned as configured."""
        return self.healthy and self.bucket.get("ok") is True

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {**asdict(self), "ok": self.ok}


class S3Server(SupervisedServer):
    """The MinIO server of one state folder: ``up``, ``down`` (objects, credentials and certificates are
    kept), ``status``, ``clean`` (deletes them all)."""

    process = PROCESS_NAME
    label = "MinIO"
    cli = "s3"
    error = S3ServerError
    marker = STATE_MARKER
    marker_note = "ModelLedger S3 server state; `modelledger s3 clean` deletes this folder"

    def __init__(self, settings: S3Settings | None = None) -> None:
        self.settings = settings or S3Settings.from_env()
        self.health_timeout = self.settings.health_timeout
        super().__init__(self.settings.s3_dir)

    def up(self, progress: Progress | None = None) -> UpReport:
        """Brings the server and the anchored bucket up, doing only what is missing.

        Raises:
            S3ServerError: The binary is missing, a port is taken, the server exited or
                did not become ready (the message names its log), or the bucket is unusable.
        """
        say = progress or (lambda _msg: None)
        s = self.settings
        t0 = time.monotonic()
        self._claim_state_dir()
        actions: list[str] = []
        if ensure_credentials(s):
            actions.append("generated S3 root credentials")
        actions += ensure_tls(s)
        for d in s.drives:
            if not d.is_dir():
                make_private_dir(d)
                actions.append(f"created drive {d.relative_to(s.s3_dir)}")

        def start() -> None:
            if not os.access(s.minio_binary, os.X_OK):
                raise S3ServerError(f"missing MinIO server binary {s.minio_binary}; run `make tools`")
            self._check_ports_free()
            say(f"starting MinIO on {s.endpoint_url}")
            env = minio_env(s, read_credentials(s))
            self.supervisor.start(PROCESS_NAME, minio_argv(s), env, cwd=s.s3_dir, tag=self._address)
            actions.append(f"started {PROCESS_NAME}")

        seconds_to_healthy = self._run(start)
        say(f"checking buckets {s.bucket} and {s.mlflow_bucket}, users and policies")
        root = s3_client(s, user=S3User.ROOT)
        actions += ensure_anchored_bucket(root, s)
        actions += ensure_mlflow_bucket(root, s)
        actions += ensure_users(s)
        if write_if_changed(s.connection_file, self.connection_json()):
            actions.append("wrote connection.json")
        return UpReport(actions, time.monotonic() - t0, seconds_to_healthy)

    @property
    def _address(self) -> str:
        """The API address MinIO is started with, recorded in its pid file."""
        return f"{self.settings.host}:{self.settings.port}"

    def _health(self) -> tuple[bool, str]:
        return server_health(self.settings)

    def _check_ports_free(self) -> None:
        s = self.settings
        for port in (s.port, s.console_port):
            # A server stopped a moment ago may hold its port briefly.
            err = wait_port_free(s.host, port, 5.0)
            if err is not None:
                raise S3ServerError(
                    f"cannot start MinIO: port {s.host}:{port} is already in use by another program "
                    f"({err.strerror}); stop it or set MODELLEDGER_S3_PORT"
                )

    def connection(self) -> dict[str, Any]:
        """What other tools need to reach the bucket (paths only, never the secret)."""
        s = self.settings
        return {
            "endpoint_url": s.endpoint_url,
            "region": REGION,
            "addressing_style": "path",
            "bucket": s.bucket,
            "ca_file": str(s.ca_file),
            "credentials_file": str(s.credentials_file),
            "mlflow_bucket": s.mlflow_bucket,
            "users": {u.value: str(s.user_credentials_file(u)) for u in S3User if u is not S3User.ROOT},
            "object_lock": {"mode": RETENTION_MODE, "default_retention_days": s.retention_days},
        }

    def connection_json(self) -> str:
        """:meth:`connection` as the text of ``connection.json``."""
        return json.dumps(self.connection(), indent=2, sort_keys=True) + "\n"

    def status(self) -> S3Status:
        """Health, memory and the anchored bucket's lock settings."""
        s = self.settings
        info: ProcessInfo | None = self.supervisor.running(PROCESS_NAME)
        ok, detail = server_health(s) if info else (False, "not running")
        bucket: dict[str, Any] = {"bucket": s.bucket}
        if ok:
            try:
                bucket = bucket_state(s3_client(s, user=S3User.AUDITOR), s.bucket)
                bucket["ok"] = (
                    bucket["object_lock"] == "Enabled"
                    and bucket["versioning"] == "Enabled"
                    and bucket["retention_mode"] == RETENTION_MODE
                    and bucket["retention_days"] == s.retention_days
                )
            except Exception as exc:  # any S3 or connection failure is shown, not raised
                bucket["error"] = str(exc).splitlines()[0]
        return S3Status(
            endpoint=s.endpoint_url,
            running=info is not None,
            healthy=ok,
            detail=detail,
            pid=info.pid if info else None,
            rss_kib=info.rss_kib if info else 0,
            peak_rss_kib=info.peak_rss_kib if info else 0,
            bucket=bucket,
            state_dir=str(s.s3_dir),
            log=str(self.log_path),
        )

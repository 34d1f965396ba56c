"""The S3 server (MinIO, a native process on loopback) and the anchored bucket.

``S3Server.up()`` does only what is missing: root credentials (a random access
key and secret, generated once into a mode-0600 file), a private TLS CA and a
server certificate for ``127.0.0.1``/``localhost``, four drive folders (so
erasure coding has parity), the ``minio`` process (supervised by pid like the
Fabric nodes), and the anchored bucket with Object Lock and a default
retention in COMPLIANCE mode. On a healthy server it changes nothing.

Everything else speaks S3 through :func:`s3_client`, a boto3 client that
verifies TLS against our CA; nothing MinIO-specific is needed, so the same
code runs against AWS S3.

| variable                       | default                |
|--------------------------------|------------------------|
| MODELLEDGER_STATE_DIR          | <repo>/.state (S3 under ``s3/``) |
| MODELLEDGER_TOOLS_DIR          | <repo>/.tools          |
| MODELLEDGER_S3_PORT            | 7900 (console: port + 1) |
| MODELLEDGER_S3_BUCKET          | modelledger-anchored   |
| MODELLEDGER_S3_RETENTION_DAYS  | 1                      |
| MODELLEDGER_HEALTH_TIMEOUT     | 60 (seconds)           |
"""

from __future__ import annotations

import datetime as dt
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
DEFAULT_RETENTION_DAYS = 1
# Written into the S3 state folder by ``up``; ``clean`` deletes only a folder that carries it.
STATE_MARKER = ".modelledger-s3"
# ``up`` issues a new server certificate when the current one expires sooner than this.
CERT_RENEW_BEFORE = dt.timedelta(days=30)
TLS_HOSTS = ["127.0.0.1", "localhost"]

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")

Progress = Callable[[str], None]


class S3ServerError(Exception):
    """The S3 server or the anchored bucket could not be set up, started or queried."""


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

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65534:
            raise ValueError(f"MODELLEDGER_S3_PORT must be between 1 and 65534, got {self.port}")
        if not _BUCKET_NAME.match(self.bucket) or ".." in self.bucket:
            raise ValueError(
                f"MODELLEDGER_S3_BUCKET {self.bucket!r} is not a valid S3 bucket name "
                "(3-63 lowercase letters, digits, '-' or '.')"
            )
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


def s3_client(settings: S3Settings | None = None, config: Config | None = None) -> BaseClient:
    """A boto3 S3 client for the server of ``settings`` (default: from the environment).

    TLS is verified against ``settings.ca_file``; credentials come from the
    file ``up`` wrote. ``config`` (a ``botocore.config.Config``) is merged on
    top of :func:`client_config`, e.g. to raise ``max_pool_connections``.

    Raises:
        S3ServerError: No credentials yet (the server was never brought up).
    """
    import boto3

    s = settings or S3Settings.from_env()
    creds = read_credentials(s)
    return boto3.session.Session().client(
        "s3",
        endpoint_url=s.endpoint_url,
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        region_name=REGION,
        verify=str(s.ca_file),
        config=client_config(config),
    )


def error_code(exc: Exception) -> str:
    """The S3 error code of a refusal (``NoSuchKey``, ``PreconditionFailed``, ...); empty if none."""
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


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
        try:
            client.head_bucket(Bucket=bucket)
        except ClientError as exc:
            if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise
            client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
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
        say(f"checking bucket {s.bucket}")
        actions += ensure_anchored_bucket(s3_client(s), s)
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
                bucket = bucket_state(s3_client(s), s.bucket)
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

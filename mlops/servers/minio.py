"""The S3 server: MinIO, a native process on loopback, supervised by pid like the Fabric nodes.

``S3Server.up()`` does only what is missing: root credentials (a random access
key and secret, generated once into a mode-0600 file; see
:mod:`~modelledger.mlops.store.s3_access`), a private TLS CA and a server
certificate for ``127.0.0.1``/``localhost``, four drive folders (so erasure
coding has parity), the ``minio`` process, then the buckets, users and policies
of :mod:`~modelledger.mlops.servers.minio_admin`. The root credentials serve
only this administration. On a healthy server it changes nothing.

Its settings (``MODELLEDGER_S3_*``) are :class:`~modelledger.runtime.settings.S3Settings`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from modelledger.mlops.servers.minio_admin import (
    RETENTION_MODE,
    bucket_as_configured,
    bucket_state,
    ensure_anchored_bucket,
    ensure_mlflow_bucket,
    ensure_users,
)
from modelledger.mlops.servers.minio_root import S3ServerError, ensure_credentials, read_credentials, root_client
from modelledger.mlops.store.s3_access import REGION, S3Credentials, s3_client
from modelledger.runtime.lifecycle import SupervisedServer, UpReport
from modelledger.runtime.private_files import make_private_dir, write_if_changed
from modelledger.runtime.settings import S3_PORT_ENV, S3Settings, S3User
from modelledger.runtime.tls import create_tls_ca, issue_tls_certificate, tls_context

PROCESS_NAME = "minio"
# Written into the S3 state folder by ``up``; ``clean`` deletes only a folder that carries it.
STATE_MARKER = ".modelledger-s3"
# ``up`` issues a new server certificate when the current one expires sooner than this.
CERT_RENEW_BEFORE = dt.timedelta(days=30)
TLS_HOSTS = ["127.0.0.1", "localhost"]


Progress = Callable[[str], None]


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


# --------------------------------------------------------------------------- the server
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
        self.claim_state_dir()
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
            say(f"starting MinIO on {s.endpoint_url}")
            env = minio_env(s, read_credentials(s))
            actions.append(self._start(minio_argv(s), env, s.s3_dir, s.host, (s.port, s.console_port)))

        seconds_to_healthy = self._run(start)
        say(f"checking buckets {s.bucket} and {s.mlflow_bucket}, users and policies")
        root = root_client(s)
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

    def _port_busy(self, host: str, port: int, err: OSError) -> str:
        return (
            f"cannot start MinIO: port {host}:{port} is already in use by another program "
            f"({err.strerror}); stop it or set {S3_PORT_ENV}"
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

    def _status_details(self, healthy: bool) -> tuple[dict[str, Any], list[str]]:
        """The endpoint, the state folder and, while the server is ready, the anchored bucket's lock settings."""
        s = self.settings
        bucket: dict[str, Any] = {"bucket": s.bucket}
        problems: list[str] = []
        if healthy:
            try:
                bucket = bucket_state(s3_client(s, user=S3User.AUDITOR), s.bucket)
                bucket["ok"] = bucket_as_configured(bucket, s)
            except Exception as exc:  # any S3 or connection failure is shown, not raised
                bucket["error"] = str(exc).splitlines()[0]
            if bucket.get("ok") is not True:
                problems.append(f"bucket {s.bucket} is not as configured")
        return {"endpoint": s.endpoint_url, "bucket": bucket, "state_dir": str(s.s3_dir)}, problems

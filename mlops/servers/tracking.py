"""The local MLflow tracking server: SQL backend, artifacts on the stack's MinIO, webhooks deliverable.

``up`` starts ``mlflow server`` as a supervised native process (pid and start
time under ``<state>/mlflow/pids``, output in ``logs/mlflow.log``) with:

- ``--backend-store-uri``: SQLite in the state folder, or the PostgreSQL URI
  of ``MlflowSettings.backend_uri`` (driven by psycopg 3: the ``postgres`` extra);
- ``--artifacts-destination modelledger-s3://<bucket>/artifacts`` with
  ``--serve-artifacts``: the artifacts live in ``s3://<bucket>/artifacts`` and
  every client uploads and downloads through the server (``mlflow-artifacts:/``),
  so it needs no S3 credentials, no trust in MinIO's CA, and the URIs resolve from
  any host. The ``modelledger-s3`` repository
  (:mod:`modelledger.mlops.servers.proxied_artifacts`) is what makes the server
  advertise no presigned S3 URLs, which stock MLflow 3.17 clients would otherwise
  use for every download and for uploads from 500 MiB on;
- the webhook settings MLflow needs to deliver to a loopback receiver at all,
  set for this local stack only: ``MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https``,
  ``MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true``, a stable
  ``MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY`` (a Fernet key kept 0600 in the state
  folder; without it every worker makes its own and stored webhooks become
  unreadable) and ``MLFLOW_WEBHOOK_CACHE_TTL=2`` (a new webhook is used within
  2 s instead of 60);
- ``--app-name basic-auth``: MLflow's own authentication, configured by
  :mod:`modelledger.mlops.servers.tracking_auth` (its users, their 0600 credential
  files, and the rule that a webhook may only point at the bridge's URL). The
  admin's bootstrap password and the Flask secret key reach the server in its
  environment, never in argv.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from modelledger.mlops.bridge.mlflow_credentials import MlflowAuthError, MlflowUser, read_user
from modelledger.mlops.servers.tracking_auth import auth_config, auth_config_file, ensure_user_files, ensure_users
from modelledger.mlops.store.s3_access import S3AccessError, aws_env, read_user_credentials
from modelledger.runtime.lifecycle import SupervisedServer, UpReport
from modelledger.runtime.private_files import read_or_create_secret, write_if_changed
from modelledger.runtime.settings import (
    MLFLOW_PORT_ENV,
    WEBHOOK_TARGET_ENV,
    BridgeSettings,
    MlflowSettings,
    S3Settings,
    S3User,
)

PROCESS_NAME = "mlflow"
STATE_MARKER = ".modelledger-mlflow"


class MlflowServerError(Exception):
    """The tracking server could not be set up, started or queried (names its log)."""


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def mlflow_argv(settings: MlflowSettings) -> list[str]:
    """The server's command line (no secret: those go through the environment)."""
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--serve-artifacts",
        "--artifacts-destination",
        settings.server_artifacts_destination,
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--workers",
        "1",
        "--app-name",
        "basic-auth",
    ]


def mlflow_env(settings: MlflowSettings, s3: S3Settings, webhook_target: str) -> dict[str, str]:
    """The server's complete environment: the backend URI (it may hold a password, so not in argv), S3
    access for artifacts as MLflow's own S3 user (its credential file, not the key), the authentication
    settings (the admin's bootstrap password, the Flask secret key), the webhook settings and the one URL
    a webhook may point at (``webhook_target``, the bridge's)."""
    return {
        "MLFLOW_AUTH_CONFIG_PATH": str(auth_config_file(settings)),
        "MLFLOW_AUTH_ADMIN_PASSWORD": read_user(settings, MlflowUser.ADMIN).password,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": read_or_create_secret(settings.flask_key_file),
        WEBHOOK_TARGET_ENV: webhook_target,
        "MLFLOW_BACKEND_STORE_URI": settings.backend_store_uri,
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(settings.mlflow_dir),
        "LANG": "C.UTF-8",
        "MLFLOW_S3_ENDPOINT_URL": s3.endpoint_url,
        **aws_env(s3, S3User.MLFLOW),
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": read_or_create_secret(settings.webhook_key_file, _fernet_key),
        "MLFLOW_WEBHOOK_CACHE_TTL": "2",
        "MLFLOW_WEBHOOK_REQUEST_TIMEOUT": "10",
        # MLflow 3's job runner (GenAI scorers, periodic tasks) starts 8 more processes, ~2 GB: not used here.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "PYTHONUNBUFFERED": "1",
    }


def server_health(settings: MlflowSettings) -> tuple[bool, str]:
    """(True, "OK") when ``/health`` answers 200."""
    try:
        with urllib.request.urlopen(f"{settings.tracking_uri}/health", timeout=2) as resp:
            body = resp.read(64).decode(errors="replace").strip()
            return resp.status == 200, body or str(resp.status)
    except (urllib.error.URLError, OSError) as exc:
        return False, str(getattr(exc, "reason", exc))


class MlflowServer(SupervisedServer):
    """The tracking server of one state folder: ``up``, ``down`` (its database is kept), ``status``, ``clean``."""

    process = PROCESS_NAME
    label = "MLflow"
    cli = "mlflow"
    error = MlflowServerError
    marker = STATE_MARKER
    marker_note = "ModelLedger MLflow state; `modelledger mlflow clean` deletes this folder"

    def __init__(
        self, settings: MlflowSettings | None = None, s3: S3Settings | None = None, webhook_target: str | None = None
    ) -> None:
        self.settings = settings or MlflowSettings.from_env()
        self.s3 = s3 or S3Settings.from_env()
        self.webhook_target = webhook_target or BridgeSettings.from_env().webhook_url
        self.health_timeout = self.settings.health_timeout
        super().__init__(self.settings.mlflow_dir)

    @property
    def _address(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    def _health(self) -> tuple[bool, str]:
        return server_health(self.settings)

    def up(self, progress: Callable[[str], None] | None = None) -> UpReport:
        """Starts the server unless it runs (its bucket and S3 user come from ``make s3-up``), then creates
        the MLflow users that are missing (see :mod:`~modelledger.mlops.servers.tracking_auth`).

        Raises:
            MlflowServerError: S3 was never set up, the port is taken, the server exited or never got
                healthy, or it refused to set up the users.
        """
        say = progress or (lambda _m: None)
        s = self.settings
        t0 = time.monotonic()
        self.claim_state_dir()
        try:
            read_user_credentials(self.s3, S3User.MLFLOW)
        except S3AccessError as exc:
            raise MlflowServerError(f"MLflow has no S3 user yet ({exc})") from exc
        try:
            actions = ensure_user_files(s)
        except MlflowAuthError as exc:  # a damaged account file
            raise MlflowServerError(str(exc)) from exc
        if write_if_changed(auth_config_file(s), auth_config(s)):
            actions.append(f"wrote {auth_config_file(s).name}")

        def start() -> None:
            say(f"starting MLflow on {s.tracking_uri} (backend {self._backend_label()})")
            env = mlflow_env(s, self.s3, self.webhook_target)
            actions.append(self._start(mlflow_argv(s), env, s.mlflow_dir, s.host, (s.port,)))

        seconds_to_healthy = self._run(start)
        try:
            actions += ensure_users(s)
        except MlflowAuthError as exc:
            raise MlflowServerError(f"{exc} (log: {self.log_path})") from exc
        return UpReport(actions, time.monotonic() - t0, seconds_to_healthy)

    def _port_busy(self, host: str, port: int, err: OSError) -> str:
        return (
            f"cannot start MLflow: port {host}:{port} is in use ({err.strerror}); "
            f"stop that program or set {MLFLOW_PORT_ENV}"
        )

    def _backend_label(self) -> str:
        """The backend URI without credentials or query (never print a password)."""
        uri = self.settings.backend_store_uri
        parts = urllib.parse.urlsplit(uri)
        if "@" not in parts.netloc and not parts.query:
            return uri
        return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}{parts.path}"

    def _status_details(self, healthy: bool) -> tuple[dict[str, Any], list[str]]:
        """Its URL, backend (without credentials) and where its artifacts go."""
        return {
            "tracking_uri": self.settings.tracking_uri,
            "backend": self._backend_label(),
            "artifacts": self.settings.artifacts_destination,
        }, []

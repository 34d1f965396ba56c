"""The bridge process: receiver, workers and reconciler around one outbox; and its supervision.

``modelledger bridge serve`` runs :class:`Bridge` in the foreground; ``bridge
up`` starts that command as a supervised native process (pid and start time
in ``<state>/bridge/pids``, JSON log lines in ``logs/bridge.log``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.config import Config

from modelledger.mlops.bridge.anchor import Anchorer, AnchorParts, SigningIdentity
from modelledger.mlops.bridge.artifacts import ArtifactAllowlist
from modelledger.mlops.bridge.mlflow_api import MlflowApi
from modelledger.mlops.bridge.mlflow_auth import (
    MlflowAuthError,
    MlflowCredentials,
    MlflowUser,
    act_as,
    acting_as,
    read_user,
)
from modelledger.mlops.bridge.outbox import LeaseLostError, Outbox
from modelledger.mlops.bridge.receiver import Receiver, make_server, serve_in_thread
from modelledger.mlops.bridge.reconciler import reconcile
from modelledger.mlops.bridge.webhooks import EVENTS
from modelledger.mlops.servers.s3_access import s3_client
from modelledger.mlops.store.upload import ModelUploader
from modelledger.runtime.private_files import write_private_file
from modelledger.runtime.processes import process_start_time
from modelledger.runtime.settings import (
    BridgeSettings,
    MlflowSettings,
    S3Settings,
    S3User,
    connection_profile_path,
)
from modelledger.sdk.profile import ConnectionProfile
from modelledger.sdk.registry.client import RegistryClient

log = logging.getLogger("modelledger.bridge")

PROCESS_NAME = "bridge"
WEBHOOK_NAME = "modelledger-bridge"
REGISTRAR_ROLE = "registrar"


class BridgeError(Exception):
    """The bridge cannot start or be set up; the message says what is missing."""


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's extra fields."""

    _STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update({k: v for k, v in vars(record).items() if k not in self._STANDARD and not k.startswith("_")})
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(doc, default=str)


def configure_logging() -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for noisy in ("urllib3", "botocore", "boto3", "mlflow", "alembic", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def mlflow_client(tracking_uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def install_webhook(settings: BridgeSettings, mlflow: MlflowSettings, rotate: bool = False) -> str:
    """Creates (or updates) the bridge's webhook in MLflow with a generated secret; returns what was done.

    It acts as MLflow's ``admin`` (MLflow 3.17 lets only admins manage webhooks;
    the bridge's own user is no admin). The secret is kept 0600 in ``<state>/bridge/webhook-secret``;
    ``rotate`` makes a new one. MLflow stores it encrypted and never shows it again.
    Every other webhook whose URL is not the bridge's is deleted, and named in what is returned:
    a stack upgraded from an anonymous MLflow server may hold webhooks anyone created, and
    an admin's PATCH that names no URL could make one active again.
    """
    try:
        with acting_as(mlflow, MlflowUser.ADMIN):
            return _install_webhook(mlflow_client(mlflow.tracking_uri), settings, rotate)
    except MlflowAuthError as exc:
        raise BridgeError(str(exc)) from exc


def _all_webhooks(client: Any) -> list[Any]:
    """Every webhook MLflow holds, page after page."""
    hooks: list[Any] = []
    token: str | None = None
    while True:
        page = client.list_webhooks(max_results=100, page_token=token)
        hooks.extend(page)
        token = page.token
        if not token:
            return hooks


def _install_webhook(client: Any, settings: BridgeSettings, rotate: bool) -> str:
    """``install_webhook``'s work through ``client`` (an ``mlflow.MlflowClient`` acting as MLflow's admin)."""
    secret_file = settings.secret_file
    fresh = rotate or not secret_file.exists()
    # A new secret reaches the file only once MLflow holds it, so the two never disagree.
    secret = secrets.token_urlsafe(32) if fresh else secret_file.read_text().strip()
    hooks = _all_webhooks(client)
    removed: list[str] = []
    for foreign in (w for w in hooks if w.url != settings.webhook_url):
        client.delete_webhook(foreign.webhook_id)
        removed.append(f"deleted webhook {foreign.webhook_id} ({foreign.name!r}) pointing at {foreign.url}")
    existing = [w for w in hooks if w.name == WEBHOOK_NAME and w.url == settings.webhook_url]
    events = list(EVENTS)
    if existing:
        hook = existing[0]
        wanted = {str(e) for e in events}
        same = {str(e) for e in hook.events} == wanted
        if same and not fresh and hook.status.is_active():
            return "; ".join([*removed, f"webhook {hook.webhook_id} already installed for {settings.webhook_url}"])
        client.update_webhook(hook.webhook_id, url=settings.webhook_url, events=events, secret=secret, status="ACTIVE")
        done = f"updated webhook {hook.webhook_id} ({'new secret' if fresh else 'events/status'})"
    else:
        hook = client.create_webhook(
            name=WEBHOOK_NAME,
            url=settings.webhook_url,
            events=events,
            description="ModelLedger: anchors every new model version on the ledger",
            secret=secret,
            status="ACTIVE",
        )
        done = f"created webhook {hook.webhook_id} for {settings.webhook_url}"
    if fresh:
        write_private_file(secret_file, secret + "\n")
    return "; ".join([*removed, done])


class SecretFile:
    """The webhook secret, re-read when the file changes (so `bridge install --rotate` needs no restart)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._value = ""
        self._lock = threading.Lock()

    def __call__(self) -> str:
        st = self.path.stat()
        stamp = (st.st_mtime_ns, st.st_ino)
        with self._lock:
            if stamp != self._stamp:
                self._value, self._stamp = self.path.read_text().strip(), stamp
            return self._value


@dataclass
class Bridge:
    """Everything ``bridge serve`` runs."""

    settings: BridgeSettings
    mlflow: MlflowSettings
    s3: S3Settings
    profile_path: Path

    @classmethod
    def from_env(cls) -> Bridge:
        settings = BridgeSettings.from_env()
        return cls(
            settings,
            MlflowSettings.from_env(),
            S3Settings.from_env(),
            connection_profile_path(),
        )

    def serve(self, stop: threading.Event) -> None:
        """Runs until ``stop`` is set: receiver, ``workers`` anchoring threads and the reconciler."""
        s = self.settings
        if not s.secret_file.exists():
            raise BridgeError(f"no webhook secret at {s.secret_file}; run `modelledger bridge install` first")
        # This process's MLflow client is the bridge's MLflow user from now on.
        try:
            act_as(self.mlflow, MlflowUser.BRIDGE)
            mlflow_user = read_user(self.mlflow, MlflowUser.BRIDGE)
        except MlflowAuthError as exc:
            raise BridgeError(str(exc)) from exc
        secret = SecretFile(s.secret_file)
        outbox = Outbox(s.outbox_file, max_attempts=s.max_attempts)
        client = MlflowApi(self.mlflow.tracking_uri)
        prof = ConnectionProfile.load(self.profile_path)
        gateway = prof.gateway(s.org, REGISTRAR_ROLE)
        network = gateway.network(prof.channel)
        registry = RegistryClient(network, prof.chaincode)
        retention = s.retention_days or self.s3.retention_days
        # Each worker streams up to 4 objects while up to 4 chunk uploads (and a HEAD or an index) are in flight.
        s3 = s3_client(self.s3, Config(max_pool_connections=max(10, 10 * s.workers)), user=S3User.BRIDGE)
        parts = AnchorParts(
            mlflow=client,
            registry=registry,
            network=network,
            uploader=ModelUploader(s3, self.s3.bucket, dt.timedelta(days=retention)),
            signing=SigningIdentity.from_msp(prof.user_msp(s.org, REGISTRAR_ROLE)),
            allowlist=ArtifactAllowlist.of(self.mlflow.tracking_uri, [self.mlflow.artifacts_bucket]),
            tracking_uri=self.mlflow.tracking_uri,
            scratch=s.scratch_dir,
            # MLflow's artifacts live on the stack's MinIO: read them there, not through the tracking server.
            artifacts_destination=self.mlflow.artifacts_destination,
            artifacts_s3=s3,
        )
        wake = threading.Event()
        orphans = outbox.release_orphans(owner_alive)
        if orphans:
            log.info("took over jobs of a stopped bridge", extra={"jobs": orphans})

        def exists(name: str, version: str) -> bool | None:
            return registry_has_version(self.mlflow.tracking_uri, name, version, mlflow_user)

        workers: list[threading.Thread] = []

        def health() -> dict[str, Any]:
            alive = sum(t.is_alive() for t in workers)
            return {"ok": alive == s.workers, "workers_alive": alive}

        receiver = Receiver(secret, outbox, exists, s.max_body, s.freshness, on_accept=wake.set, health=health)
        server = make_server(receiver, s.host, s.port)
        serve_in_thread(server)
        log.info("listening", extra={"url": s.webhook_url, "org": s.org, "workers": s.workers})
        workers += [
            threading.Thread(target=self._work, args=(Anchorer(parts, outbox, s.lease_seconds), outbox, wake, stop, i))
            for i in range(s.workers)
        ]
        threads = [*workers, threading.Thread(target=self._reconcile, args=(client, registry, outbox, wake, stop))]
        for t in threads:
            t.daemon = True
            t.start()
        try:
            stop.wait()
        finally:
            server.shutdown()
            wake.set()
            for t in threads:
                t.join(timeout=30)
            gateway.close()
            log.info("stopped")

    def _work(self, anchorer: Anchorer, outbox: Outbox, wake: threading.Event, stop: threading.Event, i: int) -> None:
        owner = f"{socket.gethostname()}:{os.getpid()}:{process_start_time(os.getpid())}:{i}"
        while not stop.is_set():
            try:
                job = outbox.lease(owner, self.settings.lease_seconds)
            except Exception:
                log.exception("outbox unavailable")
                stop.wait(1.0)
                continue
            if job is None:
                due = outbox.next_due()
                delay = 1.0 if due is None else max(0.05, min(1.0, due - time.time()))
                wake.wait(delay)
                wake.clear()
                continue
            t0 = time.perf_counter()
            beat = threading.Event()
            heart = threading.Thread(target=self._heartbeat, args=(outbox, job, beat), daemon=True)
            heart.start()
            try:
                state = anchorer.process(job)
            except Exception:  # a bug or a broken outbox: this thread keeps serving; the lease expires
                log.exception("worker error", extra={"job": job.key})
                stop.wait(1.0)
                continue
            finally:
                beat.set()
                heart.join()
            log.info("job", extra={"job": job.key, "state": state, "seconds": round(time.perf_counter() - t0, 3)})

    def _heartbeat(self, outbox: Outbox, job: Any, done: threading.Event) -> None:
        """Renews the job's lease every third of its length while the worker is busy with it."""
        period = self.settings.lease_seconds / 3
        while not done.wait(period):
            try:
                outbox.renew(job, self.settings.lease_seconds)
            except LeaseLostError:
                return
            except Exception as exc:
                log.warning("lease renewal failed", extra={"job": job.key, "reason": str(exc)})

    def _reconcile(
        self, client: Any, registry: RegistryClient, outbox: Outbox, wake: threading.Event, stop: threading.Event
    ) -> None:
        while not stop.is_set():
            try:
                report = reconcile(client, registry, outbox)
                outbox.prune_deliveries(time.time() - 2 * self.settings.freshness)
                if report.enqueued or report.revived:
                    wake.set()
                log.info(
                    "reconciled",
                    extra={
                        "scanned": report.scanned,
                        "enqueued": len(report.enqueued),
                        "revived": len(report.revived),
                        "conflicts": len(report.conflicts),
                    },
                )
            except Exception as exc:
                log.warning(
                    "reconcile failed", extra={"reason": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
                )
            stop.wait(self.settings.reconcile_seconds)


def owner_alive(owner: str) -> bool:
    """Whether the worker that holds a lease still runs: owners are ``host:pid:start time:worker``.

    Owners on other hosts are assumed alive (their leases expire on their own).
    """
    parts = owner.split(":")
    if len(parts) != 4 or parts[0] != socket.gethostname():
        return True
    try:
        pid = int(parts[1])
    except ValueError:
        return True
    return str(process_start_time(pid)) == parts[2]


def registry_has_version(
    tracking_uri: str, name: str, version: str, user: MlflowCredentials, timeout: float = 2.0
) -> bool | None:
    """Asks the registry, quickly and once, whether a version exists: True, False, or None if it cannot tell now.

    Used by the receiver, which must answer MLflow within its 10 s webhook timeout;
    MLflow's own client would retry for minutes. It asks as ``user``. MLflow 3.17
    answers a user who is not an admin 403, not 404, for a version of a model
    that does not exist; the model itself is then asked for (404 when it does not exist).
    """
    found = _registry_get(tracking_uri, "model-versions/get", {"name": name, "version": version}, user, timeout)
    if found is None and _registry_get(tracking_uri, "registered-models/get", {"name": name}, user, timeout) is False:
        return False
    return found


def _registry_get(
    tracking_uri: str, path: str, params: dict[str, str], user: MlflowCredentials, timeout: float
) -> bool | None:
    """True if the registry answers 200, False if it says the entity does not exist, None otherwise."""
    url = f"{tracking_uri}/api/2.0/mlflow/{path}?{urllib.parse.urlencode(params)}"
    req = urllib.request.Request(url, headers={"Authorization": user.header()})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status == 200
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        try:
            code = json.loads(exc.read(4096)).get("error_code", "")
        except ValueError:
            code = ""
        return False if code == "RESOURCE_DOES_NOT_EXIST" else None
    except (urllib.error.URLError, OSError):
        return None

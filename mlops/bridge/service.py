"""The bridge process: the receiver, the anchoring workers, the reconciler, the ledger follower and the alias checks.

``modelledger bridge serve`` runs :class:`Bridge` in the foreground; ``bridge
up`` starts that command as a supervised native process
(:mod:`modelledger.mlops.servers.bridge_server`). This module only wires the
parts: the receiver (:mod:`~modelledger.mlops.bridge.receiver`), the worker
and reconciler threads (:mod:`~modelledger.mlops.bridge.workers`), and what a
worker talks to (:class:`~modelledger.mlops.bridge.anchor_parts.AnchorParts`), and the
ledger follower's thread (:mod:`~modelledger.mlops.bridge.ledger_follower`), which
mirrors the chaincode's events onto MLflow tags through the same parts.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.config import Config

from modelledger.mlops.bridge.alias_guard import AliasChecks
from modelledger.mlops.bridge.anchor import Anchorer
from modelledger.mlops.bridge.anchor_parts import AnchorParts, SigningIdentity
from modelledger.mlops.bridge.artifacts import ArtifactAllowlist
from modelledger.mlops.bridge.dead_letters import DeadLetters
from modelledger.mlops.bridge.errors import BridgeError
from modelledger.mlops.bridge.ledger_follower import (
    STREAM_WINDOW,
    LedgerFollower,
    VersionMirror,
)
from modelledger.mlops.bridge.mlflow_api import MlflowApi, registry_has_version
from modelledger.mlops.bridge.mlflow_credentials import (
    MlflowAuthError,
    MlflowCredentials,
    MlflowUser,
    act_as,
    read_user,
)
from modelledger.mlops.bridge.outbox import Outbox
from modelledger.mlops.bridge.receiver import Receiver, make_server, serve_in_thread
from modelledger.mlops.bridge.webhook_secret import SecretFile
from modelledger.mlops.bridge.workers import owner_alive, reconcile_loop, work, worker_owner
from modelledger.mlops.store.s3_access import S3AccessError, s3_client
from modelledger.mlops.store.upload import ModelUploader
from modelledger.runtime.settings import BridgeSettings, MlflowSettings, S3Settings, S3User, connection_profile_path
from modelledger.sdk.gateway.events import Checkpoint, FileCheckpointer, chaincode_events
from modelledger.sdk.gateway.gateway import Gateway
from modelledger.sdk.profile import ConnectionProfile
from modelledger.sdk.registry.client import RegistryClient

__all__ = ["REGISTRAR_ROLE", "Bridge", "BridgeError"]

log = logging.getLogger("modelledger.bridge")

REGISTRAR_ROLE = "registrar"


@dataclass
class Bridge:
    """Everything ``bridge serve`` runs."""

    settings: BridgeSettings
    mlflow: MlflowSettings
    s3: S3Settings
    profile_path: Path

    @classmethod
    def from_env(cls) -> Bridge:
        return cls(
            BridgeSettings.from_env(), MlflowSettings.from_env(), S3Settings.from_env(), connection_profile_path()
        )

    def serve(self, stop: threading.Event) -> None:
        """Runs until ``stop`` is set: receiver, ``workers`` anchoring threads, the reconciler and the follower."""
        s = self.settings
        if not s.secret_file.exists():
            raise BridgeError(f"no webhook secret at {s.secret_file}; run `modelledger bridge install` first")
        mlflow_user = self._act_as_bridge()
        outbox = Outbox(s.outbox_file, max_attempts=s.max_attempts)
        gateway, parts = self._anchor_parts()
        orphans = outbox.release_orphans(owner_alive)
        if orphans:
            log.info("took over jobs of a stopped bridge", extra={"jobs": orphans})
        wake = threading.Event()
        workers = [
            threading.Thread(
                target=work,
                args=(Anchorer(parts, outbox, s.lease_seconds), outbox, wake, stop, worker_owner(i), s.lease_seconds),
            )
            for i in range(s.workers)
        ]
        mirror = VersionMirror(parts.mlflow, parts.registry, parts.locks)
        dead = DeadLetters(s.follower_dead_letter_file)
        follower = self._follower(mirror, parts, dead)
        following = threading.Thread(target=follower.run, args=(stop,), name="ledger-follower")
        # An alias set on a version: checked at once (webhook), and by every reconciler scan (the durable path).
        alias_checks = AliasChecks(mirror.remove_aliases_if_revoked)
        checking = threading.Thread(target=alias_checks.run, args=(stop,), name="alias-checks")
        receiver = self._receiver(outbox, mlflow_user, wake, workers, follower, [following, checking])
        receiver.on_alias = alias_checks.submit  # a delivery only queues the version: the ledger is never awaited
        server = make_server(receiver, s.host, s.port)
        serve_in_thread(server)
        log.info("listening", extra={"url": s.webhook_url, "org": s.org, "workers": s.workers})
        reconciler = threading.Thread(
            target=reconcile_loop,
            args=(parts.mlflow, parts.registry, outbox, wake, stop, s.reconcile_seconds, s.freshness),
            kwargs={"check_aliases": mirror.remove_aliases_if_revoked, "dead_letters": (dead, mirror.apply)},
        )
        threads = [*workers, reconciler, following, checking]
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

    def _act_as_bridge(self) -> MlflowCredentials:
        """Makes this process's MLflow client the bridge's MLflow user from now on; returns its credentials."""
        try:
            act_as(self.mlflow, MlflowUser.BRIDGE)
            return read_user(self.mlflow, MlflowUser.BRIDGE)
        except MlflowAuthError as exc:
            raise BridgeError(str(exc)) from exc

    def _anchor_parts(self) -> tuple[Gateway, AnchorParts]:
        """The Gateway connection (closed when the bridge stops) and what the anchoring workers talk to."""
        s = self.settings
        # Each worker streams up to 4 objects while up to 4 chunk uploads (and a HEAD or an index) are in flight.
        try:
            s3 = s3_client(self.s3, Config(max_pool_connections=max(10, 10 * s.workers)), user=S3User.BRIDGE)
        except S3AccessError as exc:
            raise BridgeError(str(exc)) from exc
        prof = ConnectionProfile.load(self.profile_path)
        gateway = prof.gateway(s.org, REGISTRAR_ROLE)
        network = gateway.network(prof.channel)
        retention = s.retention_days or self.s3.retention_days
        return gateway, AnchorParts(
            mlflow=MlflowApi(self.mlflow.tracking_uri),
            registry=RegistryClient(network, prof.chaincode),
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

    def _follower(self, mirror: VersionMirror, parts: AnchorParts, dead: DeadLetters) -> LedgerFollower:
        """The ledger follower: the chaincode's events from its checkpoint, mirrored by ``mirror``; ``dead``
        holds the events it moved past."""
        prof = ConnectionProfile.load(self.profile_path)

        def events(checkpoint: Checkpoint | None) -> Any:
            # From the first block the first time (every version's state is mirrored), then from the checkpoint.
            return chaincode_events(parts.network, prof.chaincode, 0, checkpoint, timeout=STREAM_WINDOW)

        return LedgerFollower(mirror, events, FileCheckpointer(self.settings.follower_checkpoint_file), dead=dead)

    def _receiver(
        self,
        outbox: Outbox,
        user: MlflowCredentials,
        wake: threading.Event,
        workers: list[threading.Thread],
        follower: LedgerFollower,
        threads: list[threading.Thread],
    ) -> Receiver:
        """The webhook receiver: checks deliveries with the secret file, asks the registry as ``user``."""
        s = self.settings

        def exists(name: str, version: str) -> bool | None:
            return registry_has_version(self.mlflow.tracking_uri, name, version, user)

        def health() -> dict[str, Any]:
            alive = sum(t.is_alive() for t in workers)
            following = threads[0]  # the follower's thread, then the alias checks
            return {
                "ok": alive == s.workers and all(t.is_alive() for t in threads),
                "workers_alive": alive,
                "follower": {**follower.status(), "alive": following.is_alive()},
            }

        return Receiver(
            SecretFile(s.secret_file), outbox, exists, s.max_body, s.freshness, on_accept=wake.set, health=health
        )

"""MinIO, the MLflow tracking server and the bridge of one state folder, brought up and down together.

``make up`` runs the same steps one CLI command at a time; this is for code
that needs the whole MLflow side at once (the integration tests, the bridge
benchmark).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelledger.mlops.bridge import install_webhook, mlflow_client
from modelledger.mlops.servers.bridge_server import BridgeProcess
from modelledger.mlops.servers.minio import S3Server
from modelledger.mlops.servers.tracking import MlflowServer
from modelledger.runtime.settings import BridgeSettings, MlflowSettings, S3Settings


@dataclass
class MlflowStack:
    """The three servers, each with its settings from the environment."""

    s3: S3Server
    mlflow: MlflowServer
    bridge: BridgeProcess

    @classmethod
    def from_env(cls) -> MlflowStack:
        bridge = BridgeSettings.from_env()
        return cls(
            S3Server(S3Settings.from_env()),
            MlflowServer(MlflowSettings.from_env(), webhook_target=bridge.webhook_url),
            BridgeProcess(bridge),
        )

    def up(self) -> Any:
        """Starts MinIO, MLflow and the bridge (its webhook installed first); returns a client of MLflow.

        The client is this process's: it acts as whichever MLflow user the
        environment names (``MLFLOW_TRACKING_USERNAME``; see
        :mod:`~modelledger.mlops.bridge.mlflow_credentials`).
        """
        self.s3.up()
        self.mlflow.up()
        self.bridge.claim_state_dir()  # before the webhook secret is written into it
        install_webhook(self.bridge.settings, self.mlflow.settings)
        self.bridge.up()
        return mlflow_client(self.mlflow.settings.tracking_uri)

    def down(self) -> list[str]:
        """Stops the bridge, MLflow and MinIO (state kept), each even if another fails; returns the failures."""
        failures = []
        for part in (self.bridge, self.mlflow, self.s3):
            try:
                part.down()
            except Exception as exc:  # keep stopping the rest
                failures.append(f"{type(part).__name__}: {exc}")
        return failures

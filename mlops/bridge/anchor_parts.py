"""What an anchoring worker is given: the outside world it talks to, the identity it signs with, a step clock."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelledger.mlops.bridge.artifacts import ArtifactAllowlist
from modelledger.mlops.bridge.concurrency import VersionLocks
from modelledger.mlops.bridge.errors import PermanentError
from modelledger.mlops.store.upload import ModelUploader
from modelledger.sdk.gateway.gateway import Network
from modelledger.sdk.registry.client import RegistryClient


@dataclass(frozen=True)
class SigningIdentity:
    """The key, certificate and CA chain the bridge signs bundles with (its registrar identity)."""

    key: Path
    certificate: Path
    chain: list[Path]

    @classmethod
    def from_msp(cls, msp_dir: Path) -> SigningIdentity:
        def files(sub: str) -> list[Path]:
            return sorted(p for p in (msp_dir / sub).iterdir() if p.is_file())

        keys, certs = files("keystore"), files("signcerts")
        if len(keys) != 1 or len(certs) != 1:
            raise PermanentError(f"{msp_dir}: expected one key and one certificate")
        chain = files("cacerts")
        if (msp_dir / "intermediatecerts").is_dir():
            chain += files("intermediatecerts")
        return cls(keys[0], certs[0], chain)


@dataclass
class AnchorParts:
    """The outside world a worker talks to."""

    mlflow: Any  # mlflow.MlflowClient
    registry: RegistryClient
    network: Network
    uploader: ModelUploader
    signing: SigningIdentity
    allowlist: ArtifactAllowlist
    tracking_uri: str
    scratch: Path | None = None
    # MLflow's --artifacts-destination and a client of that S3 store: artifacts are then read there directly.
    artifacts_destination: str = ""
    artifacts_s3: Any | None = None
    # Shared with the ledger follower: one writer of a version's ``ledger.status`` at a time.
    locks: VersionLocks = field(default_factory=VersionLocks)


class StepClock:
    """Seconds spent in each step of one job, for the job's log line (operators see where time goes)."""

    def __init__(self) -> None:
        self._t = time.perf_counter()
        self.steps: dict[str, float] = {}

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.steps[step] = round(self.steps.get(step, 0.0) + now - self._t, 4)
        self._t = now

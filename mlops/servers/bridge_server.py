"""The bridge as a supervised server: ``bridge up/down/status/clean`` run ``modelledger bridge serve``.

The process itself is :class:`~modelledger.mlops.bridge.service.Bridge`. Its state folder
(``<state>/bridge``: outbox, webhook secret, pid and log) is marked as ours by ``bridge install``
or ``bridge up``, whichever comes first; a folder the bridge made before it wrote markers holds
only its own files and is claimed as it is.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from modelledger.mlops.bridge.dead_letters import DEAD_LETTERS_SHOWN, read_dead_letters, read_set_aside
from modelledger.mlops.bridge.errors import BridgeError
from modelledger.mlops.store.s3_access import aws_env
from modelledger.runtime.lifecycle import SupervisedServer, UpReport
from modelledger.runtime.settings import BRIDGE_PORT_ENV, BridgeSettings, S3Settings, S3User

PROCESS_NAME = "bridge"
# Written into the bridge's state folder by ``install`` or ``up``; ``clean`` deletes only a folder that carries it.
STATE_MARKER = ".modelledger-bridge"
# Everything the bridge wrote into its folder before it wrote the marker: a folder holding only these is ours.
LEGACY_ENTRIES = frozenset(
    {"outbox.db", "outbox.db-journal", "outbox.db-shm", "outbox.db-wal", "webhook-secret", "logs", "pids"}
)  # (the follower's checkpoint came after the marker: a folder that holds one carries the marker)
# What only the bridge writes: a legacy folder holds at least one (``logs`` and ``pids`` alone are anyone's).
LEGACY_EVIDENCE = frozenset({"outbox.db", "webhook-secret"})


def follower_status(settings: BridgeSettings) -> dict[str, Any]:
    """The ledger follower: its checkpoint block and dead letters from their files (also while the bridge is
    down) and, from the running bridge's ``/health``, the events applied and skipped and the last error."""
    out: dict[str, Any] = {"block": None}
    try:
        doc = json.loads(settings.follower_checkpoint_file.read_text())
        out["block"] = int(doc["blockNumber"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    dead = read_dead_letters(settings.follower_dead_letter_file)
    if dead:
        out |= {"dead_letters": len(dead), "dead_letters_shown": dead[:DEAD_LETTERS_SHOWN]}
    aside = read_set_aside(settings.follower_dead_letter_file)
    if aside:
        out["dead_letters_set_aside"] = aside
    try:
        with urllib.request.urlopen(f"http://{settings.host}:{settings.port}/health", timeout=2) as resp:
            live = json.loads(resp.read(8192)).get("follower")
    except (urllib.error.URLError, OSError, ValueError):
        return out
    return {**out, **live} if isinstance(live, dict) else out


def bridge_health(settings: BridgeSettings) -> tuple[bool, str]:
    """``GET /health`` of the receiver: (its ``ok``, the outbox counts)."""
    try:
        with urllib.request.urlopen(f"http://{settings.host}:{settings.port}/health", timeout=2) as resp:
            doc = json.loads(resp.read(8192))
            counts = doc.get("outbox", {})
            return bool(doc.get("ok")), ", ".join(f"{k} {v}" for k, v in counts.items())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return False, str(getattr(exc, "reason", exc))


class BridgeProcess(SupervisedServer):
    """The ``bridge serve`` command as a supervised server: ``up``, ``down`` (the outbox keeps every job),
    ``status``, ``clean`` (deletes the outbox, the webhook secret and the logs)."""

    process = PROCESS_NAME
    label = "bridge"
    cli = "bridge"
    error = BridgeError
    marker = STATE_MARKER
    marker_note = "ModelLedger bridge state (outbox, webhook secret); `modelledger bridge clean` deletes this folder"
    health_timeout = 60.0
    stop_timeout = 40.0  # a job in flight gets time to reach a checkpoint
    legacy_entries = LEGACY_ENTRIES
    legacy_evidence = LEGACY_EVIDENCE

    def __init__(self, settings: BridgeSettings | None = None) -> None:
        self.settings = settings or BridgeSettings.from_env()
        super().__init__(self.settings.bridge_dir)

    @property
    def _address(self) -> str:
        """The receiver's address, recorded with its pid."""
        return f"{self.settings.host}:{self.settings.port}"

    def _health(self) -> tuple[bool, str]:
        return bridge_health(self.settings)

    def _status_details(self, healthy: bool) -> tuple[dict[str, Any], list[str]]:
        """The webhook URL MLflow delivers to, and the ledger follower (checkpoint block, events, last error)."""
        return {"url": self.settings.webhook_url, "follower": follower_status(self.settings)}, []

    def _port_busy(self, host: str, port: int, err: OSError) -> str:
        return f"port {host}:{port} is in use ({err.strerror}); set {BRIDGE_PORT_ENV}"

    def up(self, progress: Callable[[str], None] | None = None) -> UpReport:
        """Starts the bridge unless it runs, and waits until it answers healthy.

        Raises:
            BridgeError: No webhook secret yet (run ``bridge install``), the folder is not ours,
                the port is taken, or the bridge exited or never got healthy (names its log).
        """
        say = progress or (lambda _m: None)
        s = self.settings
        t0 = time.monotonic()
        if not s.secret_file.exists():
            raise BridgeError(f"no webhook secret at {s.secret_file}; run `modelledger bridge install` first")
        self.claim_state_dir()
        actions: list[str] = []

        def start() -> None:
            env = {k: v for k, v in os.environ.items() if k.startswith(("MODELLEDGER_", "PATH", "HOME", "LANG"))}
            # The bridge's own S3 user (its credential file), also for MLflow's client on an s3:// source.
            s3 = dataclasses.replace(S3Settings.from_env(), state_dir=s.state_dir)
            env.update({**aws_env(s3, S3User.BRIDGE), "MLFLOW_S3_ENDPOINT_URL": s3.endpoint_url})
            argv = [sys.executable, "-m", "modelledger.mlops.cli", "bridge", "serve"]
            say(f"starting the bridge on {s.webhook_url}")
            actions.append(self._start(argv, env, s.bridge_dir, s.host, (s.port,)))

        seconds_to_healthy = self._run(start)
        return UpReport(actions, time.monotonic() - t0, seconds_to_healthy)

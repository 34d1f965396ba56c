"""The bridge as a supervised process: ``bridge up/down/status/clean`` run ``modelledger bridge serve``.

The process itself is :class:`~modelledger.mlops.bridge.service.Bridge`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from modelledger.mlops.bridge.service import PROCESS_NAME, BridgeError
from modelledger.mlops.servers.minio import aws_env
from modelledger.runtime.lifecycle import UpReport, wait_healthy
from modelledger.runtime.processes import ProcessFailedError, ProcessSupervisor, wait_port_free
from modelledger.runtime.settings import BridgeSettings, S3Settings, S3User


def bridge_health(settings: BridgeSettings) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(f"http://{settings.host}:{settings.port}/health", timeout=2) as resp:
            doc = json.loads(resp.read(4096))
            counts = doc.get("outbox", {})
            return bool(doc.get("ok")), ", ".join(f"{k} {v}" for k, v in counts.items())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return False, str(getattr(exc, "reason", exc))


class BridgeProcess:
    """``bridge up/down/status``: the ``bridge serve`` command as a supervised process."""

    def __init__(self, settings: BridgeSettings | None = None) -> None:
        self.settings = settings or BridgeSettings.from_env()
        self.supervisor = ProcessSupervisor(self.settings.bridge_dir)

    @property
    def log_path(self) -> Path:
        return self.supervisor.log_path(PROCESS_NAME)

    def up(self, timeout: float = 60.0) -> UpReport:
        s = self.settings
        t0 = time.monotonic()
        if not s.secret_file.exists():
            raise BridgeError(f"no webhook secret at {s.secret_file}; run `modelledger bridge install` first")
        if self.supervisor.running(PROCESS_NAME) is not None:
            self._wait(timeout)
            return UpReport([], time.monotonic() - t0, 0.0)
        err = wait_port_free(s.host, s.port, 5.0)
        if err is not None:
            raise BridgeError(f"port {s.host}:{s.port} is in use ({err.strerror}); set MODELLEDGER_BRIDGE_PORT")
        env = {k: v for k, v in os.environ.items() if k.startswith(("MODELLEDGER_", "PATH", "HOME", "LANG"))}
        # The bridge's own S3 user (its credential file), also for MLflow's client on an s3:// source.
        s3 = dataclasses.replace(S3Settings.from_env(), state_dir=s.state_dir)
        env.update({**aws_env(s3, S3User.BRIDGE), "MLFLOW_S3_ENDPOINT_URL": s3.endpoint_url})
        argv = [sys.executable, "-m", "modelledger.mlops.cli", "bridge", "serve"]
        self.supervisor.start(PROCESS_NAME, argv, env, cwd=s.bridge_dir)
        t1 = time.monotonic()
        self._wait(timeout)
        return UpReport([f"started {PROCESS_NAME}"], time.monotonic() - t0, time.monotonic() - t1)

    def _wait(self, timeout: float) -> None:
        try:
            wait_healthy(self.supervisor, {PROCESS_NAME: lambda: bridge_health(self.settings)}, timeout, "bridge")
        except ProcessFailedError as exc:
            raise BridgeError(f"bridge failed: {exc.reason} (log: {self.log_path})") from exc

    def down(self) -> list[str]:
        return [PROCESS_NAME] if self.supervisor.stop(PROCESS_NAME, timeout=40) else []

    def clean(self) -> list[str]:
        """Stops the bridge and deletes its folder (outbox, webhook secret, logs)."""
        stopped = self.down()
        shutil.rmtree(self.settings.bridge_dir, ignore_errors=True)
        return stopped

    def status(self) -> dict[str, Any]:
        info = self.supervisor.running(PROCESS_NAME)
        ok, detail = bridge_health(self.settings) if info else (False, "not running")
        return {
            "url": self.settings.webhook_url,
            "running": info is not None,
            "healthy": ok,
            "detail": detail,
            "pid": info.pid if info else None,
            "rss_kib": info.rss_kib if info else 0,
            "log": str(self.log_path),
            "ok": info is not None and ok,
        }

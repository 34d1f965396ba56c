"""One status record for every process ModelLedger starts: Fabric nodes, CAs, chaincode servers, MinIO,
MLflow and the bridge.

:class:`ServerStatus` holds what every supervised process has (its name, address, whether it runs and
answers its health check, pid, memory and log); what only one kind of server knows (a Fabric node's
ledger heights, the S3 bucket's lock settings, MLflow's backend) goes in its ``details`` mapping, and
anything found wrong beyond the health check (a bucket not as configured) in ``problems``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from modelledger.runtime.processes import HealthCheck, ProcessSupervisor

NOT_RUNNING = "not running"


@dataclass(frozen=True)
class ServerStatus:
    """One supervised process as seen now.

    Attributes:
        name: The supervisor's name for the process (``minio``, ``peer0-Org1``).
        address: Where it serves (``host:port``, or a CA's URL).
        running: Whether the recorded process (same pid and start time) runs.
        healthy: Whether it answered its health check.
        detail: The health check's answer, or ``not running``.
        pid: Its process id while running.
        rss_kib: Resident memory now, in KiB (0 when not running).
        peak_rss_kib: Peak resident memory since its start, in KiB.
        log: Its log file.
        problems: What is wrong apart from its health (e.g. a bucket not as configured); any makes it not ``ok``.
        details: What only this kind of server reports, JSON-ready; its keys must not be field names.
    """

    name: str
    address: str
    running: bool
    healthy: bool
    detail: str
    pid: int | None = None
    rss_kib: int = 0
    peak_rss_kib: int = 0
    log: str = ""
    problems: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        clash = sorted(set(self.details) & ({f.name for f in fields(self)} | {"ok"}))
        if clash:
            raise ValueError(f"status details of {self.name} reuse field names: {', '.join(clash)}")

    @property
    def ok(self) -> bool:
        """True when it runs, answers healthy, and nothing else is wrong."""
        return self.running and self.healthy and not self.problems

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary: the fields, ``ok``, and the details beside them (one flat level)."""
        return {
            "name": self.name,
            "address": self.address,
            "running": self.running,
            "healthy": self.healthy,
            "detail": self.detail,
            "pid": self.pid,
            "rss_kib": self.rss_kib,
            "peak_rss_kib": self.peak_rss_kib,
            "log": self.log,
            "problems": list(self.problems),
            "ok": self.ok,
            **self.details,
        }

    @classmethod
    def observe(
        cls,
        supervisor: ProcessSupervisor,
        name: str,
        address: str,
        health: HealthCheck,
        details: Mapping[str, Any] | None = None,
    ) -> ServerStatus:
        """The process ``name`` of ``supervisor`` now: its health is checked only while it runs."""
        info = supervisor.running(name)
        healthy, detail = health() if info is not None else (False, NOT_RUNNING)
        return cls(
            name=name,
            address=address,
            running=info is not None,
            healthy=healthy,
            detail=detail,
            pid=info.pid if info is not None else None,
            rss_kib=info.rss_kib if info is not None else 0,
            peak_rss_kib=info.peak_rss_kib if info is not None else 0,
            log=str(supervisor.log_path(name)),
            details=dict(details or {}),
        )

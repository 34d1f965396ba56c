"""One server lifecycle: ``up`` (waiting until healthy), ``down``, ``clean`` of a marked state folder.

Every process ModelLedger starts runs under a :class:`~modelledger.runtime.processes.ProcessSupervisor`;
the servers among them (MinIO, MLflow, the bridge) share :class:`SupervisedServer`.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from modelledger.runtime.private_files import make_private_dir, write_private_file
from modelledger.runtime.processes import HealthCheck, ProcessFailedError, ProcessSupervisor


@dataclass
class UpReport:
    """What an ``up`` did. An empty ``actions`` list means nothing changed."""

    actions: list[str]
    seconds: float
    seconds_to_healthy: float


def wait_healthy(sup: ProcessSupervisor, checks: dict[str, HealthCheck], timeout: float, what: str) -> None:
    """Waits until every named process passes its check.

    Raises:
        ProcessFailedError: A process exited, or was not healthy after ``timeout`` seconds; names its log.
    """
    deadline = time.monotonic() + timeout
    pending = dict(checks)
    last: dict[str, str] = {}
    while pending:
        for name, check in list(pending.items()):
            info = sup.get(name)
            if info is None or not info.alive:
                raise ProcessFailedError(name, sup.log_path(name), f"{what} process exited; see its log")
            ok, last[name] = check()
            if ok:
                del pending[name]
        if not pending:
            return
        if time.monotonic() > deadline:
            name = sorted(pending)[0]
            raise ProcessFailedError(name, sup.log_path(name), f"not healthy after {timeout:.0f}s ({last.get(name)})")
        time.sleep(0.2)


def check_marked_dir(root: Path, marker: str) -> None:
    """Refuses a state folder that exists without our ``marker`` file (so it was not made by us).

    Raises:
        PermissionError: The folder exists without the marker.
    """
    if root.exists() and not (root / marker).is_file():
        raise PermissionError(f"refusing to delete {root}: it has no {marker} marker, so it was not made by us")


def claim_marked_dir(root: Path, marker: str, note: str) -> None:
    """Makes ``root`` a private (0700) state folder of ours, writing ``marker`` with ``note`` unless it is there.

    Missing parents (the state folder itself) are created 0700 too.

    Raises:
        PermissionError: The folder holds files but no marker; nothing is written.
    """
    if not (root / marker).is_file():
        if root.exists() and any(root.iterdir()):
            raise PermissionError(
                f"{root} exists and was not made by ModelLedger; choose another MODELLEDGER_STATE_DIR"
            )
        write_private_file(root / marker, note + "\n")
    make_private_dir(root, tighten=True)


def remove_marked_dir(root: Path, marker: str) -> None:
    """Deletes a state folder, but only one that carries our ``marker`` file.

    Raises:
        PermissionError: The folder exists without the marker; nothing is deleted.
    """
    check_marked_dir(root, marker)
    if root.exists():
        shutil.rmtree(root)


class SupervisedServer:
    """One server process that owns a marked state folder: the shared part of ``up``, ``down`` and ``clean``.

    Subclasses (the S3 and MLflow servers) set the class attributes, pass
    their state folder, and implement :meth:`_address` and :meth:`_health`;
    every refusal is raised as their ``error`` type.
    """

    process: str  # the supervisor's name for the process
    label: str  # how messages name the server
    cli: str  # the `modelledger <cli>` command group that manages it
    error: type[Exception]
    marker: str  # the file that makes the state folder ours
    marker_note: str
    health_timeout: float

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.supervisor = ProcessSupervisor(state_dir)

    @property
    def log_path(self) -> Path:
        """The server's log file."""
        return self.supervisor.log_path(self.process)

    @property
    def _address(self) -> str:
        """``host:port`` it serves on, recorded with its pid."""
        raise NotImplementedError

    def _health(self) -> tuple[bool, str]:
        raise NotImplementedError

    def _run(self, start: Callable[[], None]) -> float:
        """Calls ``start`` unless the server runs here already; waits until it is healthy.

        Returns:
            Seconds from the start to healthy (0 if it was already running).
        """
        running = self.supervisor.running(self.process)
        if running is not None and running.tag != self._address:
            raise self.error(
                f"{self.label} (pid {running.pid}) runs on {running.tag or 'an unknown address'}, not "
                f"{self._address} as configured now; run `modelledger {self.cli} down` first"
            )
        if running is not None:
            self._wait_ready()
            return 0.0
        start()
        t0 = time.monotonic()
        self._wait_ready()
        return time.monotonic() - t0

    def _wait_ready(self) -> None:
        try:
            wait_healthy(self.supervisor, {self.process: self._health}, self.health_timeout, self.label)
        except ProcessFailedError as exc:
            raise self.error(f"{self.label} failed: {exc.reason} (log: {self.log_path})") from exc

    def _claim_state_dir(self) -> None:
        try:
            claim_marked_dir(self.state_dir, self.marker, self.marker_note)
        except PermissionError as exc:
            raise self.error(str(exc)) from exc

    def down(self) -> list[str]:
        """Stops the server (by pid); its state is kept."""
        return [self.process] if self.supervisor.stop(self.process) else []

    def clean(self) -> list[str]:
        """Stops the server and deletes its state folder, refusing (before stopping anything) one that is not ours."""
        try:
            check_marked_dir(self.state_dir, self.marker)
            stopped = self.down()
            remove_marked_dir(self.state_dir, self.marker)
        except PermissionError as exc:
            raise self.error(str(exc)) from exc
        return stopped

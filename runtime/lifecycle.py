"""One server lifecycle: ``up`` (waiting until healthy), ``down``, ``status``, ``clean`` of a marked state folder.

Every process ModelLedger starts runs under a :class:`~modelledger.runtime.processes.ProcessSupervisor`;
the servers among them (MinIO, MLflow, the bridge) share :class:`SupervisedServer`, and every one reports
a :class:`~modelledger.runtime.status.ServerStatus`.

A state folder is ours when it carries our marker file, which ``up`` writes. A folder made before its
server wrote markers is recognised by its contents instead: it holds nothing but entries that server
writes (its ``legacy_entries``), at least one of which only that server writes (its ``legacy_evidence``:
logs and pids alone prove nothing); ``up`` claims it and ``clean`` may delete it. Anything else is refused.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from modelledger.runtime.private_files import make_private_dir, write_private_file
from modelledger.runtime.processes import HealthCheck, ProcessFailedError, ProcessSupervisor, wait_port_free
from modelledger.runtime.settings import STATE_DIR_ENV
from modelledger.runtime.status import ServerStatus


@dataclass
class UpReport:
    """What an ``up`` did. An empty ``actions`` list means nothing changed."""

    actions: list[str]
    seconds: float
    seconds_to_healthy: float


def wait_healthy(
    sup: ProcessSupervisor,
    checks: dict[str, HealthCheck],
    timeout: float,
    what: str,
    error: type[ProcessFailedError] = ProcessFailedError,
) -> None:
    """Waits until every named process passes its check.

    Raises:
        ProcessFailedError: (or the caller's subclass ``error``) A process exited, or was not healthy after
            ``timeout`` seconds; names its log.
    """
    deadline = time.monotonic() + timeout
    pending = dict(checks)
    last: dict[str, str] = {}
    while pending:
        for name, check in list(pending.items()):
            info = sup.get(name)
            if info is None or not info.alive:
                raise error(name, sup.log_path(name), f"{what} process exited; see its log")
            ok, last[name] = check()
            if ok:
                del pending[name]
        if not pending:
            return
        if time.monotonic() > deadline:
            name = sorted(pending)[0]
            raise error(name, sup.log_path(name), f"not healthy after {timeout:.0f}s ({last.get(name)})")
        time.sleep(0.2)


def _only_legacy_entries(root: Path, legacy: Collection[str], evidence: Collection[str] = ()) -> bool:
    """True when ``root`` is a folder that holds something, only entries named in ``legacy``, and (if
    ``evidence`` names any) at least one of the entries ``evidence`` names."""
    if not legacy or not root.is_dir():
        return False
    names = {p.name for p in root.iterdir()}
    if evidence and not names & set(evidence):
        return False
    return bool(names) and names <= set(legacy)


def check_marked_dir(
    root: Path, marker: str, legacy: Collection[str] = (), *, evidence: Collection[str] = ()
) -> None:
    """Refuses a state folder that exists without our ``marker`` file (so it was not made by us).

    A folder without the marker that holds only ``legacy`` entries (what we wrote there before
    markers existed), one of them among ``evidence`` if that names any, is accepted.

    Raises:
        PermissionError: The folder exists without the marker (and is not such a legacy folder).
    """
    if root.exists() and not (root / marker).is_file() and not _only_legacy_entries(root, legacy, evidence):
        raise PermissionError(f"refusing to delete {root}: it has no {marker} marker, so it was not made by us")


class MarkerMismatchError(PermissionError):
    """The state folder is ours, but its marker records another note (it was made for other settings)."""

    def __init__(self, root: Path, recorded: str, expected: str) -> None:
        super().__init__(f"{root} was made for {recorded!r}, not {expected!r}")
        self.root = root
        self.recorded = recorded
        self.expected = expected


def claim_marked_dir(
    root: Path,
    marker: str,
    note: str,
    legacy: Collection[str] = (),
    *,
    evidence: Collection[str] = (),
    same_note: bool = False,
) -> None:
    """Makes ``root`` a private (0700) state folder of ours, writing ``marker`` with ``note`` unless it is there.

    Missing parents (the state folder itself) are created 0700 too. A folder that
    holds only ``legacy`` entries (ours, from before markers) is claimed as well.

    Args:
        root: The state folder.
        marker: The marker file's name inside it.
        note: What the marker holds (one line).
        legacy: Entries a folder of ours from before markers may hold.
        evidence: Entries of which such a folder must hold at least one (none named: no such need).
        same_note: Also require that a marker already there holds ``note`` (e.g. a fingerprint of the
            settings the folder was made for).

    Raises:
        MarkerMismatchError: ``same_note`` is set and the marker there records another note; nothing is written.
        PermissionError: The folder holds other files but no marker; nothing is written.
    """
    marker_file = root / marker
    if marker_file.is_file():
        recorded = marker_file.read_text().strip()
        if same_note and recorded != note.strip():
            raise MarkerMismatchError(root, recorded, note.strip())
    else:
        if root.exists() and any(root.iterdir()) and not _only_legacy_entries(root, legacy, evidence):
            raise PermissionError(f"{root} exists and was not made by ModelLedger; choose another {STATE_DIR_ENV}")
        write_private_file(marker_file, note + "\n")
    make_private_dir(root, tighten=True)


def remove_marked_dir(
    root: Path, marker: str, legacy: Collection[str] = (), *, evidence: Collection[str] = ()
) -> None:
    """Deletes a state folder, but only one that carries our ``marker`` file (or is a legacy folder of ours).

    Raises:
        PermissionError: The folder exists without the marker; nothing is deleted.
    """
    check_marked_dir(root, marker, legacy, evidence=evidence)
    if root.exists():
        shutil.rmtree(root)


class SupervisedServer:
    """One server process that owns a marked state folder: the shared part of ``up``, ``down``, ``status``, ``clean``.

    Subclasses (the S3 and MLflow servers, the bridge) set the class attributes, pass
    their state folder, and implement :meth:`_address` and :meth:`_health`; they may add
    what only they report to :meth:`status` through :meth:`_status_details`. Every
    refusal is raised as their ``error`` type.
    """

    process: str  # the supervisor's name for the process
    label: str  # how messages name the server
    cli: str  # the `modelledger <cli>` command group that manages it
    error: type[Exception]
    marker: str  # the file that makes the state folder ours
    marker_note: str
    health_timeout: float
    stop_timeout: float = 15.0  # seconds between SIGTERM and SIGKILL
    # What a state folder made before this server wrote markers may hold (see the module's docstring).
    legacy_entries: frozenset[str] = frozenset()
    # Of which such a folder must hold at least one (empty: any of them will do).
    legacy_evidence: frozenset[str] = frozenset()

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

    def _status_details(self, healthy: bool) -> tuple[dict[str, Any], list[str]]:
        """What only this server reports (its ``details``) and what is wrong beyond its health.

        Args:
            healthy: Whether the server answered its health check just now.
        """
        return {}, []

    def status(self) -> ServerStatus:
        """The server now: process, memory and health from the supervisor, then its own details."""
        st = ServerStatus.observe(self.supervisor, self.process, self._address, self._health)
        details, problems = self._status_details(st.healthy)
        return replace(st, details=details, problems=tuple(problems))

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

    def _port_busy(self, host: str, port: int, err: OSError) -> str:
        """The refusal when ``port`` stays taken; subclasses name the setting that moves it."""
        return f"cannot start {self.label}: port {host}:{port} is in use ({err.strerror})"

    def _start(self, argv: list[str], env: dict[str, str], cwd: Path, host: str, ports: Sequence[int]) -> str:
        """Starts the server's process once each of ``ports`` on ``host`` is free (a server stopped a moment
        ago may hold its port briefly: up to 5 s each); returns the action to report.

        Raises:
            Exception: The server's ``error`` type, when a port stays taken (see :meth:`_port_busy`).
        """
        for port in ports:
            err = wait_port_free(host, port, 5.0)
            if err is not None:
                raise self.error(self._port_busy(host, port, err))
        self.supervisor.start(self.process, argv, env, cwd=cwd, tag=self._address)
        return f"started {self.process}"

    def _wait_ready(self) -> None:
        try:
            wait_healthy(self.supervisor, {self.process: self._health}, self.health_timeout, self.label)
        except ProcessFailedError as exc:
            raise self.error(f"{self.label} failed: {exc.reason} (log: {self.log_path})") from exc

    def claim_state_dir(self) -> None:
        """Makes the state folder ours (writing the marker), before anything is written into it."""
        try:
            claim_marked_dir(
                self.state_dir, self.marker, self.marker_note, self.legacy_entries, evidence=self.legacy_evidence
            )
        except PermissionError as exc:
            raise self.error(str(exc)) from exc

    def down(self) -> list[str]:
        """Stops the server (by pid); its state is kept."""
        return [self.process] if self.supervisor.stop(self.process, timeout=self.stop_timeout) else []

    def clean(self) -> list[str]:
        """Stops the server and deletes its state folder, refusing (before stopping anything) one that is not ours."""
        try:
            check_marked_dir(self.state_dir, self.marker, self.legacy_entries, evidence=self.legacy_evidence)
            stopped = self.down()
            remove_marked_dir(self.state_dir, self.marker, self.legacy_entries, evidence=self.legacy_evidence)
        except PermissionError as exc:
            raise self.error(str(exc)) from exc
        return stopped

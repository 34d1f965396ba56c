"""Start, find and stop the network's native processes by process id.

Each process is started in its own session with its output appended to a log
file, and its pid written to ``pids/<name>.pid`` together with the kernel's
start time for that pid. Stopping checks both, so a pid that was reused by an
unrelated program is never signalled.

Every process is started with umask 077 (``PRIVATE_UMASK``) and its folder,
pid file and log are private to our user (see ``private_files``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from modelledger.network.errors import NodeFailedError
from modelledger.network.private_files import (
    PRIVATE_UMASK,
    make_private_dir,
    open_private_log,
    write_private_file,
)

HealthCheck = Callable[[], tuple[bool, str]]


def process_start_time(pid: int) -> int | None:
    """The process start time in clock ticks since boot, or None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime); the command name (field 2) may contain spaces, so
    # split after its closing parenthesis.
    fields = stat[stat.rindex(")") + 2 :].split()
    state = fields[0]
    if state == "Z":  # zombie: exited, not yet reaped
        return None
    return int(fields[19])


def _status_kib(pid: int, field: str) -> int:
    """A memory field (``VmRSS``, ``VmHWM``) of /proc/<pid>/status, in KiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def first_busy_port(host: str, ports: list[int] | tuple[int, ...]) -> tuple[int, OSError] | None:
    """The first of ``ports`` that cannot be bound on ``host`` now, with the error, or None."""
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError as exc:
                return port, exc
    return None


def wait_port_free(host: str, port: int, timeout: float) -> OSError | None:
    """Waits until ``host:port`` can be bound; returns the last error if it still cannot.

    A server that was just stopped can keep its port for a moment while the
    kernel closes its connections, so a restart on the same port waits here.
    """
    deadline = time.monotonic() + timeout
    while True:
        busy = first_busy_port(host, [port])
        if busy is None:
            return None
        if time.monotonic() > deadline:
            return busy[1]
        time.sleep(0.1)


@dataclass(frozen=True)
class ProcessInfo:
    """A supervised process as recorded in its pid file."""

    name: str
    pid: int
    start_time: int
    log_path: Path
    argv0: str = ""
    tag: str = ""

    @property
    def alive(self) -> bool:
        """True when this exact process (same pid and start time) still runs."""
        return process_start_time(self.pid) == self.start_time

    @property
    def rss_kib(self) -> int:
        """Resident memory in KiB (0 if not running)."""
        return _status_kib(self.pid, "VmRSS") if self.alive else 0

    @property
    def peak_rss_kib(self) -> int:
        """Peak resident memory since start, in KiB (0 if not running)."""
        return _status_kib(self.pid, "VmHWM") if self.alive else 0


class ProcessSupervisor:
    """Keeps track of named processes under ``<root>/pids`` and ``<root>/logs``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pid_dir = root / "pids"
        self.log_dir = root / "logs"

    def log_path(self, name: str) -> Path:
        """Where the process ``name`` writes its output."""
        return self.log_dir / f"{name}.log"

    def _pid_file(self, name: str) -> Path:
        return self.pid_dir / f"{name}.pid"

    def get(self, name: str) -> ProcessInfo | None:
        """The recorded process ``name``, alive or not, or None if never started."""
        try:
            data = json.loads(self._pid_file(name).read_text())
            return ProcessInfo(
                name,
                int(data["pid"]),
                int(data["start_time"]),
                self.log_path(name),
                str(data.get("argv0", "")),
                str(data.get("tag", "")),
            )
        except (OSError, ValueError, KeyError):
            return None

    def running(self, name: str) -> ProcessInfo | None:
        """The process ``name`` if it is running now."""
        info = self.get(name)
        return info if info is not None and info.alive else None

    def names(self) -> list[str]:
        """Every process name with a pid file."""
        if not self.pid_dir.is_dir():
            return []
        return sorted(p.stem for p in self.pid_dir.glob("*.pid"))

    def start(
        self, name: str, argv: list[str], env: dict[str, str], cwd: Path | None = None, tag: str = ""
    ) -> ProcessInfo:
        """Starts ``argv`` detached with umask 077, unless ``name`` already runs.

        The supervisor's folder is made (or set) 0700 first, and the process's
        pid file and log are 0600, so nothing of it is readable by other users.

        Args:
            name: Process name, used for the pid and log files.
            argv: Command and arguments.
            env: The complete environment of the process.
            cwd: Working directory.
            tag: A short note kept in the pid file (e.g. which package a chaincode server serves).

        Returns:
            The running process.
        """
        existing = self.running(name)
        if existing is not None:
            return existing
        make_private_dir(self.root, tighten=True)
        make_private_dir(self.pid_dir)
        log = self.log_path(name)
        with os.fdopen(open_private_log(log), "ab") as out:
            out.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%S%z')} starting {name}\n".encode())
            out.flush()
            proc = subprocess.Popen(
                argv,
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                umask=PRIVATE_UMASK,
            )
        start_time = None
        for _ in range(50):
            start_time = process_start_time(proc.pid)
            if start_time is not None:
                break
            time.sleep(0.01)
        if start_time is None:
            start_time = -1  # exited at once; recorded so the log can be pointed at
        write_private_file(
            self._pid_file(name), json.dumps({"pid": proc.pid, "start_time": start_time, "argv0": argv[0], "tag": tag})
        )
        # Popen objects are dropped on purpose: the process outlives this one.
        # Reap it if it exits while we are still running, so it does not linger as a zombie.
        _ZOMBIE_GUARD.append(proc)
        return ProcessInfo(name, proc.pid, start_time, log, argv[0], tag)

    def stop(self, name: str, timeout: float = 15.0) -> bool:
        """Stops the process ``name`` (SIGTERM, then SIGKILL after ``timeout``).

        Returns:
            True if a running process was stopped.
        """
        info = self.running(name)
        if info is None:
            self._pid_file(name).unlink(missing_ok=True)
            return False
        self.kill(info, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _reap()
            if not info.alive:
                break
            time.sleep(0.05)
        else:
            self.kill(info, signal.SIGKILL)
            kill_deadline = time.monotonic() + 10
            while info.alive and time.monotonic() < kill_deadline:
                _reap()
                time.sleep(0.05)
            if info.alive:
                raise OSError(f"{name} (pid {info.pid}) survived SIGKILL")
        self._pid_file(name).unlink(missing_ok=True)
        return True

    @staticmethod
    def kill(info: ProcessInfo, sig: int) -> None:
        """Sends ``sig`` to the process if it is still the one recorded, and to the children it started.

        Every supervised process leads its own process group (it was started in a
        new session), so a server that forks helpers (MLflow's uvicorn) takes them along.
        """
        if info.alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if os.getpgid(info.pid) == info.pid:
                    os.killpg(info.pid, sig)
                    return
            with contextlib.suppress(ProcessLookupError):
                os.kill(info.pid, sig)


_ZOMBIE_GUARD: list[subprocess.Popen[bytes]] = []


def _reap() -> None:
    for proc in list(_ZOMBIE_GUARD):
        if proc.poll() is not None:
            _ZOMBIE_GUARD.remove(proc)


@dataclass
class UpReport:
    """What an ``up`` did. An empty ``actions`` list means nothing changed."""

    actions: list[str]
    seconds: float
    seconds_to_healthy: float


def wait_healthy(sup: ProcessSupervisor, checks: dict[str, HealthCheck], timeout: float, what: str) -> None:
    """Waits until every named process passes its check.

    Raises:
        NodeFailedError: A process exited, or was not healthy after ``timeout`` seconds; names its log.
    """
    deadline = time.monotonic() + timeout
    pending = dict(checks)
    last: dict[str, str] = {}
    while pending:
        for name, check in list(pending.items()):
            info = sup.get(name)
            if info is None or not info.alive:
                raise NodeFailedError(name, sup.log_path(name), f"{what} process exited; see its log")
            ok, last[name] = check()
            if ok:
                del pending[name]
        if not pending:
            return
        if time.monotonic() > deadline:
            name = sorted(pending)[0]
            raise NodeFailedError(name, sup.log_path(name), f"not healthy after {timeout:.0f}s ({last.get(name)})")
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
        except NodeFailedError as exc:
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

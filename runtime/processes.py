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
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from modelledger.runtime.private_files import (
    PRIVATE_UMASK,
    make_private_dir,
    open_private_log,
    write_private_file,
)

HealthCheck = Callable[[], tuple[bool, str]]


class ProcessFailedError(Exception):
    """A supervised process exited, or did not become healthy in time.

    Attributes:
        node: The process name, e.g. ``peer0-Org1`` or ``minio``.
        log_path: Where that process writes its log.
        reason: Why it failed.
    """

    def __init__(self, node: str, log_path: Path, reason: str) -> None:
        self.node = node
        self.log_path = log_path
        self.reason = reason
        super().__init__(f"{node} failed: {reason} (log: {log_path})")


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

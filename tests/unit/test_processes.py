"""Process supervision by pid file, with real (tiny) processes."""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

from modelledger.runtime.processes import ProcessSupervisor, wait_port_free


def test_start_is_idempotent_and_stop_kills_by_pid(tmp_path: Path) -> None:
    sup = ProcessSupervisor(tmp_path)
    argv = [sys.executable, "-c", "import time; print('hello', flush=True); time.sleep(60)"]
    first = sup.start("sleeper", argv, dict(os.environ))
    second = sup.start("sleeper", argv, dict(os.environ))
    assert second.pid == first.pid
    assert sup.running("sleeper") is not None
    assert sup.names() == ["sleeper"]
    assert sup.stop("sleeper") is True
    assert sup.running("sleeper") is None
    assert sup.names() == []
    assert "starting sleeper" in sup.log_path("sleeper").read_text()
    assert sup.stop("sleeper") is False


def test_a_reused_pid_is_never_signalled(tmp_path: Path) -> None:
    sup = ProcessSupervisor(tmp_path)
    sup.pid_dir.mkdir(parents=True)
    # Our own pid, but with a start time that is not ours: must count as not running.
    (sup.pid_dir / "ghost.pid").write_text(json.dumps({"pid": os.getpid(), "start_time": 1}))
    assert sup.get("ghost") is not None
    assert sup.running("ghost") is None
    assert sup.stop("ghost") is False  # and we are still alive to assert it


def test_stop_escalates_to_sigkill(tmp_path: Path) -> None:
    sup = ProcessSupervisor(tmp_path)
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    info = sup.start("stubborn", [sys.executable, "-c", code], dict(os.environ))
    time.sleep(0.3)  # let it install the handler
    assert sup.stop("stubborn", timeout=0.5) is True
    assert not info.alive


def test_wait_port_free_waits_for_a_listener_to_go_away() -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    err = wait_port_free("127.0.0.1", port, timeout=0.2)
    assert err is not None and err.errno == errno.EADDRINUSE
    threading.Timer(0.3, listener.close).start()
    assert wait_port_free("127.0.0.1", port, timeout=5) is None

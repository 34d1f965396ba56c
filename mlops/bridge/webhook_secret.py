"""The webhook's secret as the receiver reads it: the file ``bridge install`` writes, re-read when it changes."""

from __future__ import annotations

import threading
from pathlib import Path


class SecretFile:
    """The webhook secret, re-read when the file changes (so `bridge install --rotate` needs no restart)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._value = ""
        self._lock = threading.Lock()

    def __call__(self) -> str:
        st = self.path.stat()
        stamp = (st.st_mtime_ns, st.st_ino)
        with self._lock:
            if stamp != self._stamp:
                self._value, self._stamp = self.path.read_text().strip(), stamp
            return self._value

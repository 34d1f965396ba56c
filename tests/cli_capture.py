"""Running the real ``modelledger`` CLI in a terminal (a pty) or into a pipe, and reading its output back.

The readers turn each output mode back into records, so that a test can say
"every value came out whole": :func:`read_tsv` (a pipe), :func:`read_table` (a
rich table on a terminal; a prose cell wrapped over several lines is joined
with spaces), :func:`read_blocks` (``key: value`` blocks; a value on indented
lines below its key is joined with spaces).
"""

from __future__ import annotations

import fcntl
import io
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Collection, Mapping
from pathlib import Path

from rich.cells import cell_len

from modelledger.mlops.cli.output import CliConsole

# The CLI as a user runs it: the venv's entry point, next to this interpreter.
CLI = str(Path(sys.executable).with_name("modelledger"))
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


def minimal_env(home: Path, **extra: str) -> dict[str, str]:
    """A bare environment: PATH, HOME and ``extra`` (e.g. COLUMNS, TERM, the state folder's variable)."""
    return {"PATH": os.environ["PATH"], "HOME": str(home), **extra}


def run_piped(args: list[str], env: Mapping[str, str], timeout: float = 120) -> str:
    """Runs ``modelledger ARGS`` with stdout a pipe; its stdout (it must exit 0)."""
    done = subprocess.run([CLI, *args], env=dict(env), capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def run_in_pty(args: list[str], env: Mapping[str, str], columns: int, timeout: float = 120) -> str:
    """Runs ``modelledger ARGS`` in a pseudo-terminal ``columns`` wide (COLUMNS too); what it wrote, with
    ``\\n`` line ends and the terminal's escape sequences as they came (it must exit 0)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    proc = subprocess.Popen(
        [CLI, *args], env={**env, "COLUMNS": str(columns)}, stdin=slave, stdout=slave, stderr=slave, close_fds=True
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    out = b"".join(chunks).decode().replace("\r\n", "\n")
    assert proc.returncode == 0, out
    return out


def strip_ansi(text: str) -> str:
    """``text`` without terminal escape sequences (colours, cursor moves)."""
    return ANSI.sub("", text)


def too_wide(text: str, columns: int) -> list[str]:
    """The lines wider than ``columns``, but for a line holding one word alone (a URI longer than the
    terminal is printed whole, for the terminal to wrap, rather than broken)."""
    return [line for line in text.splitlines() if cell_len(line) > columns and len(line.split()) != 1]


def read_tsv(text: str) -> tuple[list[str], list[list[str]]]:
    """The header and the records of piped table output; ``# `` lines are notes, not records. Every
    record has the header's number of fields."""
    lines = [line for line in text.splitlines() if not line.startswith("# ")]
    header, rows = lines[0].split("\t"), [line.split("\t") for line in lines[1:]]
    assert all(len(r) == len(header) for r in rows), (header, rows)
    return header, rows


def read_table(text: str) -> tuple[list[str], list[list[str]]]:
    """The header and records of a rich table (default box); a record's continuation lines (a wrapped
    prose cell; the first cell is then empty) are joined to it with spaces."""
    header: list[str] = []
    rows: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("┃"):
            header = [c.strip() for c in line.strip("┃").split("┃")]
        elif line.startswith("│"):
            cells = [c.strip() for c in line.strip("│").split("│")]
            if cells[0] or not rows:
                rows.append(cells)
            else:
                rows[-1] = [f"{a} {b}".strip() if b else a for a, b in zip(rows[-1], cells, strict=True)]
    return header, rows


def read_blocks(text: str, keys: Collection[str]) -> list[dict[str, str]]:
    """The records of block output: ``key: value`` lines, or ``key:`` and the value on indented lines below
    (joined with spaces), a blank line between records. Lines that name none of ``keys`` (a title, a
    note) are skipped."""
    records: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    key: str | None = None
    for line in text.splitlines():
        m = re.match(r"^([^\s:][^:]*):(?: +(.*))?$", line)
        if not line.strip():
            current, key = None, None
        elif m and m[1] in keys:
            if current is None:
                current = {}
                records.append(current)
            key = m[1]
            current[key] = (m[2] or "").strip()
        elif line.startswith("    ") and current is not None and key is not None:
            current[key] = f"{current[key]} {line.strip()}".strip()
        else:
            key = None
    return records


def terminal(width: int) -> tuple[CliConsole, io.StringIO]:
    """The CLI's console on a colour terminal ``width`` columns wide, and what it printed."""
    out = io.StringIO()
    return CliConsole(file=out, width=width, force_terminal=True, color_system="standard"), out


def pipe() -> tuple[CliConsole, io.StringIO]:
    """The CLI's console writing to a pipe, and what it printed."""
    out = io.StringIO()
    return CliConsole(file=out, force_terminal=False), out

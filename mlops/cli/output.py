"""Shared output helpers for the CLI: JSON for scripts, rich for people."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

from rich.console import Console
from rich.markup import escape

console = Console()
err_console = Console(stderr=True)


def emit_json(data: Any) -> None:
    """Prints ``data`` as JSON on stdout (one document, sorted keys)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def fail(message: str, as_json: bool, code: int = 1) -> NoReturn:
    """Reports an error (as JSON or red text on stderr) and exits with ``code``."""
    if as_json:
        emit_json({"error": message})
    else:
        err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise SystemExit(code)

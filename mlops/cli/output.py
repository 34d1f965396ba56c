"""Shared output helpers for the CLI: JSON for scripts, rich for people."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

console = Console()
err_console = Console(stderr=True)

# Every command's --json flag.
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


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


def show_up(what: str, report: Any, status: Any, as_json: bool, render: Callable[[Any], None]) -> None:
    """Prints what an ``up`` did (an ``UpReport``) and the status after it: the same shape for every part."""
    if as_json:
        emit_json(
            {
                "actions": report.actions,
                "seconds": round(report.seconds, 2),
                "seconds_to_healthy": round(report.seconds_to_healthy, 2),
                "status": status.to_dict(),
            }
        )
        return
    if report.actions:
        for a in report.actions:
            console.print(f"  • {escape(a)}")
        console.print(f"{what} up in {report.seconds:.1f}s (healthy {report.seconds_to_healthy:.1f}s after start)")
    else:
        console.print(f"{what} already up and healthy: nothing changed")
    render(status)


def bring_up(what: str, server: Any, errors: type[Exception], as_json: bool, render: Callable[[Any], None]) -> None:
    """The ``up`` command of a part: ``server.up`` (a spinner with its progress on a terminal), its
    refusals (``errors``) as a one-line failure, then :func:`show_up` with the status after it."""
    try:
        if as_json:
            report = server.up()
        else:
            with console.status(f"bringing {what} up…") as spinner:
                report = server.up(progress=lambda m: spinner.update(m))
    except errors as exc:
        fail(str(exc), as_json)
    show_up(what, report, server.status(), as_json, render)


def show_status(status: Any, healthy: bool, as_json: bool, render: Callable[[Any], None]) -> None:
    """The ``status`` command of a part: JSON or ``render``; exit 1 unless ``healthy``."""
    if as_json:
        emit_json(status.to_dict())
    else:
        render(status)
    if not healthy:
        raise SystemExit(1)


def show_stopped(what: str, stopped: list[str], as_json: bool) -> None:
    """The ``down`` command's answer: what was stopped (nothing, if it was not running)."""
    if as_json:
        emit_json({"stopped": stopped})
    else:
        console.print(f"stopped {what}" if stopped else f"{what} was not running")


def show_cleaned(what: str, stopped: list[str], removed: Path, as_json: bool) -> None:
    """The ``clean`` command's answer: what was stopped and which state folder was deleted."""
    if as_json:
        emit_json({"stopped": stopped, "removed": str(removed)})
    else:
        console.print(
            f"stopped {what} and removed its state {removed}" if stopped else f"removed {what} state {removed}"
        )


_MARKS = {True: "[green]ok[/]", False: "[red]FAILED[/]", None: "[yellow]not made[/]"}


def show_checks(checks: Any) -> None:
    """One line per named check (``ok``: True, False, or None for a check that could not be made)."""
    for c in checks:
        console.print(f"  {_MARKS[c.ok]} {c.name}: {escape(c.detail)}")

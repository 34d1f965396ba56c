"""The commands every supervised server has: ``up``, ``down``, ``status``, ``clean`` and ``logs``.

:func:`add_server_commands` adds them to a command group for any
:class:`~modelledger.runtime.lifecycle.SupervisedServer`; ``modelledger s3`` and
``modelledger mlflow`` are made of them alone (below), ``modelledger bridge`` adds
its own commands beside them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from modelledger.mlops.cli.output import (
    Cell,
    JsonOpt,
    bring_up,
    console,
    emit_json,
    fail,
    show_cleaned,
    show_fields,
    show_heading,
    show_status,
    show_stopped,
    styled,
)
from modelledger.mlops.servers.minio import S3Server
from modelledger.mlops.servers.tracking import MlflowServer
from modelledger.runtime.lifecycle import SupervisedServer
from modelledger.runtime.status import ServerStatus


@dataclass(frozen=True)
class ServerCommands:
    """How one server's commands name it, build it and show it.

    Attributes:
        make: Builds the server from the environment (a ``ValueError`` names a bad setting).
        name: The server in ``down`` and ``clean`` messages ("MinIO", "the bridge").
        up_name: The part in ``up`` messages ("S3", "bridge").
        title: The heading of its status view on a terminal ("S3 (MinIO) https://...").
        fields: Its own fields of the status view, after health, pid and memory (paths last); in a
            pipe the title is left out, so they name its address too.
        help: The help text of each command, by command name.
    """

    make: Callable[[], SupervisedServer]
    name: str
    up_name: str
    title: Callable[[ServerStatus], str]
    fields: Callable[[ServerStatus], list[tuple[str, Cell]]]
    help: dict[str, str]


def render_server(st: ServerStatus, title: str, fields: list[tuple[str, Cell]]) -> None:
    """Prints a server's status for people (:func:`show_fields`): its health, process and memory, its own fields."""
    rows: list[tuple[str, Cell]] = [
        ("health", styled("ready", "green") if st.healthy else styled(st.detail, "red")),
        ("pid", str(st.pid or "-")),
        ("memory", f"RSS {st.rss_kib / 1024:.0f} MiB (peak {st.peak_rss_kib / 1024:.0f} MiB)"),
        *(("problem", styled(problem, "red")) for problem in st.problems),
        *fields,
    ]
    show_fields(title, rows)


def add_server_commands(app: typer.Typer, spec: ServerCommands) -> None:
    """Adds ``up``, ``down``, ``status``, ``clean`` and ``logs`` for the server ``spec`` describes to ``app``."""

    def server(as_json: bool) -> SupervisedServer:
        try:
            return spec.make()
        except ValueError as exc:
            fail(str(exc), as_json)

    def render(st: ServerStatus) -> None:
        render_server(st, spec.title(st), spec.fields(st))

    @app.command(help=spec.help["up"])
    def up(as_json: JsonOpt = False) -> None:
        srv = server(as_json)
        bring_up(spec.up_name, srv, srv.error, as_json, render)

    @app.command(help=spec.help["down"])
    def down(as_json: JsonOpt = False) -> None:
        srv = server(as_json)
        try:
            stopped = srv.down()
        except OSError as exc:  # it survived SIGKILL
            fail(str(exc), as_json)
        show_stopped(spec.name, stopped, as_json)

    @app.command(help=spec.help["status"])
    def status(as_json: JsonOpt = False) -> None:
        st = server(as_json).status()
        show_status(st, st.ok, as_json, render)

    @app.command(help=spec.help["clean"])
    def clean(as_json: JsonOpt = False) -> None:
        srv = server(as_json)
        try:
            stopped = srv.clean()
        except (srv.error, OSError) as exc:
            fail(str(exc), as_json)
        show_cleaned(spec.name, stopped, srv.state_dir, as_json)

    @app.command(help=f"Show the last lines of {spec.name}'s log.")
    def logs(
        lines: Annotated[int, typer.Option("--lines", "-n", help="Lines to show.")] = 20,
        as_json: JsonOpt = False,
    ) -> None:
        path = server(as_json).log_path
        tail = _tail(path, lines)
        if as_json:
            emit_json({"path": str(path), "tail": tail})
            return
        show_heading(f"{spec.name} ({path})")
        if not tail:
            console.print("(no log lines yet)")
        for line in tail:
            console.print(line, markup=False, highlight=False)


def _tail(path: Path, lines: int) -> list[str]:
    """The last ``lines`` lines of a log (none if it does not exist yet)."""
    return path.read_text(errors="replace").splitlines()[-lines:] if path.is_file() and lines > 0 else []


# --------------------------------------------------------------------------- modelledger s3
def _bucket_fields(st: ServerStatus) -> list[tuple[str, Cell]]:
    b = st.details["bucket"]
    if "error" in b:
        return [("bucket", b["bucket"]), ("bucket check", styled(b["error"], "red"))]
    if "object_lock" not in b:
        return []
    days = f" {b['retention_days']} day(s)" if b.get("retention_days") else ""
    return [
        ("bucket", b["bucket"]),
        ("bucket settings", styled("as configured", "green") if b.get("ok") else styled("not as configured", "red")),
        ("object lock", b["object_lock"] or "off"),
        ("retention", f"{b['retention_mode'] or 'none'}{days}"),
        ("versioning", b["versioning"] or "off"),
    ]


S3_COMMANDS = ServerCommands(
    make=S3Server,
    name="MinIO",
    up_name="S3",
    title=lambda st: f"S3 (MinIO) {st.details['endpoint']}",
    fields=lambda st: [
        ("endpoint", st.details["endpoint"]),
        *_bucket_fields(st),
        ("state", st.details["state_dir"]),
        ("log", st.log),
    ],
    help={
        "up": "Start MinIO (credentials, TLS, drives on first use) and create the anchored bucket (idempotent).",
        "down": "Stop MinIO (by pid); objects, credentials and certificates are kept.",
        "status": "Health, memory and the anchored bucket's Object Lock settings (exit 1 unless all is as configured).",
        "clean": "Stop MinIO and delete all S3 state, objects included.",
    },
)

s3_app = typer.Typer(
    help="Run the S3 server (MinIO): the anchored bucket of write-once model copies, and MLflow's artifacts.",
    no_args_is_help=True,
)
add_server_commands(s3_app, S3_COMMANDS)


# --------------------------------------------------------------------------- modelledger mlflow
MLFLOW_COMMANDS = ServerCommands(
    make=MlflowServer,
    name="MLflow",
    up_name="MLflow",
    title=lambda st: f"MLflow {st.details['tracking_uri']}",
    fields=lambda st: [
        ("tracking uri", st.details["tracking_uri"]),
        ("backend", st.details["backend"]),
        ("artifacts", st.details["artifacts"]),
        ("log", st.log),
    ],
    help={
        "up": "Start the tracking server (idempotent; the first start creates its database).",
        "down": "Stop the tracking server; its database and artifacts are kept.",
        "status": "Health of the tracking server; exit 1 if it is not healthy.",
        "clean": "Stop the tracking server and delete its state folder (artifacts in S3 stay).",
    },
)

mlflow_app = typer.Typer(help="Run the MLflow tracking server (SQL backend, artifacts on MinIO).", no_args_is_help=True)
add_server_commands(mlflow_app, MLFLOW_COMMANDS)

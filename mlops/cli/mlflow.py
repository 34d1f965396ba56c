"""``modelledger mlflow``: run the local MLflow tracking server."""

from __future__ import annotations

import typer
from rich.markup import escape

from modelledger.mlops.cli.network import JsonOpt
from modelledger.mlops.cli.output import bring_up, console, fail, show_cleaned, show_status, show_stopped
from modelledger.mlops.servers.tracking import MlflowServer, MlflowServerError, MlflowStatus

app = typer.Typer(help="Run the MLflow tracking server (SQL backend, artifacts on MinIO).", no_args_is_help=True)


def _server(as_json: bool) -> MlflowServer:
    try:
        return MlflowServer()
    except ValueError as exc:
        fail(str(exc), as_json)


def render_status(st: MlflowStatus) -> None:
    health = "[green]ready[/]" if st.healthy else f"[red]{escape(st.detail)}[/]"
    console.print(
        f"MLflow {st.tracking_uri} · {health} · pid {st.pid or '-'} · RSS {st.rss_kib / 1024:.0f} MiB", soft_wrap=True
    )
    console.print(f"  backend: {escape(st.backend)} · artifacts: {st.artifacts} · log: {st.log}", soft_wrap=True)


@app.command()
def up(as_json: JsonOpt = False) -> None:
    """Start the tracking server (idempotent; the first start creates its database)."""
    bring_up("MLflow", _server(as_json), MlflowServerError, as_json, render_status)


@app.command()
def down(as_json: JsonOpt = False) -> None:
    """Stop the tracking server; its database and artifacts are kept."""
    show_stopped("MLflow", _server(as_json).down(), as_json)


@app.command()
def status(as_json: JsonOpt = False) -> None:
    """Health of the tracking server; exit 1 if it is not healthy."""
    st = _server(as_json).status()
    show_status(st, st.ok, as_json, render_status)


@app.command()
def clean(as_json: JsonOpt = False) -> None:
    """Stop the tracking server and delete its state folder (artifacts in S3 stay)."""
    srv = _server(as_json)
    try:
        stopped = srv.clean()
    except MlflowServerError as exc:
        fail(str(exc), as_json)
    show_cleaned("MLflow", stopped, srv.state_dir, as_json)

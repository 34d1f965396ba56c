"""``modelledger s3``: run the S3 server (MinIO) and its anchored bucket."""

from __future__ import annotations

import typer
from rich.markup import escape

from modelledger.mlops.cli.network import JsonOpt
from modelledger.mlops.cli.output import bring_up, console, fail, show_cleaned, show_status, show_stopped
from modelledger.mlops.servers.minio import S3Server, S3ServerError, S3Status

app = typer.Typer(help="Run the S3 server (MinIO) that holds the anchored artifacts.", no_args_is_help=True)


def _server(as_json: bool) -> S3Server:
    try:
        return S3Server()
    except ValueError as exc:
        fail(str(exc), as_json)
        raise  # unreachable


def render_status(st: S3Status) -> None:
    """Prints the status for people."""
    health = "[green]ready[/]" if st.healthy else f"[red]{escape(st.detail)}[/]"
    console.print(
        f"S3 (MinIO) {st.endpoint} · {health} · pid {st.pid or '-'} · RSS {st.rss_kib / 1024:.0f} MiB"
        f" (peak {st.peak_rss_kib / 1024:.0f} MiB)",
        soft_wrap=True,
    )
    b = st.bucket
    if "error" in b:
        console.print(f"  bucket {escape(b['bucket'])}: [red]{escape(b['error'])}[/]", soft_wrap=True)
    elif "object_lock" in b:
        days = f" {b['retention_days']} day(s)" if b.get("retention_days") else ""
        mark = "[green]as configured[/]" if b.get("ok") else "[red]not as configured[/]"
        console.print(
            f"  bucket {escape(b['bucket'])}: Object Lock {b['object_lock'] or 'off'},"
            f" retention {b['retention_mode'] or 'none'}{days}, versioning {b['versioning'] or 'off'} · {mark}",
            soft_wrap=True,
        )
    console.print(f"  state: {st.state_dir} · log: {st.log}", soft_wrap=True)


@app.command()
def up(as_json: JsonOpt = False) -> None:
    """Start MinIO (credentials, TLS, drives on first use) and create the anchored bucket (idempotent)."""
    bring_up("S3", _server(as_json), S3ServerError, as_json, render_status)


@app.command()
def down(as_json: JsonOpt = False) -> None:
    """Stop MinIO (by pid); objects, credentials and certificates are kept."""
    show_stopped("MinIO", _server(as_json).down(), as_json)


@app.command()
def status(as_json: JsonOpt = False) -> None:
    """Health, memory and the anchored bucket's Object Lock settings (exit 1 unless all is as configured)."""
    st = _server(as_json).status()
    show_status(st, st.ok, as_json, render_status)


@app.command()
def clean(as_json: JsonOpt = False) -> None:
    """Stop MinIO and delete all S3 state, objects included."""
    srv = _server(as_json)
    try:
        stopped = srv.clean()
    except S3ServerError as exc:
        fail(str(exc), as_json)
    show_cleaned("MinIO", stopped, srv.state_dir, as_json)

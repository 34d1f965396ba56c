"""``modelledger bridge``: install the MLflow webhook and run the bridge that anchors every model version."""

from __future__ import annotations

import signal
import threading
from typing import Annotated, Any

import typer
from rich.markup import escape

from modelledger.mlops.bridge import Bridge, BridgeError, Outbox, install_webhook
from modelledger.mlops.cli.output import Cell, Column, JsonOpt, console, emit_json, fail, show_note, show_table, styled
from modelledger.mlops.cli.servers import ServerCommands, add_server_commands
from modelledger.mlops.servers.bridge_server import BridgeProcess
from modelledger.runtime.logs import configure_logging
from modelledger.runtime.settings import BridgeSettings, MlflowSettings
from modelledger.runtime.status import ServerStatus
from modelledger.sdk.gateway.errors import GatewayError

app = typer.Typer(help="The MLflow bridge: webhook, outbox, anchoring worker, reconciler.", no_args_is_help=True)


def _settings(as_json: bool) -> BridgeSettings:
    try:
        return BridgeSettings.from_env()
    except ValueError as exc:
        fail(str(exc), as_json)


@app.command()
def install(
    rotate: Annotated[bool, typer.Option("--rotate", help="Generate a new webhook secret.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create (or update) the MLflow webhook that tells the bridge about new model versions."""
    settings = _settings(as_json)
    try:
        BridgeProcess(settings).claim_state_dir()  # the secret is the first file of the bridge's folder
    except BridgeError as exc:
        fail(str(exc), as_json)
    try:
        done = install_webhook(settings, MlflowSettings.from_env(), rotate=rotate)
    except Exception as exc:  # MLflow unreachable or refusing: say so plainly
        fail(f"cannot install the webhook in MLflow: {exc}", as_json)
    if as_json:
        emit_json({"done": done, "url": settings.webhook_url, "secret_file": str(settings.secret_file)})
    else:
        console.print(f"{escape(done)} · secret kept in {settings.secret_file}")


@app.command()
def serve() -> None:
    """Run the bridge in the foreground (what `bridge up` starts); JSON log lines on stdout."""
    configure_logging()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        Bridge.from_env().serve(stop)
    except (BridgeError, GatewayError, ValueError, OSError) as exc:
        fail(str(exc), False)


def _dead_letters(f: dict[str, Any]) -> str:
    """`` · N dead-lettered, re-mirrored by the reconciler: m/1, m/2`` (and a damaged file set aside), or nothing."""
    aside = f.get("dead_letters_set_aside")
    note = f" · a damaged dead-letter file was set aside (remove it once inspected): {aside}" if aside else ""
    count = int(f.get("dead_letters") or 0)
    if not count:
        return note
    shown = [
        f"{e.get('name')}/{e.get('version')}" if e.get("name") else f"tx {e.get('tx_id', '')}"
        for e in f.get("dead_letters_shown") or []
    ]
    full = " (list full: failing events are retried)" if f.get("dead_letters_full") else ""
    more = f" +{count - len(shown)} more" if count > len(shown) else ""
    return f" · {count} dead-lettered, re-mirrored by the reconciler{full}: {', '.join(shown)}{more}{note}"


def _follower_line(f: dict[str, Any]) -> Cell:
    """The ledger follower in one line: checkpoint block, events applied and skipped, dead letters, the last error."""
    block = "no event handled yet" if f.get("block") is None else f"block {f['block']}"
    dead = _dead_letters(f)
    if "applied" not in f:  # the bridge is not answering: only its checkpoint and dead letters are known
        return styled(f"checkpoint: {block}{dead}", "red") if dead else f"checkpoint: {block}"
    line = f"checkpoint: {block} · {f['applied']} event(s) applied · {f.get('skipped', 0)} skipped{dead}"
    if not f.get("alive", True):
        return styled(f"stopped · {line}", "red")
    if f.get("last_error"):
        error = f"last error ({f.get('last_error_at', '')}): {f['last_error']}"
        if f.get("retrying") or dead:
            return styled(f"{line} · retrying · {error}" if f.get("retrying") else f"{line} · {error}", "red")
        return f"{line} · {error}"
    return styled(line, "red") if dead else line


def _bridge_fields(st: ServerStatus) -> list[tuple[str, Cell]]:
    # While it is healthy its health check's answer is the outbox counts.
    return [
        ("url", st.details["url"]),
        *([("outbox", st.detail)] if st.healthy else []),
        ("ledger follower", _follower_line(st.details.get("follower", {}))),
        ("log", st.log),
    ]


BRIDGE_COMMANDS = ServerCommands(
    make=BridgeProcess,
    name="the bridge",
    up_name="bridge",
    title=lambda st: f"bridge {st.details['url']}",
    fields=_bridge_fields,
    help={
        "up": "Start the bridge as a background process (idempotent); it needs `bridge install` first.",
        "down": "Stop the bridge; its outbox keeps every job (a restarted bridge resumes them).",
        "status": "Health of the bridge, its outbox counts and its ledger follower (checkpoint block, events "
        "applied, last error); exit 1 if it is not running and healthy.",
        "clean": "Stop the bridge and delete its outbox, webhook secret and logs (run `bridge install` again after).",
    },
)
add_server_commands(app, BRIDGE_COMMANDS)


@app.command()
def retry(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[str, typer.Argument(help="Model version.")],
    as_json: JsonOpt = False,
) -> None:
    """Anchor a version again after fixing what made its job fail (a dead job gets fresh attempts)."""
    settings = _settings(as_json)
    if not settings.outbox_file.exists():
        fail(f"no outbox at {settings.outbox_file}: the bridge never ran here", as_json)
    queued = Outbox(settings.outbox_file).requeue(name, version, "retried by an operator")
    if not queued:
        fail(f"{name}/{version} is being worked on or already waiting; see `modelledger bridge jobs`", as_json)
    if as_json:
        emit_json({"job": f"{name}/{version}", "state": "pending"})
    else:
        console.print(f"{escape(name)}/{escape(version)} queued again; the running bridge picks it up within a second")


@app.command()
def jobs(
    state: Annotated[
        str | None, typer.Option("--state", help="Only jobs in this state (pending, leased, done, dead, conflict).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The outbox: every model version the bridge knows, its state, attempts and last reason.

    A ``conflict`` job is a version whose ledger record does not match the
    bytes MLflow holds: its reason names the files and the record's registrant.
    """
    settings = _settings(as_json)
    if not settings.outbox_file.exists():
        fail(f"no outbox at {settings.outbox_file}: the bridge never ran here", as_json)
    rows = Outbox(settings.outbox_file).jobs(state)
    if as_json:
        emit_json(
            [
                {k: v for k, v in r.__dict__.items() if k != "checkpoint"} | {"tx_id": r.checkpoint.get("tx_id", "")}
                for r in rows
            ]
        )
        return
    show_table(
        "bridge jobs",
        ("job", "state", "attempts", "origin", "tx id", Column("reason", wrap=True)),
        [
            (
                r.key,
                styled(r.state, "red") if r.state == "conflict" else r.state,
                str(r.attempts),
                r.origin,
                r.checkpoint.get("tx_id", "") or "-",
                r.reason,
            )
            for r in rows
        ],
    )
    conflicts = sum(r.state == "conflict" for r in rows)
    if conflicts:
        show_note(
            f"[red]{conflicts} version(s) in conflict[/]: the ledger holds a record that is not "
            "the bytes MLflow holds; the reason names the files and the record's registrant (docs/bridge.md, conflicts)"
        )

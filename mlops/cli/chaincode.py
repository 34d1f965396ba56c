"""``modelledger chaincode``: deploy, upgrade and inspect the registry chaincode."""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape

from modelledger.mlops.cli.network import _network
from modelledger.mlops.cli.output import (
    Column,
    JsonOpt,
    console,
    emit_json,
    fail,
    show_note,
    show_table,
    spinner,
    styled,
)
from modelledger.network import NetworkError
from modelledger.network.chaincode_deployment import DeployReport

app = typer.Typer(help="Deploy and run the registry chaincode (chaincode as a service).", no_args_is_help=True)


def _report(report: DeployReport, as_json: bool, what: str) -> None:
    if as_json:
        emit_json(
            {
                "name": report.name,
                "version": report.version,
                "sequence": report.sequence,
                "actions": report.actions,
                "warnings": report.warnings,
                "seconds": round(report.seconds, 2),
            }
        )
        return
    for a in report.actions:
        console.print(f"  • {escape(a)}")
    for w in report.warnings:
        console.print(f"  [yellow]warning:[/] {escape(w)}")
    head = f"{report.name} {report.version} (sequence {report.sequence})"
    if report.actions:
        console.print(f"{head} {what} in {report.seconds:.1f}s")
    else:
        console.print(f"{head} already deployed and reachable: nothing changed")


def _run(upgrade: bool, as_json: bool) -> None:
    net = _network(as_json)
    try:
        if as_json:
            report = net.chaincode.deploy(upgrade=upgrade)
        else:
            with spinner("deploying the chaincode…") as progress:
                report = net.chaincode.deploy(upgrade=upgrade, progress=progress)
    except NetworkError as exc:
        fail(str(exc), as_json)
        return
    _report(report, as_json, "upgraded" if upgrade else "deployed")


@app.command()
def deploy(as_json: JsonOpt = False) -> None:
    """Build, package, install, approve and commit the chaincode; start its servers (idempotent)."""
    _run(False, as_json)


@app.command()
def upgrade(as_json: JsonOpt = False) -> None:
    """Deploy the current chaincode/ source as the next version and sequence, keeping all state."""
    _run(True, as_json)


@app.command()
def status(as_json: JsonOpt = False) -> None:
    """The committed definition and the health of every chaincode server."""
    net = _network(as_json)
    try:
        st = net.chaincode.status()
    except NetworkError as exc:
        fail(str(exc), as_json)
        return
    healthy = bool(st["servers"]) and all(s["healthy"] for s in st["servers"]) and st["deployed"] is not None
    if as_json:
        emit_json({**st, "healthy": healthy})
    else:
        render_status(st)
    if not healthy:
        raise SystemExit(1)


def render_status(st: dict[str, Any]) -> None:
    """Prints the chaincode's status (what ``ChaincodeDeployment.status`` returns): a table of its servers
    (:func:`show_table`), then the committed definition and whether the source changed since deployment."""
    committed = st["committed"] or {}
    show_table(
        f"chaincode {st['name']}",
        (
            "server",
            "address",
            Column("pid", right=True),
            Column("health", wrap=True),
            Column("RSS MiB", right=True),
        ),
        [
            (
                s["name"],
                s["address"],
                str(s["pid"] or "-"),
                styled("healthy", "green") if s["healthy"] else styled(s["detail"], "red"),
                f"{s['rss_kib'] / 1024:.0f}",
            )
            for s in st["servers"]
        ],
    )
    if "sequence" in committed:
        version, sequence = committed.get("version"), committed.get("sequence")
        show_note(f"committed: {escape(st['name'])} version {version} · sequence {sequence}")
    else:
        show_note(f"committed: {escape(st['name'])}: {escape(str(committed.get('error', 'nothing')))}")
    if st["source_changed_since_deploy"]:
        show_note("[yellow]chaincode/ changed since deployment: run `make upgrade-chaincode`[/]")

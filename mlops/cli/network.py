"""``modelledger network``: bring the Fabric network up and down, and inspect it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from modelledger.mlops.cli.output import (
    Column,
    JsonOpt,
    bring_up,
    console,
    emit_json,
    fail,
    show_heading,
    show_note,
    show_status,
    show_table,
    styled,
)
from modelledger.network import FabricNetwork, NetworkError
from modelledger.network.fabric import NetworkStatus

app = typer.Typer(help="Run the native Hyperledger Fabric network.", no_args_is_help=True)


def _network(as_json: bool) -> FabricNetwork:
    try:
        return FabricNetwork()
    except (NetworkError, ValueError) as exc:
        fail(str(exc), as_json)
        raise  # unreachable


def render_status(st: NetworkStatus) -> None:
    """Prints the status: a table of the processes (:func:`show_table`), then the channel, its members, memory
    and the state folder."""
    rows = []
    for p in st.processes:
        health = styled("healthy", "green") if p.running and p.healthy else styled(p.detail, "red")
        kind, heights = p.details["kind"], p.details["heights"]
        height = str(heights.get(st.channel, "-")) if kind in ("peer", "orderer") else "-"
        address = p.address.removeprefix("https://")
        rows.append((p.name, address, str(p.pid or "-"), health, height, f"{p.rss_kib / 1024:.0f}"))
    show_table(
        "ModelLedger network",
        (
            "process",
            "address",
            Column("pid", right=True),
            Column("health", wrap=True),
            Column("height", right=True),
            Column("RSS MiB", right=True),
        ),
        rows,
    )
    show_note(f"channel: {escape(st.channel)}")  # the heights above are on this channel
    for key, values in st.members.items():
        show_note(f"{key.replace('_', ' ')}: {escape(', '.join(values))}")
    show_note(
        f"memory: {st.total_rss_kib / 1024:.0f} MiB now, {st.total_peak_rss_kib / 1024:.0f} MiB peak · "
        + ("[green]all healthy[/]" if st.healthy else "[red]not healthy[/]")
    )
    show_note(f"state: {escape(str(st.state_dir))}")


@app.command()
def up(as_json: JsonOpt = False) -> None:
    """Start CAs, enrol identities, start orderers and peers, create and join the channel."""
    bring_up("network", _network(as_json), NetworkError, as_json, render_status)


@app.command()
def down(as_json: JsonOpt = False) -> None:
    """Stop the processes this network started (by pid); ledgers and identities are kept."""
    stopped = _network(as_json).down()
    if as_json:
        emit_json({"stopped": stopped})
    else:
        console.print(f"stopped {len(stopped)} processes" + (f": {', '.join(stopped)}" if stopped else ""))


@app.command()
def clean(as_json: JsonOpt = False) -> None:
    """Stop everything and delete all generated state (crypto, ledgers, logs)."""
    net = _network(as_json)
    stopped = net.clean()
    if as_json:
        emit_json({"stopped": stopped, "removed": str(net.layout.root)})
    else:
        console.print(f"stopped {len(stopped)} processes; removed {escape(str(net.layout.root))}")


@app.command()
def status(as_json: JsonOpt = False) -> None:
    """Health, ledger height per channel, memory and channel members of every node."""
    st = _network(as_json).status()
    show_status(st, st.healthy, as_json, render_status)


@app.command()
def logs(
    node: Annotated[str | None, typer.Argument(help="Process name, e.g. peer0-Org1.")] = None,
    lines: Annotated[int, typer.Option("--lines", "-n", help="Lines per log.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Show the last lines of each node's log (or of one node)."""
    paths = _network(as_json).logs()
    if node is not None:
        if node not in paths:
            fail(f"no process named {node!r}; known: {', '.join(paths)}", as_json)
        paths = {node: paths[node]}
    tails = {}
    for name, path in paths.items():
        p = Path(path)
        tails[name] = p.read_text(errors="replace").splitlines()[-lines:] if p.is_file() else []
    if as_json:
        emit_json({n: {"path": paths[n], "tail": t} for n, t in tails.items()})
        return
    for name, tail in tails.items():
        show_heading(f"{name} ({paths[name]})")
        for line in tail:
            console.print(line, markup=False, highlight=False)

"""``modelledger ledger``: the channel's height and an end-to-end check of its hash chain."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from modelledger.mlops.cli.connection import OrgOpt, ProfileOpt, RoleOpt, open_gateway
from modelledger.mlops.cli.network import JsonOpt
from modelledger.mlops.cli.output import console, emit_json, fail
from modelledger.sdk.gateway.errors import GatewayError
from modelledger.sdk.gateway.events import blocks
from modelledger.sdk.ledger.blocks import ChainBreak, read_block_files, verify_chain
from modelledger.sdk.ledger.queries import chain_info

app = typer.Typer(help="Inspect and verify the ledger.", no_args_is_help=True)


def _height(org: str, role: str, profile: Path | None) -> tuple[int, str, str]:
    prof, gw = open_gateway(org, role, profile)
    with gw:
        info = chain_info(gw.network(prof.channel))
    return info.height, info.current_block_hash, prof.channel


@app.command()
def height(
    org: OrgOpt = "Org1MSP", role: RoleOpt = "auditor", profile: ProfileOpt = None, as_json: JsonOpt = False
) -> None:
    """The channel's height and current block hash, as the organisation's peer sees them."""
    try:
        h, current, channel = _height(org, role, profile)
    except GatewayError as exc:
        fail(str(exc), as_json)
        return
    if as_json:
        emit_json({"channel": channel, "height": h, "current_block_hash": current})
    else:
        console.print(f"channel {channel}: height {h}, current block hash {current}")


@app.command()
def verify(
    block_dir: Annotated[
        Path | None,
        typer.Option("--block-dir", help="Verify block files (blockfile_*) in this folder, e.g. a copy of a peer's."),
    ] = None,
    org: OrgOpt = "Org1MSP",
    role: RoleOpt = "auditor",
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fetch every block from genesis and check each data hash and previous-hash link.

    Exits 1 and names the first broken block if the chain does not hold.
    """
    try:
        if block_dir is not None:
            source = str(block_dir)
            report = verify_chain(read_block_files(block_dir))
        else:
            h, _, channel = _height(org, role, profile)
            prof, gw = open_gateway(org, role, profile)
            with gw:
                source = f"channel {channel} via {prof.peers(org)[0].address}"
                report = verify_chain(blocks(gw.network(channel), 0, h - 1, timeout=max(300.0, h * 0.05)))
            if report.broken is None and report.blocks != h:
                report.broken = ChainBreak(report.blocks, f"only {report.blocks} of {h} blocks could be read")
    except GatewayError as exc:
        fail(str(exc), as_json)
        return
    broken = report.broken
    if as_json:
        emit_json(
            {
                "ok": report.ok,
                "source": source,
                "blocks_verified": report.blocks,
                "last_block_hash": report.last_hash,
                "broken_block": broken.block_number if broken else None,
                "reason": broken.reason if broken else None,
            }
        )
    elif broken:
        console.print(f"[red]broken[/] at block {broken.block_number}: {escape(broken.reason)} ({escape(source)})")
    else:
        console.print(f"[green]ok[/]: {report.blocks} blocks from genesis, last block hash {report.last_hash}")
    if not report.ok:
        raise SystemExit(1)

"""``modelledger ledger``: the channel's height and an end-to-end check of its chain."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from modelledger.mlops.cli.connection import (
    OrgOpt,
    ProfileOpt,
    RoleOpt,
    default_profile_path,
    open_gateway,
    refusal_text,
)
from modelledger.mlops.cli.output import JsonOpt, console, emit_json, fail, show_checks
from modelledger.network.layout import NetworkLayout
from modelledger.sdk.gateway.errors import GatewayError
from modelledger.sdk.gateway.events import blocks
from modelledger.sdk.ledger.audit import UNSIGNED, GenesisAnchor, LedgerReport, LivePeer, audit
from modelledger.sdk.ledger.blocks import header_hash, read_block, read_block_files
from modelledger.sdk.ledger.checks import FAILED, INCOMPLETE
from modelledger.sdk.ledger.queries import chain_info
from modelledger.sdk.profile import ConnectionProfile

app = typer.Typer(help="Inspect and verify the ledger.", no_args_is_help=True)

# Exit codes of `ledger verify` besides 0 (every check made and held) and 2 (bad usage).
EXIT_CODES = {FAILED: 1, INCOMPLETE: 3}


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
        fail(refusal_text(exc), as_json)
        return
    if as_json:
        emit_json({"channel": channel, "height": h, "current_block_hash": current})
    else:
        console.print(f"channel {channel}: height {h}, current block hash {current}")


def _live_peers(
    prof: ConnectionProfile, org: str, role: str, skip: str, stack: ExitStack
) -> tuple[list[LivePeer], list[str]]:
    """Every peer of the profile but ``skip``, read as ``role`` of ``org``, and those that cannot be connected to."""
    peers: list[LivePeer] = []
    unreachable: list[str] = []
    for msp in prof.application_msp_ids():
        for endpoint in prof.peers(msp):
            if endpoint.name == skip:
                continue
            name = f"{endpoint.name} ({endpoint.address})"
            try:
                gw = stack.enter_context(prof.gateway(org, role, endpoint))
            except GatewayError as exc:
                unreachable.append(f"{endpoint.name} ({msp}, {endpoint.address}): {exc}")
                continue
            net = gw.network(prof.channel)
            peers.append(
                LivePeer(
                    name,
                    msp,
                    lambda net=net: chain_info(net).height,  # type: ignore[misc]
                    lambda a, b, net=net: blocks(net, a, b, timeout=max(300.0, (b + 1) * 0.05)),  # type: ignore[misc]
                )
            )
    return peers, unreachable


def _pinned_genesis(value: str | None, as_json: bool) -> bytes | None:
    """``--genesis-hash``, checked: 32 bytes in hex."""
    if value is None:
        return None
    try:
        pinned = bytes.fromhex(value)
    except ValueError:
        pinned = b""
    if len(pinned) != 32:
        fail(f"--genesis-hash {value!r}: give the genesis block's header hash, 64 hex digits", as_json, code=2)
    return pinned


def _genesis(pinned: bytes | None, prof: ConnectionProfile | None) -> GenesisAnchor:
    """The genesis block known out of band: ``--genesis-hash``, else the one configtxgen wrote for the stack."""
    if pinned is not None:
        return GenesisAnchor(pinned, "--genesis-hash")
    if prof is None:
        return GenesisAnchor(None, "no connection profile to find the channel's genesis block; give --genesis-hash")
    # The connection profile lives at the root of the network's state folder (NetworkLayout).
    path = NetworkLayout(prof.path.parent).channel_block(prof.channel)
    if not path.is_file():
        return GenesisAnchor(None, f"{path} does not exist; give --genesis-hash")
    try:
        block = read_block(path)
    except GatewayError as exc:
        return GenesisAnchor(None, str(exc))
    if block.header.number != 0:
        return GenesisAnchor(None, f"{path} holds block {block.header.number}, not a genesis block")
    return GenesisAnchor(header_hash(block.header), f"channel {prof.channel} ({path})")


@app.command()
def verify(
    block_dir: Annotated[
        Path | None,
        typer.Option("--block-dir", help="Verify block files (blockfile_*) in this folder, e.g. a copy of a peer's."),
    ] = None,
    genesis_hash: Annotated[
        str | None,
        typer.Option(
            "--genesis-hash",
            help="The channel's genesis block header hash (hex), known out of band "
            "(default: the genesis block configtxgen wrote in the stack's state folder, when there).",
        ),
    ] = None,
    copy_org: Annotated[
        str | None,
        typer.Option(
            "--copy-org",
            help="With --block-dir: the organisation whose peer the block files come from (default: --org); "
            "its peers cannot vouch for the validation flags.",
        ),
    ] = None,
    org: OrgOpt = "Org1MSP",
    role: RoleOpt = "auditor",
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the chain from genesis: hash links, each block's orderer signatures, and agreement with live peers.

    Without --block-dir, the organisation's peer's chain is read and compared
    with the other organisations' peers; with it, the copy is compared with
    every peer of the connection profile. Only another organisation's peer
    than the copy's can vouch for the validation flags. Block 0 is compared with the genesis
    block known out of band. Exits 0 only when every check was made and
    held; 1 when one failed (the failing block and check are named); 3 when
    none failed but one could not be made (e.g. no live peer reachable):
    the verdict is then "incomplete", not ok.
    """
    if copy_org is not None and block_dir is None:
        fail("--copy-org names whose block files --block-dir reads; without it, the copy is --org's peer's", as_json, 2)
    pinned = _pinned_genesis(genesis_hash, as_json)
    with ExitStack() as stack:
        try:
            if block_dir is not None:
                source = f"{block_dir} (a copy of a peer of {copy_org or org})"
                prof: ConnectionProfile | None = None
                try:
                    prof = ConnectionProfile.load(profile or default_profile_path())
                    peers, unreachable = _live_peers(prof, org, role, "", stack)
                except GatewayError as exc:
                    peers, unreachable = [], [str(exc)]
                report = audit(
                    source,
                    read_block_files(block_dir),
                    peers,
                    unreachable,
                    genesis=_genesis(pinned, prof),
                    own_org=copy_org or org,
                )
            else:
                prof, gw = open_gateway(org, role, profile)
                stack.enter_context(gw)
                network = gw.network(prof.channel)
                h = chain_info(network).height
                mine = prof.peers(org)[0]
                source = f"channel {prof.channel} via {mine.name} ({org}, {mine.address})"
                peers, unreachable = _live_peers(prof, org, role, mine.name, stack)
                report = audit(
                    source,
                    blocks(network, 0, h - 1, timeout=max(300.0, h * 0.05)),
                    peers,
                    unreachable,
                    source_height=lambda: chain_info(network).height,
                    expected=h,
                    genesis=_genesis(pinned, prof),
                    own_org=org,
                )
        except GatewayError as exc:
            fail(refusal_text(exc), as_json)
            return
    if as_json:
        emit_json(report.to_json())
    else:
        _print(report)
    if not report.ok:
        raise SystemExit(EXIT_CODES[report.verdict])


def _print(report: LedgerReport) -> None:
    colour = {FAILED: "red", INCOMPLETE: "yellow"}.get(report.verdict, "green")
    console.print(f"[{colour}]{report.verdict}[/]: {escape(report.source)}")
    show_checks(report.checks)
    if report.verdict == INCOMPLETE:
        names = ", ".join(c.name for c in report.unchecked)
        console.print(f"  [yellow]not verified in full: {names} could not be made[/]")
    console.print(f"  [dim]{escape(UNSIGNED)}[/]")

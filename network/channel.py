"""The application channel: genesis block, joining nodes, reading and updating its config.

The channel is created the Fabric v3 way, without a system channel: configtxgen
writes the genesis block, ``osnadmin channel join`` hands it to every orderer,
and ``peer channel join`` joins every peer. Anchor peers are in the genesis
block. Configuration updates go through configtxlator's compute_update and are
signed by the admins whose policy they touch.
"""

from __future__ import annotations

import copy
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelledger.network.binaries import FabricBinaries
from modelledger.network.configuration import CHANNEL_PROFILE
from modelledger.network.errors import CommandError, NetworkError
from modelledger.network.layout import NetworkLayout
from modelledger.network.nodes import orderer_channels, peer_admin_env
from modelledger.network.topology import Node, Organization, Topology
from modelledger.runtime.private_files import make_private_dir, write_private_file


def create_genesis_block(topo: Topology, layout: NetworkLayout, bins: FabricBinaries) -> bool:
    """Writes the channel's genesis block once; returns True if it was created now."""
    block = layout.channel_block(topo.channel)
    if block.is_file():
        return False
    make_private_dir(block.parent)
    tmp = block.with_suffix(".tmp")
    bins.run(
        "configtxgen",
        [
            "-configPath",
            str(layout.configtx_dir),
            "-profile",
            CHANNEL_PROFILE,
            "-channelID",
            topo.channel,
            "-outputBlock",
            str(tmp),
        ],
        env={"FABRIC_CFG_PATH": str(layout.configtx_dir)},
    )
    tmp.replace(block)
    return True


def _osnadmin_tls(topo: Topology, node: Node, layout: NetworkLayout) -> list[str]:
    org = topo.org(node.org)
    tls = layout.user_tls(org, "admin")
    return [
        "--ca-file",
        str(layout.ca_cert(org.ca)),
        "--client-cert",
        str(tls.cert),
        "--client-key",
        str(tls.key),
    ]


def join_orderer(topo: Topology, node: Node, layout: NetworkLayout, bins: FabricBinaries) -> bool:
    """Joins an orderer to the channel unless it already is; returns True if joined now."""
    if topo.channel in orderer_channels(topo, node, layout):
        return False
    bins.run(
        "osnadmin",
        [
            "channel",
            "join",
            "--channelID",
            topo.channel,
            "--config-block",
            str(layout.channel_block(topo.channel)),
            "-o",
            node.admin_address,
            *_osnadmin_tls(topo, node, layout),
        ],
    )
    return True


def peer_channels(topo: Topology, node: Node, layout: NetworkLayout, bins: FabricBinaries) -> list[str]:
    """Channels the peer has joined (asked as the org admin)."""
    out = bins.run("peer", ["channel", "list"], env=peer_admin_env(topo, node, layout))
    lines = out.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("Channels peers has joined"))
    except StopIteration:
        return []
    return [line.strip() for line in lines[start + 1 :] if line.strip()]


def join_peer(topo: Topology, node: Node, layout: NetworkLayout, bins: FabricBinaries) -> bool:
    """Joins a peer to the channel unless it already is; returns True if joined now."""
    if topo.channel in peer_channels(topo, node, layout, bins):
        return False
    bins.run(
        "peer",
        ["channel", "join", "-b", str(layout.channel_block(topo.channel))],
        env=peer_admin_env(topo, node, layout),
    )
    return True


def _orderer_flags(topo: Topology, layout: NetworkLayout, orderer: Node | None = None) -> list[str]:
    o = orderer or topo.orderers[0]
    return [
        "-o",
        o.address,
        "--tls",
        "--cafile",
        str(layout.ca_cert(topo.org(o.org).ca)),
    ]


def _decode(bins: FabricBinaries, msg_type: str, data: Path) -> Any:
    out = bins.run("configtxlator", ["proto_decode", "--input", str(data), "--type", msg_type])
    return json.loads(out)


def _encode(bins: FabricBinaries, msg_type: str, doc: Any, out: Path) -> None:
    src = out.with_suffix(".json")
    write_private_file(src, json.dumps(doc))
    bins.run("configtxlator", ["proto_encode", "--input", str(src), "--type", msg_type, "--output", str(out)])


def fetch_config(
    topo: Topology,
    layout: NetworkLayout,
    bins: FabricBinaries,
    peer: Node | None = None,
    orderer: Node | None = None,
    retry_seconds: float = 30.0,
) -> dict[str, Any]:
    """The channel's current configuration (``common.Config`` as JSON), fetched from an orderer.

    Retries for up to ``retry_seconds`` while the orderer answers SERVICE_UNAVAILABLE.
    """
    node = peer or topo.peers[0]
    with tempfile.TemporaryDirectory(dir=layout.root) as tmp:
        block = Path(tmp) / "config.block"
        deadline = time.monotonic() + retry_seconds
        while True:
            try:
                bins.run(
                    "peer",
                    [
                        "channel",
                        "fetch",
                        "config",
                        str(block),
                        "-c",
                        topo.channel,
                        *_orderer_flags(topo, layout, orderer),
                    ],
                    env=peer_admin_env(topo, node, layout),
                )
                break
            except CommandError as exc:
                # No Raft leader yet (just joined, or re-electing after a crash).
                if "SERVICE_UNAVAILABLE" not in exc.output or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        decoded = _decode(bins, "common.Block", block)
    return decoded["data"]["data"][0]["payload"]["data"]["config"]


def channel_members(config: dict[str, Any]) -> dict[str, list[str]]:
    """Application organisations and Raft consenters named in a channel config."""
    groups = config["channel_group"]["groups"]
    apps = sorted(groups.get("Application", {}).get("groups", {}))
    orderer_orgs = sorted(groups.get("Orderer", {}).get("groups", {}))
    ctype = groups["Orderer"]["values"]["ConsensusType"]["value"]
    consenters = [f"{c['host']}:{c['port']}" for c in ctype.get("metadata", {}).get("consenters", [])]
    return {"application_orgs": apps, "orderer_orgs": orderer_orgs, "consenters": consenters}


def update_config(
    topo: Topology,
    layout: NetworkLayout,
    bins: FabricBinaries,
    mutate: Callable[[dict[str, Any]], None],
    signers: list[Organization],
    orderer: Node | None = None,
    retry_seconds: float = 60.0,
) -> None:
    """Applies ``mutate`` to the channel config and submits the update.

    While the orderer answers SERVICE_UNAVAILABLE (no Raft leader, e.g. just after
    a consenter crashed), the update is retried. Before each retry the current
    config is fetched again: if the change is already in, an earlier attempt was
    ordered after all and nothing is resubmitted.

    Args:
        topo: The topology.
        layout: The runtime layout.
        bins: The Fabric tools.
        mutate: Changes a deep copy of the current ``common.Config`` in place.
        signers: Organisations whose admin signs (the last one also submits).
        orderer: The orderer to fetch from and submit to (default: the first).
        retry_seconds: How long to keep retrying an unavailable ordering service.

    Raises:
        NetworkError: If the change is empty or the orderer refuses it.
    """
    if not signers:
        raise NetworkError("a config update needs at least one signing organisation")
    deadline = time.monotonic() + retry_seconds
    attempt = 0
    while True:
        current = fetch_config(topo, layout, bins, orderer=orderer, retry_seconds=retry_seconds)
        updated = copy.deepcopy(current)
        mutate(updated)
        if updated == current:
            if attempt == 0:
                raise NetworkError("the config update changes nothing")
            return  # an earlier attempt was ordered after all
        attempt += 1
        try:
            _submit_update(topo, layout, bins, current, updated, signers, orderer)
            _wait_applied(topo, layout, bins, mutate, orderer, deadline)
            return
        except CommandError as exc:
            if "SERVICE_UNAVAILABLE" in exc.output and time.monotonic() < deadline:
                time.sleep(1.0)
                continue
            raise NetworkError(f"config update refused: {exc}") from exc


def _wait_applied(
    topo: Topology,
    layout: NetworkLayout,
    bins: FabricBinaries,
    mutate: Callable[[dict[str, Any]], None],
    orderer: Node | None,
    deadline: float,
) -> None:
    """Waits until the orderer's latest config block contains the change."""
    while True:
        config = fetch_config(topo, layout, bins, orderer=orderer)
        probe = copy.deepcopy(config)
        mutate(probe)
        if probe == config:
            return
        if time.monotonic() > deadline:
            raise NetworkError("the config update was accepted but is not in a config block yet")
        time.sleep(0.5)


def _submit_update(
    topo: Topology,
    layout: NetworkLayout,
    bins: FabricBinaries,
    current: dict[str, Any],
    updated: dict[str, Any],
    signers: list[Organization],
    orderer: Node | None,
) -> None:
    with tempfile.TemporaryDirectory(dir=layout.root) as tmpdir:
        tmp = Path(tmpdir)
        _encode(bins, "common.Config", current, tmp / "current.pb")
        _encode(bins, "common.Config", updated, tmp / "updated.pb")
        bins.run(
            "configtxlator",
            [
                "compute_update",
                "--channel_id",
                topo.channel,
                "--original",
                str(tmp / "current.pb"),
                "--updated",
                str(tmp / "updated.pb"),
                "--output",
                str(tmp / "update.pb"),
            ],
        )
        update = _decode(bins, "common.ConfigUpdate", tmp / "update.pb")
        envelope = {
            "payload": {
                "header": {"channel_header": {"channel_id": topo.channel, "type": 2}},
                "data": {"config_update": update},
            }
        }
        _encode(bins, "common.Envelope", envelope, tmp / "update-envelope.pb")
        for org in signers:
            node = _cli_node(topo, org)
            env = _admin_env_for(topo, org, node, layout)
            verb = "update" if org is signers[-1] else "signconfigtx"
            args = ["channel", verb, "-f", str(tmp / "update-envelope.pb")]
            if verb == "update":
                args += ["-c", topo.channel, *_orderer_flags(topo, layout, orderer)]
            bins.run("peer", args, env=env)


def _cli_node(topo: Topology, org: Organization) -> Node:
    return org.peers[0] if org.peers else topo.peers[0]


def _admin_env_for(topo: Topology, org: Organization, node: Node, layout: NetworkLayout) -> dict[str, str]:
    env = peer_admin_env(topo, node, layout)
    env["CORE_PEER_LOCALMSPID"] = org.msp_id
    env["CORE_PEER_MSPCONFIGPATH"] = str(layout.user_msp(org, "admin"))
    return env

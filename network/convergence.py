"""Waiting for the channel to settle: equal heights, a Raft leader, full gossip membership.

After nodes start or join, the channel is usable only once every orderer and
peer reports the same height, one orderer leads Raft, and every peer knows
every other peer through gossip (the Gateway picks endorsers from that).
Each wait polls the nodes' metrics or admin API (:mod:`modelledger.network.nodes`)
and raises :class:`~modelledger.network.errors.NetworkError` naming what it
saw when its time is up.
"""

from __future__ import annotations

import time

from modelledger.network.errors import NetworkError
from modelledger.network.layout import NetworkLayout
from modelledger.network.nodes import orderer_channels, orderer_is_leader, peer_gossip_known, peer_heights
from modelledger.network.topology import Node, Topology
from modelledger.runtime.processes import ProcessSupervisor


def node_heights(topo: Topology, node: Node, layout: NetworkLayout) -> dict[str, int]:
    """A node's height per channel (peers from metrics, orderers from the admin API)."""
    if node.kind == "peer":
        return peer_heights(topo, node, layout)
    channels = orderer_channels(topo, node, layout)
    return {ch: int(v.get("height", 0)) for ch, v in channels.items()}


def channel_heights(topo: Topology, layout: NetworkLayout) -> dict[str, int]:
    """The channel's height per node that reports one."""
    channel = topo.channel
    result: dict[str, int] = {}
    for n in topo.nodes:
        h = node_heights(topo, n, layout).get(channel)
        if h is not None:
            result[n.id] = h
    return result


def wait_heights_converged(topo: Topology, layout: NetworkLayout, limit: float) -> dict[str, int]:
    """Waits until every orderer and peer reports the same channel height."""
    deadline = time.monotonic() + limit
    want = {n.id for n in topo.nodes}
    while True:
        heights = channel_heights(topo, layout)
        if set(heights) == want and len(set(heights.values())) == 1:
            return heights
        if time.monotonic() > deadline:
            raise NetworkError(
                f"channel {topo.channel} heights did not converge: {heights} (expected one height on {sorted(want)})"
            )
        time.sleep(0.25)


def wait_gossip_converged(topo: Topology, layout: NetworkLayout, limit: float) -> None:
    """Waits until every peer knows every other peer of the channel through gossip.

    The Gateway picks endorsers from what its peer learned by gossip, so
    before this a fresh or restarted peer cannot satisfy an every-org policy.
    """
    deadline = time.monotonic() + limit
    want = len(topo.peers) - 1
    while True:
        known = {n.id: peer_gossip_known(topo, n, layout).get(topo.channel, 0) for n in topo.peers}
        if all(k >= want for k in known.values()):
            return
        if time.monotonic() > deadline:
            raise NetworkError(
                f"gossip did not converge on channel {topo.channel}: peers known {known}, want {want} each"
            )
        time.sleep(0.25)


def wait_raft_leader(topo: Topology, layout: NetworkLayout, supervisor: ProcessSupervisor, limit: float) -> str:
    """Waits until one running orderer reports itself Raft leader of the channel."""
    deadline = time.monotonic() + limit
    while True:
        for n in topo.orderers:
            if supervisor.running(n.id) and orderer_is_leader(topo, n, layout).get(topo.channel):
                return n.id
        if time.monotonic() > deadline:
            raise NetworkError(f"no Raft leader for channel {topo.channel} after {limit:.0f}s")
        time.sleep(0.25)

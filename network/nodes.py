"""Orderer and peer processes: their environment overrides and health checks.

Each node runs Fabric's own binary against the generated copy of the stock
configuration (``FABRIC_CFG_PATH``), with every per-node setting given as an
``ORDERER_*`` / ``CORE_*`` environment variable, as Fabric's own native
("nano") test network does.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import urllib.error
import urllib.request

from modelledger.network.binaries import FabricBinaries
from modelledger.network.layout import NetworkLayout
from modelledger.network.topology import Node, Topology
from modelledger.runtime.private_files import make_private_dir
from modelledger.runtime.processes import ProcessInfo, ProcessSupervisor
from modelledger.runtime.settings import fabric_logging_spec
from modelledger.runtime.tls import tls_context, tls_handshake


def _base_env(layout: NetworkLayout) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(layout.root),
        "FABRIC_CFG_PATH": str(layout.config_dir),
        "FABRIC_LOGGING_SPEC": fabric_logging_spec(),
        # Fabric's default log format has terminal colours; logs go to files.
        "FABRIC_LOGGING_FORMAT": (
            "%{time:2006-01-02 15:04:05.000 MST} %{level:.4s} [%{module}] %{shortfunc} -> %{message}"
        ),
    }


def orderer_env(topo: Topology, node: Node, layout: NetworkLayout) -> dict[str, str]:
    """Environment of one orderer: listeners, TLS, channel participation, ledger paths."""
    tls = layout.node_tls(node)
    org = topo.org(node.org)
    ledger = layout.ledger_dir(node)
    env = _base_env(layout)
    env.update(
        {
            "ORDERER_GENERAL_LISTENADDRESS": node.host,
            "ORDERER_GENERAL_LISTENPORT": str(node.port),
            "ORDERER_GENERAL_LOCALMSPID": node.msp_id,
            "ORDERER_GENERAL_LOCALMSPDIR": str(layout.node_msp(node)),
            "ORDERER_GENERAL_BOOTSTRAPMETHOD": "none",
            "ORDERER_GENERAL_TLS_ENABLED": "true",
            "ORDERER_GENERAL_TLS_CERTIFICATE": str(tls.cert),
            "ORDERER_GENERAL_TLS_PRIVATEKEY": str(tls.key),
            "ORDERER_GENERAL_TLS_ROOTCAS": f"[{tls.ca}]",
            "ORDERER_GENERAL_CLUSTER_CLIENTCERTIFICATE": str(tls.cert),
            "ORDERER_GENERAL_CLUSTER_CLIENTPRIVATEKEY": str(tls.key),
            "ORDERER_GENERAL_CLUSTER_ROOTCAS": f"[{tls.ca}]",
            "ORDERER_CHANNELPARTICIPATION_ENABLED": "true",
            "ORDERER_ADMIN_LISTENADDRESS": node.admin_address,
            "ORDERER_ADMIN_TLS_ENABLED": "true",
            "ORDERER_ADMIN_TLS_CERTIFICATE": str(tls.cert),
            "ORDERER_ADMIN_TLS_PRIVATEKEY": str(tls.key),
            "ORDERER_ADMIN_TLS_ROOTCAS": f"[{tls.ca}]",
            "ORDERER_ADMIN_TLS_CLIENTAUTHREQUIRED": "true",
            "ORDERER_ADMIN_TLS_CLIENTROOTCAS": f"[{layout.ca_cert(org.ca)}]",
            "ORDERER_OPERATIONS_LISTENADDRESS": node.operations_address,
            "ORDERER_OPERATIONS_TLS_ENABLED": "true",
            "ORDERER_OPERATIONS_TLS_CERTIFICATE": str(tls.cert),
            "ORDERER_OPERATIONS_TLS_PRIVATEKEY": str(tls.key),
            "ORDERER_OPERATIONS_TLS_CLIENTAUTHREQUIRED": "false",
            "ORDERER_OPERATIONS_TLS_CLIENTROOTCAS": f"[{tls.ca}]",
            "ORDERER_METRICS_PROVIDER": "prometheus",
            "ORDERER_FILELEDGER_LOCATION": str(ledger / "ledger"),
            "ORDERER_CONSENSUS_WALDIR": str(ledger / "etcdraft" / "wal"),
            "ORDERER_CONSENSUS_SNAPDIR": str(ledger / "etcdraft" / "snapshot"),
        }
    )
    return env


# Gossip timing overrides (Fabric's defaults in sampleconfig core.yaml in brackets).
#
# When a peer joins the channel (or restarts), Fabric's gossip probes the other
# organisations' anchor peers at once (gossip_impl.go learnAnchorPeers ->
# discovery Connect), from the first channel-config callback in
# core/peer/peer.go createChannel: before the channel's TLS root CAs are
# trusted (updateTrustedRoots runs after it) and before the channel is
# registered (so "Could not acquire policy manager for channel"), and before
# the other peer has joined. That first probe therefore fails, and
# discovery_impl.go Connect sleeps ``reconnectInterval`` [25s] before the next
# try: the ~25-30 s a fresh network or a restarted peer waited for membership.
# One second between tries keeps the same retry window [25s x 120 attempts].
# Once connected, a peer counts as a channel member only after its StateInfo
# message arrives (channel.go GetPeers): it is published on the
# ``publishStateInfoInterval`` [4s] tick (and only once the membership is not
# empty) and pulled every ``requestStateInfoInterval`` [4s]; both are 1s here.
# ``membershipTrackerInterval`` [5s] is how often the channel membership gauge
# (gossip_membership_total_peers_known, which readiness reads) is refreshed.
GOSSIP_RECONNECT_INTERVAL_S = 1
GOSSIP_RETRY_WINDOW_S = 25 * 120
GOSSIP_TIMING_ENV = {
    "CORE_PEER_GOSSIP_RECONNECTINTERVAL": f"{GOSSIP_RECONNECT_INTERVAL_S}s",
    "CORE_PEER_GOSSIP_MAXCONNECTIONATTEMPTS": str(GOSSIP_RETRY_WINDOW_S // GOSSIP_RECONNECT_INTERVAL_S),
    "CORE_PEER_GOSSIP_PUBLISHSTATEINFOINTERVAL": "1s",
    "CORE_PEER_GOSSIP_REQUESTSTATEINFOINTERVAL": "1s",
    "CORE_PEER_GOSSIP_MEMBERSHIPTRACKERINTERVAL": "1s",
}


def peer_env(topo: Topology, node: Node, layout: NetworkLayout) -> dict[str, str]:
    """Environment of one peer: listeners, gossip, TLS, LevelDB state, ledger paths."""
    tls = layout.node_tls(node)
    org = topo.org(node.org)
    ledger = layout.ledger_dir(node)
    bootstrap = " ".join(p.address for p in org.peers if p.id != node.id) or node.address
    env = _base_env(layout)
    env.update(
        {
            "CORE_PEER_ID": f"{node.name}.{org.domain}",
            "CORE_PEER_ADDRESS": node.address,
            "CORE_PEER_LISTENADDRESS": node.address,
            "CORE_PEER_CHAINCODEADDRESS": f"{node.host}:{node.chaincode_port}",
            "CORE_PEER_CHAINCODELISTENADDRESS": f"{node.host}:{node.chaincode_port}",
            "CORE_PEER_GOSSIP_BOOTSTRAP": bootstrap,
            "CORE_PEER_GOSSIP_EXTERNALENDPOINT": node.address,
            **GOSSIP_TIMING_ENV,
            "CORE_PEER_LOCALMSPID": node.msp_id,
            "CORE_PEER_MSPCONFIGPATH": str(layout.node_msp(node)),
            "CORE_PEER_TLS_ENABLED": "true",
            "CORE_PEER_TLS_CERT_FILE": str(tls.cert),
            "CORE_PEER_TLS_KEY_FILE": str(tls.key),
            "CORE_PEER_TLS_ROOTCERT_FILE": str(tls.ca),
            "CORE_PEER_FILESYSTEMPATH": str(ledger),
            "CORE_PEER_GATEWAY_ENABLED": "true",
            "CORE_LEDGER_STATE_STATEDATABASE": "goleveldb",
            "CORE_LEDGER_SNAPSHOTS_ROOTDIR": str(ledger / "snapshots"),
            "CORE_OPERATIONS_LISTENADDRESS": node.operations_address,
            "CORE_OPERATIONS_TLS_ENABLED": "true",
            "CORE_OPERATIONS_TLS_CERT_FILE": str(tls.cert),
            "CORE_OPERATIONS_TLS_KEY_FILE": str(tls.key),
            "CORE_OPERATIONS_TLS_CLIENTAUTHREQUIRED": "false",
            "CORE_OPERATIONS_TLS_CLIENTROOTCAS_FILES": str(tls.ca),
            "CORE_METRICS_PROVIDER": "prometheus",
        }
    )
    return env


def peer_admin_env(topo: Topology, node: Node, layout: NetworkLayout, role: str = "admin") -> dict[str, str]:
    """Environment for the ``peer`` CLI acting as ``role`` of the node's organisation."""
    org = topo.org(node.org)
    env = _base_env(layout)
    env.update(
        {
            "CORE_PEER_LOCALMSPID": org.msp_id,
            "CORE_PEER_MSPCONFIGPATH": str(layout.user_msp(org, role)),
            "CORE_PEER_ADDRESS": node.address,
            "CORE_PEER_TLS_ENABLED": "true",
            "CORE_PEER_TLS_ROOTCERT_FILE": str(layout.ca_cert(org.ca)),
            "FABRIC_LOGGING_SPEC": "WARNING",
        }
    )
    return env


def start_node(
    topo: Topology, node: Node, layout: NetworkLayout, bins: FabricBinaries, sup: ProcessSupervisor
) -> ProcessInfo:
    """Starts an orderer or peer (a no-op if it already runs)."""
    make_private_dir(layout.ledger_dir(node))
    if node.kind == "orderer":
        return sup.start(node.id, [bins.path("orderer")], orderer_env(topo, node, layout))
    return sup.start(node.id, [bins.path("peer"), "node", "start"], peer_env(topo, node, layout))


def node_health(topo: Topology, node: Node, layout: NetworkLayout) -> tuple[bool, str]:
    """Asks the node's operations endpoint ``/healthz`` (over TLS), then shakes hands on its gRPC ports.

    A peer serves ``/healthz`` long before it serves gRPC: on a restart it
    first opens its ledgers, then listens, and only at the end serves (a
    connection is accepted into the queue well before a TLS handshake can
    complete). Under load a client was refused in between, so a node counts
    as up only once a mutual-TLS handshake (as its org admin) succeeds on its
    gRPC port and, for an orderer, its admin port.
    """
    ok, detail = _healthz(topo, node, layout)
    if not ok:
        return ok, detail
    ctx = admin_tls_context(topo, node, layout)
    for port in (node.port, node.admin_port):
        failure = tls_handshake(node.host, port, ctx) if port is not None else None
        if failure is not None:
            return False, f"healthy, but port {port} does not serve TLS yet ({failure})"
    return True, detail


def _healthz(topo: Topology, node: Node, layout: NetworkLayout) -> tuple[bool, str]:
    ctx = tls_context(layout.ca_cert(topo.org(node.org).ca))
    url = f"https://{node.operations_address}/healthz"
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=3) as r:
            body = json.load(r)
    except urllib.error.HTTPError as exc:
        try:
            body = json.load(exc)
        except ValueError:
            return False, f"HTTP {exc.code}"
        failed = ", ".join(f"{c.get('component')}: {c.get('reason')}" for c in body.get("failed_checks", []))
        return False, failed or f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return False, str(getattr(exc, "reason", exc))
    return body.get("status") == "OK", str(body.get("status"))


def admin_tls_context(topo: Topology, node: Node, layout: NetworkLayout) -> ssl.SSLContext:
    """Mutual-TLS context of the node's org admin, for the admin and metrics endpoints."""
    org = topo.org(node.org)
    admin_tls = layout.user_tls(org, "admin")
    return tls_context(layout.ca_cert(org.ca), admin_tls.cert, admin_tls.key)


def _metrics(topo: Topology, node: Node, layout: NetworkLayout) -> str:
    """A node's Prometheus metrics text, read with the org admin's TLS client certificate."""
    ctx = admin_tls_context(topo, node, layout)
    url = f"https://{node.operations_address}/metrics"
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=3) as r:
            return r.read().decode()
    except OSError:
        return ""


def channel_gauge(metrics: str, name: str) -> dict[str, float]:
    """Values of the per-channel Prometheus gauge ``name{channel="..."}`` in ``metrics``."""
    pattern = re.compile(rf'^{re.escape(name)}\{{channel="([^"]+)"\}}\s+(\S+)$', re.M)
    return {ch: float(v) for ch, v in pattern.findall(metrics)}


def orderer_is_leader(topo: Topology, node: Node, layout: NetworkLayout) -> dict[str, bool]:
    """Whether an orderer is the Raft leader, per channel (from its metrics)."""
    gauge = channel_gauge(_metrics(topo, node, layout), "consensus_etcdraft_is_leader")
    return {ch: v == 1.0 for ch, v in gauge.items()}


def peer_heights(topo: Topology, node: Node, layout: NetworkLayout) -> dict[str, int]:
    """A peer's ledger height per channel, from its Prometheus metrics."""
    return {ch: int(v) for ch, v in channel_gauge(_metrics(topo, node, layout), "ledger_blockchain_height").items()}


def peer_gossip_known(topo: Topology, node: Node, layout: NetworkLayout) -> dict[str, int]:
    """How many other peers a peer knows through gossip, per channel."""
    gauge = channel_gauge(_metrics(topo, node, layout), "gossip_membership_total_peers_known")
    return {ch: int(v) for ch, v in gauge.items()}


def orderer_channels(topo: Topology, node: Node, layout: NetworkLayout) -> dict[str, dict[str, object]]:
    """An orderer's channels (status, consensus relation, height) from its admin API."""
    ctx = admin_tls_context(topo, node, layout)
    base = f"https://{node.admin_address}/participation/v1/channels"
    try:
        with urllib.request.urlopen(base, context=ctx, timeout=3) as r:
            listing = json.load(r)
        result: dict[str, dict[str, object]] = {}
        for ch in listing.get("channels") or []:
            with urllib.request.urlopen(f"{base}/{ch['name']}", context=ctx, timeout=3) as r:
                result[ch["name"]] = json.load(r)
        return result
    except (OSError, ValueError):
        return {}

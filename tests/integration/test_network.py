"""The native Fabric network against real nodes: health, identities, restarts, Raft fault tolerance.

Tests run in file order and share one network; each leaves it healthy.
"""

from __future__ import annotations

import hashlib
import json
import signal
import time

import pytest
from cryptography import x509

from modelledger.network import FabricNetwork
from modelledger.network.channel import fetch_config, update_config
from modelledger.network.topology import ROLE_ATTRIBUTE, ROLES

pytestmark = pytest.mark.integration

FABRIC_ATTRS_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")


def _digest_tree(net: FabricNetwork) -> dict[str, str]:
    """SHA-256 of every generated identity and config file (not ledgers or logs)."""
    root = net.layout.root
    out = {}
    for sub in ("orgs", "config", "configtx", "channel", "cas"):
        for p in sorted((root / sub).rglob("*")):
            if p.is_file() and not p.name.endswith(".db") and "log" not in p.name:
                out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _pids(net: FabricNetwork) -> dict[str, int]:
    return {n: net.supervisor.running(n).pid for n in net.supervisor.names() if net.supervisor.running(n)}


def test_every_node_is_healthy_and_peers_agree_on_height(network: FabricNetwork) -> None:
    st = network.status()
    # Chaincode servers appear once the chaincode is deployed (test_chaincode.py runs first).
    names = {p.name for p in st.processes if p.details["kind"] != "chaincode"}
    assert names == {
        "ca-OrdererOrg",
        "ca-Org1",
        "ca-Org2",
        "orderer1-OrdererOrg",
        "orderer2-OrdererOrg",
        "orderer3-OrdererOrg",
        "peer0-Org1",
        "peer0-Org2",
    }
    unhealthy = [(p.name, p.detail) for p in st.processes if not (p.running and p.healthy)]
    assert unhealthy == []
    peer_heights = {p.name: p.details["heights"].get("mlops") for p in st.processes if p.details["kind"] == "peer"}
    assert len(set(peer_heights.values())) == 1, peer_heights
    assert next(iter(peer_heights.values())) >= 1
    assert st.members["application_orgs"] == ["Org1MSP", "Org2MSP"]
    assert len(st.members["consenters"]) == 3
    assert st.to_dict()["healthy"] is True


def test_role_identities_carry_their_role_attribute(network: FabricNetwork) -> None:
    for org_name in ("Org1", "Org2"):
        for role in ROLES:
            pem = (network.layout.user_msp(org_name, role) / "signcerts" / "cert.pem").read_bytes()
            cert = x509.load_pem_x509_certificate(pem)
            ext = cert.extensions.get_extension_for_oid(FABRIC_ATTRS_OID)
            attrs = json.loads(ext.value.value)["attrs"]
            assert attrs[ROLE_ATTRIBUTE] == role, (org_name, role, attrs)
            ous = [a.value for a in cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATIONAL_UNIT_NAME)]
            assert ("admin" if role == "admin" else "client") in ous, (org_name, role, ous)
    peer = network.topology.org("Org1").peers[0]
    peer_cert = x509.load_pem_x509_certificate((network.layout.node_msp(peer) / "signcerts" / "cert.pem").read_bytes())
    assert "peer" in [a.value for a in peer_cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATIONAL_UNIT_NAME)]


def test_network_up_twice_changes_nothing(network: FabricNetwork) -> None:
    before_files, before_pids = _digest_tree(network), _pids(network)
    report = network.up()
    assert report.actions == []
    assert _pids(network) == before_pids
    assert _digest_tree(network) == before_files


def test_config_update_commits_with_one_raft_orderer_down(network: FabricNetwork) -> None:
    topo, sup = network.topology, network.supervisor
    # Kill the Raft leader, so the survivors must elect a new one before ordering.
    leader = network.wait_raft_leader()
    victim = next(n for n in topo.orderers if n.id == leader)
    heights_before = network.wait_heights_converged()
    sup.kill(sup.running(victim.id), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while sup.running(victim.id) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sup.running(victim.id) is None

    def slower_batches(config: dict) -> None:
        config["channel_group"]["groups"]["Orderer"]["values"]["BatchTimeout"]["value"]["timeout"] = "200ms"

    survivor = next(n for n in topo.orderers if n.id != leader)
    update_config(
        topo, network.layout, network.bins, slower_batches, signers=[topo.org("OrdererOrg")], orderer=survivor
    )
    config = fetch_config(topo, network.layout, network.bins, orderer=survivor)
    assert config["channel_group"]["groups"]["Orderer"]["values"]["BatchTimeout"]["value"]["timeout"] == "200ms"

    # Bring the killed orderer back: it catches up and every node agrees on the new height.
    report = network.up()
    assert report.actions == [f"started {victim.id}"]
    heights_after = network.wait_heights_converged(timeout=60)
    assert set(heights_after.values()) == {next(iter(heights_before.values())) + 1}


def test_no_secret_appears_in_any_log(network: FabricNetwork) -> None:
    secrets = [p.read_text().strip() for p in (network.layout.root / "secrets").rglob("*.secret")]
    # CA registrars; each app org's peer and one user per role (8 since the evaluator role); the orderer org
    assert len(secrets) >= 3 + 2 * (1 + len(ROLES)) + 4
    logs = {p: p.read_text(errors="replace") for p in (network.layout.root / "logs").glob("*.log")}
    assert {p.stem for p in logs} >= {n.id for n in network.topology.nodes} | {c.name for c in network.topology.cas}
    leaks = [(str(p.name), s[:4]) for p, text in logs.items() for s in secrets if s in text]
    assert leaks == []


def test_down_then_up_keeps_heights_and_identities(network: FabricNetwork) -> None:
    heights = network.wait_heights_converged()
    files = _digest_tree(network)
    running = sorted(_pids(network))
    stopped = network.down()
    assert sorted(stopped) == running and len(stopped) >= 8
    assert network.supervisor.names() == []
    assert all(not p.running for p in network.status(with_members=False).processes)

    report = network.up()
    assert "initialised" not in " ".join(report.actions)
    assert not any(a.startswith(("enrolled", "joined", "created")) for a in report.actions)
    assert network.wait_heights_converged() == heights
    assert _digest_tree(network) == files
    # Everything that ran before runs again, chaincode servers included.
    assert sorted(_pids(network)) == running
    assert network.status(with_members=False).healthy

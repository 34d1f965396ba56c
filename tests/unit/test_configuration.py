"""Generated configuration: configtx profile, node environments, stock-config patching."""

from __future__ import annotations

from pathlib import Path

import yaml

from modelledger.network.configuration import (
    CCAAS_BUILDER_DIR,
    CHANNEL_PROFILE,
    configtx,
    connection_profile_yaml,
    peer_core_yaml,
)
from modelledger.network.layout import NetworkLayout
from modelledger.network.nodes import channel_gauge, orderer_env, peer_admin_env, peer_env
from modelledger.network.topology import load_topology
from modelledger.runtime.private_files import write_if_changed
from modelledger.runtime.settings import DEFAULT_TOPOLOGY
from modelledger.sdk.profile import ConnectionProfile

TOPO = load_topology(DEFAULT_TOPOLOGY, port_base=20000)
LAYOUT = NetworkLayout(Path("/state/network"))


def test_configtx_profile_has_raft_consenters_orgs_and_majority_policies() -> None:
    profile = configtx(TOPO, LAYOUT)["Profiles"][CHANNEL_PROFILE]
    consenters = profile["Orderer"]["EtcdRaft"]["Consenters"]
    assert [(c["Host"], c["Port"]) for c in consenters] == [
        ("127.0.0.1", 20050),
        ("127.0.0.1", 20150),
        ("127.0.0.1", 20250),
    ]
    assert consenters[0]["ServerTLSCert"] == "/state/network/orgs/OrdererOrg/nodes/orderer1/tls/server.crt"
    assert profile["Orderer"]["OrdererType"] == "etcdraft"
    assert profile["Policies"]["Admins"] == {"Type": "ImplicitMeta", "Rule": "MAJORITY Admins"}
    assert profile["Application"]["Policies"]["Endorsement"]["Rule"] == "MAJORITY Endorsement"
    apps = profile["Application"]["Organizations"]
    assert [o["ID"] for o in apps] == ["Org1MSP", "Org2MSP"]
    assert apps[0]["AnchorPeers"] == [{"Host": "127.0.0.1", "Port": 20351}]
    assert apps[0]["Policies"]["Admins"]["Rule"] == "OR('Org1MSP.admin')"
    assert profile["Orderer"]["Organizations"][0]["OrdererEndpoints"] == [
        "127.0.0.1:20050",
        "127.0.0.1:20150",
        "127.0.0.1:20250",
    ]


def test_peer_environment_turns_on_tls_leveldb_and_operations() -> None:
    peer = TOPO.org("Org2").peers[0]
    env = peer_env(TOPO, peer, LAYOUT)
    assert env["CORE_PEER_ADDRESS"] == "127.0.0.1:20451"
    assert env["CORE_PEER_CHAINCODELISTENADDRESS"] == "127.0.0.1:20452"
    assert env["CORE_PEER_TLS_ENABLED"] == "true"
    assert env["CORE_OPERATIONS_TLS_ENABLED"] == "true"
    assert env["CORE_LEDGER_STATE_STATEDATABASE"] == "goleveldb"
    assert env["CORE_PEER_FILESYSTEMPATH"] == "/state/network/ledgers/peer0-Org2"
    assert env["CORE_LEDGER_SNAPSHOTS_ROOTDIR"].startswith("/state/network/ledgers/peer0-Org2")
    assert env["FABRIC_CFG_PATH"] == "/state/network/config"
    # Nothing may point into the stock /var/hyperledger default paths.
    assert not any("/var/hyperledger" in v for v in env.values())


def test_orderer_environment_uses_channel_participation_and_mutual_tls_admin() -> None:
    node = TOPO.orderers[1]
    env = orderer_env(TOPO, node, LAYOUT)
    assert env["ORDERER_GENERAL_BOOTSTRAPMETHOD"] == "none"
    assert env["ORDERER_CHANNELPARTICIPATION_ENABLED"] == "true"
    assert env["ORDERER_ADMIN_LISTENADDRESS"] == "127.0.0.1:20153"
    assert env["ORDERER_ADMIN_TLS_CLIENTAUTHREQUIRED"] == "true"
    assert env["ORDERER_GENERAL_TLS_ENABLED"] == "true"
    assert env["ORDERER_CONSENSUS_WALDIR"] == "/state/network/ledgers/orderer2-OrdererOrg/etcdraft/wal"
    assert not any("/var/hyperledger" in v for v in env.values())


def test_peer_admin_environment_acts_as_the_org_admin() -> None:
    peer = TOPO.org("Org1").peers[0]
    env = peer_admin_env(TOPO, peer, LAYOUT)
    assert env["CORE_PEER_LOCALMSPID"] == "Org1MSP"
    assert env["CORE_PEER_MSPCONFIGPATH"] == "/state/network/orgs/Org1/users/admin/msp"


def test_core_yaml_copy_changes_only_vm_endpoint_and_builders(tmp_path: Path) -> None:
    stock = {
        "vm": {"endpoint": "unix:///var/run/docker.sock", "docker": {"x": 1}},
        "chaincode": {"externalBuilders": [{"name": "ccaas_builder", "path": "/opt/x"}], "keep": True},
        "peer": {"id": "jdoe"},
    }
    (tmp_path / "core.yaml").write_text(yaml.safe_dump(stock))
    out = yaml.safe_load(peer_core_yaml(tmp_path))
    assert out["vm"] == {"endpoint": "", "docker": {"x": 1}}
    assert out["chaincode"]["externalBuilders"][0]["path"] == str(CCAAS_BUILDER_DIR)
    assert out["chaincode"]["keep"] is True
    assert out["peer"] == {"id": "jdoe"}


def test_write_if_changed_leaves_identical_files_alone(tmp_path: Path) -> None:
    f = tmp_path / "a" / "b.yaml"
    assert write_if_changed(f, "x: 1\n") is True
    mtime = f.stat().st_mtime_ns
    assert write_if_changed(f, "x: 1\n") is False
    assert f.stat().st_mtime_ns == mtime
    assert write_if_changed(f, "x: 2\n") is True
    assert f.read_text() == "x: 2\n"


def test_channel_gauge_reads_only_the_named_metric_per_channel() -> None:
    text = (
        "# TYPE ledger_blockchain_height gauge\n"
        'ledger_blockchain_height{channel="mlops"} 7\n'
        'ledger_blockchain_height{channel="other"} 1.2e+01\n'
        'ledger_blockchain_height_total{channel="mlops"} 99\n'
        'consensus_etcdraft_is_leader{channel="mlops"} 1\n'
    )
    assert channel_gauge(text, "ledger_blockchain_height") == {"mlops": 7.0, "other": 12.0}
    assert channel_gauge(text, "consensus_etcdraft_is_leader") == {"mlops": 1.0}
    assert channel_gauge("", "ledger_blockchain_height") == {}


def test_peer_gossip_retries_anchor_peers_within_a_second_not_fabrics_25s() -> None:
    # A peer's first anchor-peer probe on joining (or rejoining) the channel fails by
    # design of Fabric's join order; the next try waits reconnectInterval (25s default),
    # and a member counts only once its StateInfo arrives (4s publish/pull ticks).
    env = peer_env(TOPO, TOPO.org("Org1").peers[0], LAYOUT)
    assert env["CORE_PEER_GOSSIP_RECONNECTINTERVAL"] == "1s"
    # The same total retry window as Fabric's default (25s x 120 attempts).
    assert int(env["CORE_PEER_GOSSIP_MAXCONNECTIONATTEMPTS"]) == 3000
    assert env["CORE_PEER_GOSSIP_PUBLISHSTATEINFOINTERVAL"] == "1s"
    assert env["CORE_PEER_GOSSIP_REQUESTSTATEINFOINTERVAL"] == "1s"
    assert env["CORE_PEER_GOSSIP_MEMBERSHIPTRACKERINTERVAL"] == "1s"
    # The other organisation's peer is found through the anchor peer in the channel
    # configuration, and this peer advertises an external endpoint to be reachable.
    assert env["CORE_PEER_GOSSIP_EXTERNALENDPOINT"] == env["CORE_PEER_ADDRESS"]


def test_the_connection_profile_offers_every_role_of_the_topology_the_evaluator_too(tmp_path: Path) -> None:
    """``--role evaluator`` finds its identity in the state folder, as the other roles do (issue 15)."""
    path = tmp_path / "connection-profile.yaml"
    path.write_text(connection_profile_yaml(TOPO, LAYOUT))
    profile = ConnectionProfile.load(path)
    assert "evaluator" in TOPO.roles
    for msp_id in ("Org1MSP", "Org2MSP"):
        assert list(profile.organizations[msp_id]["users"]) == list(TOPO.roles)
        assert profile.user_msp(msp_id, "evaluator") == Path(f"/state/network/orgs/{msp_id[:-3]}/users/evaluator/msp")

"""Network orchestration without servers: failure reporting and the status command."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelledger.mlops.cli.app import app
from modelledger.network import FabricNetwork, NetworkError, NetworkSettings, NodeFailedError
from modelledger.network.binaries import FabricBinaries
from modelledger.runtime.status import ServerStatus


def _network(tmp_path: Path, timeout: float = 5.0) -> FabricNetwork:
    return FabricNetwork(NetworkSettings(state_dir=tmp_path, tools_dir=tmp_path / "tools", health_timeout=timeout))


def test_a_node_that_exits_is_named_with_its_log(tmp_path: Path) -> None:
    net = _network(tmp_path)
    net.supervisor.start("peer0-Org1", [sys.executable, "-c", "raise SystemExit(3)"], dict(os.environ))
    with pytest.raises(NodeFailedError) as exc:
        net._wait_healthy({"peer0-Org1": lambda: (False, "connection refused")}, "node")
    assert exc.value.node == "peer0-Org1"
    assert exc.value.log_path == tmp_path / "network" / "logs" / "peer0-Org1.log"
    assert "peer0-Org1 failed: node process exited" in str(exc.value)


def test_a_node_that_never_gets_healthy_times_out_naming_it(tmp_path: Path) -> None:
    net = _network(tmp_path, timeout=0.5)
    net.supervisor.start("orderer2-OrdererOrg", [sys.executable, "-c", "import time; time.sleep(30)"], dict(os.environ))
    try:
        with pytest.raises(
            NodeFailedError, match=r"orderer2-OrdererOrg failed: not healthy after 0s \(etcdraft: no leader\)"
        ):
            net._wait_healthy({"orderer2-OrdererOrg": lambda: (False, "etcdraft: no leader")}, "node")
    finally:
        net.supervisor.stop("orderer2-OrdererOrg")


def test_status_json_of_a_stopped_network_says_unhealthy_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELLEDGER_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("MODELLEDGER_PORT_BASE", "31000")
    result = CliRunner().invoke(app, ["network", "status", "--json"])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["healthy"] is False
    assert doc["channel"] == "mlops"
    assert {p["name"]: p["detail"] for p in doc["processes"]}["peer0-Org1"] == "not running"
    assert {p["name"]: p["address"] for p in doc["processes"]}["peer0-Org1"] == "127.0.0.1:31351"


def test_bad_settings_are_reported_as_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELLEDGER_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("MODELLEDGER_PORT_BASE", "seven")
    result = CliRunner().invoke(app, ["network", "status", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"error": "MODELLEDGER_PORT_BASE must be an integer, got 'seven'"}


def test_clean_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    precious = tmp_path / "network" / "keep.txt"
    precious.parent.mkdir()
    precious.write_text("not ours")
    net = _network(tmp_path)
    with pytest.raises(NetworkError, match=r"refusing to delete .*network: it has no \.modelledger-network marker"):
        net.clean()
    assert precious.read_text() == "not ours"
    with pytest.raises(NetworkError, match="was not made by ModelLedger"):
        net._claim_state_dir()


def test_state_made_for_another_port_base_is_refused(tmp_path: Path) -> None:
    first = FabricNetwork(NetworkSettings(state_dir=tmp_path, tools_dir=tmp_path, port_base=20000))
    first._claim_state_dir()
    first._claim_state_dir()  # same topology: fine, idempotent
    other = FabricNetwork(NetworkSettings(state_dir=tmp_path, tools_dir=tmp_path, port_base=21000))
    with pytest.raises(NetworkError, match="generated for a different topology or port base"):
        other._claim_state_dir()
    assert other.clean() == []  # our marker is there, so clean may wipe it
    assert not (tmp_path / "network").exists()


def test_status_lists_every_process_as_a_server_status_chaincode_servers_once_deployed(tmp_path: Path) -> None:
    net = _network(tmp_path)
    net._bins = FabricBinaries(tmp_path / "tools" / "bin", tmp_path / "tools" / "sampleconfig")  # never run here
    net.layout.chaincode_record.parent.mkdir(parents=True, exist_ok=True)
    net.layout.chaincode_record.write_text("{}")
    st = net.status(with_members=False)
    kinds = {p.name: p.details["kind"] for p in st.processes}
    assert kinds["ca-Org1"] == "ca" and kinds["peer0-Org1"] == "peer" and kinds["orderer1-OrdererOrg"] == "orderer"
    chaincode = [p for p in st.processes if p.details["kind"] == "chaincode"]
    assert [p.details["org"] for p in chaincode] == ["Org1", "Org2"]
    assert all(isinstance(p, ServerStatus) and p.detail == "not running" and not p.ok for p in st.processes)
    doc = st.to_dict()
    assert doc["healthy"] is False and {"kind", "org", "heights", "ok"} <= set(doc["processes"][0])


def test_a_network_made_before_the_evaluator_role_is_still_ours_and_only_its_own_topology_is(tmp_path: Path) -> None:
    # Releases before 1.4.0 put the roles in the fingerprint: adding `evaluator` must not lock their networks out
    # (the next `up` enrols the new identities), yet another topology or port base is still refused.
    before = ("data_scientist", "registrar", "approver", "operator", "auditor", "admin")
    net = FabricNetwork(NetworkSettings(state_dir=tmp_path, tools_dir=tmp_path, port_base=20000))
    marker = tmp_path / "network" / ".modelledger-network"
    marker.parent.mkdir(mode=0o700)
    old = hashlib.sha256(repr(dataclasses.replace(net.topology, roles=before)).encode()).hexdigest()
    marker.write_text(old + "\n")
    net._claim_state_dir()
    assert marker.read_text().strip() == net._fingerprint() != old
    net._claim_state_dir()

    marker.write_text(hashlib.sha256(repr(dataclasses.replace(net.topology, roles=before[:3])).encode()).hexdigest())
    with pytest.raises(NetworkError, match="generated for a different topology or port base"):
        net._claim_state_dir()
    other = FabricNetwork(NetworkSettings(state_dir=tmp_path, tools_dir=tmp_path, port_base=21000))
    marker.write_text(hashlib.sha256(repr(dataclasses.replace(other.topology, roles=before)).encode()).hexdigest())
    with pytest.raises(NetworkError, match="generated for a different topology or port base"):
        net._claim_state_dir()

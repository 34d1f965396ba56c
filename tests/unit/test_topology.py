"""Topology parsing and validation: every error names the field."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from modelledger.network.errors import TopologyError
from modelledger.network.topology import load_topology, parse_topology
from modelledger.runtime.settings import DEFAULT_TOPOLOGY


@pytest.fixture
def raw() -> dict:
    return yaml.safe_load(DEFAULT_TOPOLOGY.read_text())


def test_default_topology_has_three_orderers_and_one_peer_per_org() -> None:
    topo = load_topology(DEFAULT_TOPOLOGY)
    assert topo.channel == "mlops"
    assert [n.id for n in topo.orderers] == ["orderer1-OrdererOrg", "orderer2-OrdererOrg", "orderer3-OrdererOrg"]
    assert [n.id for n in topo.peers] == ["peer0-Org1", "peer0-Org2"]
    assert [o.msp_id for o in topo.application_orgs] == ["Org1MSP", "Org2MSP"]
    assert topo.roles == ("data_scientist", "registrar", "evaluator", "approver", "operator", "auditor", "admin")


def test_second_peer_is_selected_in_the_topology(raw: dict) -> None:
    for org in raw["organizations"][1:]:
        org["nodes"][1]["enabled"] = True
    topo = parse_topology(raw)
    assert [n.id for n in topo.peers] == ["peer0-Org1", "peer1-Org1", "peer0-Org2", "peer1-Org2"]


def test_port_base_shifts_every_port(raw: dict) -> None:
    plain = parse_topology(raw)
    shifted = parse_topology(raw, port_base=30000)
    assert [p + 23000 for p in plain.all_ports()] == shifted.all_ports()
    assert shifted.org("Org1").ca.url == "https://127.0.0.1:30354"
    assert shifted.orderers[0].admin_address == "127.0.0.1:30053"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("channel"), "topology.channel: required field is missing"),
        (lambda d: d.update(channel="MLops!"), "topology.channel: must match"),
        (lambda d: d["organizations"][1].update(msp_id="Org1 MSP"), "organizations[Org1].msp_id: must match"),
        (
            lambda d: d["organizations"][1].update(type="peer"),
            "organizations[Org1].type: must be 'orderer' or 'application'",
        ),
        (
            lambda d: d["organizations"][1]["nodes"][0].update(port=70000),
            "organizations[Org1].nodes[0].port: must be a port number",
        ),
        (
            lambda d: d["organizations"][1]["nodes"][0].update(port=7054),
            "topology: port 127.0.0.1:7054 is used twice (ca-OrdererOrg and peer0-Org1)",
        ),
        (
            lambda d: d["organizations"][1]["nodes"][0].update(admin_port=1),
            "organizations[Org1].nodes[0]: unknown fields ['admin_port'] for a peer",
        ),
        (lambda d: d["organizations"][2].update(msp_id="Org1MSP"), "topology: duplicate msp_id ['Org1MSP']"),
        (lambda d: d.update(roles=["admin", "root"]), "topology.roles: unknown roles ['root']"),
        (
            lambda d: d["organizations"][1]["nodes"][0].update(enabled="yes"),
            "organizations[Org1].nodes[0].enabled: must be true or false",
        ),
        (
            lambda d: d["organizations"][1]["nodes"][0].update(enabled=False),
            "organizations[Org1].nodes: at least one enabled node is required",
        ),
        (lambda d: d.update(organizations=[d["organizations"][1]]), "at least one organisation of type 'orderer'"),
        (
            lambda d: d["organizations"][0]["ca"].update(host="a b"),
            "organizations[OrdererOrg].ca.host: must be a host name",
        ),
    ],
)
def test_malformed_topologies_are_refused_naming_the_field(raw: dict, edit, message: str) -> None:
    data = copy.deepcopy(raw)
    edit(data)
    with pytest.raises(TopologyError) as exc:
        parse_topology(data)
    assert message in str(exc.value)


def test_port_shift_out_of_range_is_refused(raw: dict) -> None:
    with pytest.raises(
        TopologyError,
        match=r"organizations\[OrdererOrg\].ca.port: port 7054 shifted by 60000 is 67054, outside 1024-65535",
    ):
        parse_topology(raw, port_base=67000)


def test_unreadable_or_invalid_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="cannot read topology file"):
        load_topology(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("channel: [unclosed")
    with pytest.raises(TopologyError, match="is not valid YAML"):
        load_topology(bad)

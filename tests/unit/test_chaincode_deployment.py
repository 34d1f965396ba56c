"""Chaincode deployment pieces that need no network: topology, policy, packages, source digest, CLI output parsing."""

from __future__ import annotations

import copy
import dataclasses
import gzip
import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest
import yaml

from modelledger.network.chaincode_build import CHAINCODE_SOURCE, ccaas_package, package_id, source_digest
from modelledger.network.chaincode_lifecycle import ChaincodeCallError, Definition, _invoke_payload, endorsement_policy
from modelledger.network.chaincode_plan import (
    DeploymentPlan,
    DeploymentRecord,
    definition_version,
    plan_deployment,
    settings_joins,
)
from modelledger.network.chaincode_servers import ChaincodeServers
from modelledger.network.errors import ChaincodeError, CommandError, TopologyError
from modelledger.network.layout import NetworkLayout
from modelledger.network.topology import load_topology, parse_topology
from modelledger.runtime.processes import ProcessSupervisor
from modelledger.runtime.settings import DEFAULT_TOPOLOGY


@pytest.fixture
def raw() -> dict:
    return yaml.safe_load(DEFAULT_TOPOLOGY.read_text())


def test_every_application_org_has_its_chaincode_server() -> None:
    topo = load_topology(DEFAULT_TOPOLOGY, port_base=20000)
    assert topo.chaincode == "registry"
    servers = {o.name: o.chaincode_server.address for o in topo.application_orgs if o.chaincode_server}
    assert servers == {"Org1": "127.0.0.1:20359", "Org2": "127.0.0.1:20459"}
    assert 20359 in topo.all_ports() and 20459 in topo.all_ports()


def test_application_org_without_chaincode_server_names_the_field(raw: dict) -> None:
    del raw["organizations"][1]["chaincode_server"]
    with pytest.raises(TopologyError, match=r"^organizations\[Org1\]\.chaincode_server: required field is missing$"):
        parse_topology(raw)


def test_orderer_org_cannot_run_a_chaincode_server(raw: dict) -> None:
    raw["organizations"][0]["chaincode_server"] = {"host": "127.0.0.1", "port": 7059}
    with pytest.raises(TopologyError, match=r"organizations\[OrdererOrg\]\.chaincode_server: only application"):
        parse_topology(raw)


def test_chaincode_server_port_clash_is_refused(raw: dict) -> None:
    bad = copy.deepcopy(raw)
    bad["organizations"][2]["chaincode_server"]["port"] = 7451  # peer0-Org2's port
    with pytest.raises(TopologyError, match=r"port 127\.0\.0\.1:7451 is used twice"):
        parse_topology(bad)


def test_bad_chaincode_name_is_refused(raw: dict) -> None:
    raw["chaincode"] = "Registry!"
    with pytest.raises(TopologyError, match=r"^topology\.chaincode: must match"):
        parse_topology(raw)


def test_endorsement_policy_requires_every_application_org(raw: dict) -> None:
    assert endorsement_policy(parse_topology(raw)) == "AND('Org1MSP.peer','Org2MSP.peer')"
    raw["organizations"].append(copy.deepcopy(raw["organizations"][2]))
    third = raw["organizations"][3]
    third.update(name="Org3", msp_id="Org3MSP", domain="org3.modelledger.local")
    third["ca"] = {"host": "127.0.0.1", "port": 7554, "operations_port": 7555}
    third["chaincode_server"] = {"host": "127.0.0.1", "port": 7559}
    third["nodes"] = [
        {"name": "peer0", "host": "127.0.0.1", "port": 7551, "chaincode_port": 7552, "operations_port": 7556}
    ]
    assert endorsement_policy(parse_topology(raw)) == "AND('Org1MSP.peer','Org2MSP.peer','Org3MSP.peer')"


def test_definition_flags_name_version_sequence_and_policy() -> None:
    d = Definition("registry", "2-abc", 2, "AND('A.peer','B.peer')")
    assert d.flags("mlops") == [
        "--channelID", "mlops", "--name", "registry", "--version", "2-abc",
        "--sequence", "2", "--signature-policy", "AND('A.peer','B.peer')",
    ]  # fmt: skip


def _untar(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def test_ccaas_package_is_deterministic_and_well_formed() -> None:
    conn = {"address": "127.0.0.1:7359", "tls_required": True, "root_cert": "PEM"}
    a = ccaas_package("registry", conn)
    assert a == ccaas_package("registry", dict(reversed(list(conn.items()))))
    outer = _untar(a)
    assert sorted(outer) == ["code.tar.gz", "metadata.json"]
    assert json.loads(outer["metadata.json"]) == {"label": "registry", "type": "ccaas"}
    assert json.loads(_untar(outer["code.tar.gz"])["connection.json"]) == conn
    # gzip header carries no timestamp, so the package id is stable across runs.
    assert gzip.decompress(a) and a[4:8] == b"\0\0\0\0"
    b = ccaas_package("registry", {**conn, "address": "127.0.0.1:7459"})
    assert package_id("registry", a) != package_id("registry", b)
    assert package_id("registry", a).startswith("registry:") and len(package_id("registry", a)) == 9 + 64


def test_source_digest_covers_sources_but_not_tests(tmp_path: Path) -> None:
    src = tmp_path / "cc"
    (src / "registry").mkdir(parents=True)
    (src / "go.mod").write_text("module x\n")
    (src / "main.go").write_text("package main\n")
    (src / "registry" / "contract.go").write_text("package registry\n")
    base = source_digest(src)
    (src / "registry" / "contract_test.go").write_text("package registry // test\n")
    (src / "README.md").write_text("docs\n")
    assert source_digest(src) == base
    (src / "registry" / "contract.go").write_text("package registry // changed\n")
    assert source_digest(src) != base


def test_source_digest_of_an_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ChaincodeError, match="no Go sources found"):
        source_digest(tmp_path)


def test_repository_chaincode_has_sources() -> None:
    assert len(source_digest(CHAINCODE_SOURCE)) == 64


def test_deployment_record_round_trip_and_corruption(tmp_path: Path) -> None:
    path = tmp_path / "deployed.json"
    assert DeploymentRecord.load(path) is None
    rec = DeploymentRecord("registry", "1-abc", 1, "ab" * 32, "/bin/x", {"Org1": "registry:00"})
    rec.save(path)
    assert DeploymentRecord.load(path) == rec
    path.write_text('{"name": "registry"}')
    with pytest.raises(ChaincodeError, match="is not a valid deployment record"):
        DeploymentRecord.load(path)

    # A record written before settings_tx_id existed still loads.
    old = {k: v for k, v in dataclasses.asdict(rec).items() if k != "settings_tx_id"}
    path.write_text(json.dumps(old))
    assert DeploymentRecord.load(path) == rec


def test_every_organisation_joins_the_approval_set_through_its_own_admin() -> None:
    """The deployment adds the topology's organisations one by one, only while it is the last to change the settings."""
    orgs = ["Org1MSP", "Org2MSP", "Org3MSP"]
    unset = {"approvalOrgs": [], "strictDatasets": False}
    assert settings_joins(unset, orgs, "") == orgs
    assert settings_joins({}, orgs, "") == orgs
    # Interrupted after Org1 set the settings: the next deployment completes the bootstrap.
    ours = {"approvalOrgs": ["Org1MSP"], "lastChange": {"txId": "t1"}, "strictDatasets": False}
    assert settings_joins(ours, orgs, "t1") == ["Org2MSP", "Org3MSP"]
    # Someone else changed the settings since (another admin set them first, an organisation left...): left alone.
    assert settings_joins(ours, orgs, "t0") == []
    assert settings_joins(ours, orgs, "") == []
    complete = {"approvalOrgs": orgs, "lastChange": {"txId": "t3"}}
    assert settings_joins(complete, orgs, "t3") == []


@pytest.mark.parametrize(
    ("line", "payload"),
    [
        (r'result: status:200 payload:"{\"a\":1}"', '{"a":1}'),
        (r'result: status:200 payload:"{\"n\":\"\303\251\\\"}"', '{"n":"é\\"}'),
        ("result: status:200 ", ""),
    ],
)
def test_invoke_payload_decodes_protobuf_text_escapes(line: str, payload: str) -> None:
    assert _invoke_payload(f"2026 INFO [chaincodeCmd] Chaincode invoke successful. {line}") == payload


def test_chaincode_source_folder_is_where_deploy_looks() -> None:
    assert (CHAINCODE_SOURCE / "CONTRACT.md").is_file()
    assert shutil.which("go") is not None, "the Go toolchain builds the chaincode; install Go 1.24+"


def test_chaincode_call_error_decodes_the_chaincode_message() -> None:
    out = 'Error: endorsement failure during query. response: status:500  message:"NOT_FOUND: model \\"m\\" version \\"1\\""\n'
    err = ChaincodeCallError(CommandError(["/x/peer", "chaincode", "query"], 1, out))
    assert err.message == 'NOT_FOUND: model "m" version "1"'
    assert err.validation_code == ""
    assert err.output == out and err.returncode == 1


def test_chaincode_call_error_names_the_validation_code() -> None:
    out = (
        "INFO [chaincodeCmd] ClientWait -> txid [ab12] committed with status (ENDORSEMENT_POLICY_FAILURE) at 1.2.3.4:5\n"
        "Error: transaction invalidated with status (ENDORSEMENT_POLICY_FAILURE) - proposal response: <nil>\n"
    )
    err = ChaincodeCallError(CommandError(["/x/peer"], 1, out))
    assert err.validation_code == "ENDORSEMENT_POLICY_FAILURE"
    assert err.message == ""


# ---------------------------------------------------------------------- deployment planning
D1, D2 = "a" * 64, "b" * 64
MSPS = ["Org1MSP", "Org2MSP"]


def _committed(seq: int, digest: str, msps: list[str] = MSPS) -> dict:
    return {"sequence": seq, "version": definition_version(seq, digest), "approvals": dict.fromkeys(msps, True)}


def _record(seq: int, digest: str) -> DeploymentRecord:
    return DeploymentRecord(
        "registry", definition_version(seq, digest), seq, digest, f"/bin/registry-{digest[:16]}", {}
    )


def test_first_deployment_is_sequence_one_named_after_the_source() -> None:
    assert plan_deployment(None, None, D1, MSPS, upgrade=False) == DeploymentPlan(1, f"1-{D1[:12]}", D1)
    # An interrupted first deployment (record written, nothing committed) plans the same.
    assert plan_deployment(None, _record(1, D1), D1, MSPS, upgrade=False).sequence == 1


def test_redeploy_keeps_the_committed_definition_and_its_binary() -> None:
    plan = plan_deployment(_committed(3, D1), _record(3, D1), D1, MSPS, upgrade=False)
    assert plan == DeploymentPlan(3, f"3-{D1[:12]}", D1)


def test_changed_source_keeps_serving_the_deployed_binary_and_warns() -> None:
    plan = plan_deployment(_committed(3, D1), _record(3, D1), D2, MSPS, upgrade=False)
    assert (plan.sequence, plan.source_digest) == (3, D1)
    assert "run `make upgrade-chaincode`" in plan.warnings[0]


def test_upgrade_moves_to_the_next_sequence_with_the_current_source() -> None:
    assert plan_deployment(_committed(3, D1), _record(3, D1), D2, MSPS, upgrade=True) == DeploymentPlan(
        4, f"4-{D2[:12]}", D2
    )


def test_lost_record_adopts_the_source_only_if_it_is_the_committed_one() -> None:
    assert plan_deployment(_committed(2, D1), None, D1, MSPS, upgrade=False) == DeploymentPlan(2, f"2-{D1[:12]}", D1)
    with pytest.raises(ChaincodeError, match=r"committed version 2-aaaaaaaaaaaa was built from other sources"):
        plan_deployment(_committed(2, D1), None, D2, MSPS, upgrade=False)


def test_upgrade_interrupted_before_its_commit_asks_for_the_upgrade_again() -> None:
    # Record of sequence 3 (servers already restarted), but sequence 2 is what is committed.
    with pytest.raises(ChaincodeError, match="run `make upgrade-chaincode`"):
        plan_deployment(_committed(2, D1), _record(3, D2), D2, MSPS, upgrade=False)
    assert plan_deployment(_committed(2, D1), _record(3, D2), D2, MSPS, upgrade=True).sequence == 3


def test_a_new_organisation_needs_an_upgrade() -> None:
    with pytest.raises(ChaincodeError, match=r"endorsed by \['Org1MSP', 'Org2MSP'\] but the topology has"):
        plan_deployment(_committed(2, D1), _record(2, D1), D1, [*MSPS, "Org3MSP"], upgrade=False)
    assert plan_deployment(_committed(2, D1), _record(2, D1), D1, [*MSPS, "Org3MSP"], upgrade=True).sequence == 3


def test_the_status_of_servers_that_never_ran_is_not_running(tmp_path: Path) -> None:
    # (`chaincode status` once failed here: the servers' statuses asked a health method that did not exist.)
    topo = load_topology(DEFAULT_TOPOLOGY, port_base=20000)
    servers = ChaincodeServers(topo, NetworkLayout(tmp_path), ProcessSupervisor(tmp_path), health_timeout=1.0)
    statuses = servers.statuses()
    assert [(s.name, s.address, s.running, s.detail) for s in statuses] == [
        ("registry-Org1", "127.0.0.1:20359", False, "not running"),
        ("registry-Org2", "127.0.0.1:20459", False, "not running"),
    ]

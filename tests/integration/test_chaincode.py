"""The registry chaincode on the real network, called through the ``peer`` CLI.

Deployment runs the full Fabric lifecycle (ccaas packages, install on every
peer, approve per organisation, commit with AND of every org). Tests run in
file order on the session's network and each uses its own model names.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from fabric_protos.gateway import gateway_pb2

from modelledger.mlops.store.digest import FileEntry, Manifest
from modelledger.network import FabricNetwork
from modelledger.network.chaincode_deployment import ChaincodeDeployment
from modelledger.network.chaincode_lifecycle import ChaincodeCallError, PeerCLI
from modelledger.network.chaincode_servers import server_name
from modelledger.network.topology import Organization
from modelledger.runtime.tls import tls_context
from modelledger.sdk import ConnectionProfile
from modelledger.sdk.gateway.errors import EndorseError
from modelledger.sdk.gateway.transaction import Proposal, build_proposal

pytestmark = pytest.mark.integration


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def model_record(name: str, version: str, seed: str = "") -> dict:
    """A complete RegisterModelVersion input; ``seed`` changes the files, hence the digests (computed from them)."""
    manifest = Manifest(
        (FileEntry("MLmodel", 412, sha(f"{seed}MLmodel")), FileEntry("model.pkl", 52_113, sha(f"{seed}model.pkl")))
    )
    return {
        "datasets": [{"name": "transactions-2026-10", "sha256": sha("dataset"), "source": "s3://data/tx.parquet"}],
        "framework": {"name": "sklearn", "version": "1.6.1"},
        "libraries": [{"name": "numpy", "version": "2.2.0"}],
        "manifest": manifest.to_json(),
        "manifestDigest": manifest.manifest_digest,
        "metrics": [{"key": "auc", "value": 0.93}],
        "mlflow": {"runId": "0123456789abcdef0123456789abcdef", "source": "models:/m-0123456789"},
        "modelDigest": manifest.model_digest,
        "name": name,
        "params": [{"key": "max_depth", "value": "6"}],
        "storage": {
            "bucket": "anchored",
            "key": f"models/{manifest.manifest_digest}/index.json",
            "sha256": sha(f"{seed}index"),
            "versionId": "v1",
        },
        "version": version,
    }


@pytest.fixture(scope="module")
def deployed(network: FabricNetwork) -> ChaincodeDeployment:
    """The chaincode deployed on the session network (deploy is idempotent)."""
    cc = network.chaincode
    cc.deploy()
    return cc


@pytest.fixture(scope="module")
def cli(network: FabricNetwork, deployed: ChaincodeDeployment) -> PeerCLI:
    return PeerCLI(network.topology, network.layout, network.bins)


@pytest.fixture(scope="module")
def org1(network: FabricNetwork) -> Organization:
    return network.topology.org("Org1")


@pytest.fixture(scope="module")
def org2(network: FabricNetwork) -> Organization:
    return network.topology.org("Org2")


def register(cli: PeerCLI, org: Organization, name: str, version: str, seed: str = "", role: str = "registrar") -> dict:
    result = cli.invoke(org, role, "RegisterModelVersion", [json.dumps(model_record(name, version, seed))])
    assert set(result.statuses.values()) == {"VALID"}, result
    return json.loads(result.payload)


def get_model(cli: PeerCLI, org: Organization, role: str, name: str, version: str) -> dict:
    return json.loads(cli.query(org, role, "GetModelVersion", [name, version]))


def refusal(call: Callable[[], object]) -> str:
    """Runs ``call``, expects it to fail, and returns the chaincode's message or the validation code."""
    with pytest.raises(ChaincodeCallError) as info:
        call()
    return info.value.message or info.value.validation_code


# ---------------------------------------------------------------------- deployment
def test_deploy_commits_every_org_policy_and_is_idempotent(
    network: FabricNetwork, deployed: ChaincodeDeployment, cli: PeerCLI
) -> None:
    committed = cli.committed("registry")
    assert committed is not None and committed["sequence"] >= 1
    assert committed["approvals"] == {"Org1MSP": True, "Org2MSP": True}
    again = deployed.deploy()
    assert again.actions == [] and again.sequence == committed["sequence"]
    for org in network.topology.application_orgs:
        ok, detail = deployed.server_health(org)
        assert ok, detail
    settings = json.loads(cli.query(network.topology.org("Org2"), "auditor", "GetSettings", []))
    assert settings["approvalOrgs"] == ["Org1MSP", "Org2MSP"]


def _talk_to_chaincode_server(network: FabricNetwork, org: Organization, cert: Path, key: Path) -> bytes:
    """Opens mutual TLS to the org's chaincode server and reads what the server sends first."""
    assert org.chaincode_server is not None
    ca = network.layout.chaincode_server_tls(org).ca
    ctx = tls_context(ca, cert, key)
    ctx.set_alpn_protocols(["h2"])
    ep = org.chaincode_server
    with (
        socket.create_connection((ep.host, ep.port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=ep.host) as s,
    ):
        return s.recv(64)


def test_only_the_orgs_peers_can_reach_its_chaincode_server(
    network: FabricNetwork, deployed: ChaincodeDeployment
) -> None:
    org = network.topology.org("Org1")
    peer_side = network.layout.chaincode_client_tls(org)
    # The peers' client certificate gets the server's HTTP/2 preface (a SETTINGS frame, type 4).
    assert _talk_to_chaincode_server(network, org, peer_side.cert, peer_side.key)[3] == 4
    # Any other certificate of the org, e.g. its admin's TLS certificate from the Fabric CA, is refused.
    admin = network.layout.user_tls(org, "admin")
    with pytest.raises(ssl.SSLError):
        _talk_to_chaincode_server(network, org, admin.cert, admin.key)
    assert oct(network.layout.chaincode_package(org, "registry").stat().st_mode & 0o777) == "0o600"


# ---------------------------------------------------------------------- registration
def test_registration_endorsed_by_both_orgs_commits_valid_with_creator_as_registrant(
    network: FabricNetwork, cli: PeerCLI, org1: Organization
) -> None:
    record = register(cli, org1, "fraud-detector", "1")
    cert = x509.load_pem_x509_certificate(
        (network.layout.user_msp(org1, "registrar") / "signcerts" / "cert.pem").read_bytes()
    )
    assert record["registrant"] == {
        "certFingerprint": hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest(),
        "mspId": "Org1MSP",
        "role": "registrar",
    }
    assert record["owner"] == "Org1MSP" and record["status"] == "REGISTERED"
    assert len(record["registeredTxId"]) == 64
    stored = get_model(cli, org1, "data_scientist", "fraud-detector", "1")
    assert stored == record
    assert stored["manifest"]["files"][1]["path"] == "model.pkl"
    # An identical re-registration returns the stored record and commits nothing new.
    assert register(cli, org1, "fraud-detector", "1") == record
    # Same name and version, other content: refused.
    out = refusal(lambda: register(cli, org1, "fraud-detector", "1", seed="other"))
    assert "CONFLICT:" in out


def test_endorsed_only_by_org1_is_invalidated_and_changes_nothing(cli: PeerCLI, org1: Organization) -> None:
    body = json.dumps(model_record("single-endorser", "1"))
    out = refusal(lambda: cli.invoke(org1, "registrar", "RegisterModelVersion", [body], endorsers=[org1]))
    assert "ENDORSEMENT_POLICY_FAILURE" in out
    out = refusal(lambda: get_model(cli, org1, "auditor", "single-endorser", "1"))
    assert 'NOT_FOUND: model "single-endorser" version "1"' in out


def test_roles_are_enforced(cli: PeerCLI, org1: Organization) -> None:
    register(cli, org1, "role-check", "1")
    out = refusal(lambda: cli.invoke(org1, "data_scientist", "ApproveModelVersion", ["role-check", "1", "ok"]))
    assert 'NOT_AUTHORIZED: role "data_scientist" of Org1MSP may not call ApproveModelVersion' in out
    body = json.dumps(model_record("role-check", "2"))
    out = refusal(lambda: cli.invoke(org1, "auditor", "RegisterModelVersion", [body]))
    assert 'NOT_AUTHORIZED: role "auditor" of Org1MSP may not call RegisterModelVersion' in out
    assert get_model(cli, org1, "auditor", "role-check", "1")["status"] == "REGISTERED"


def test_org2_reads_org1_model_only_after_a_grant(cli: PeerCLI, org1: Organization, org2: Organization) -> None:
    registered = register(cli, org1, "credit-score", "1", seed="credit")
    digest = registered["modelDigest"]
    hidden = 'NOT_FOUND: model "credit-score" version "1"'
    assert refusal(lambda: get_model(cli, org2, "data_scientist", "credit-score", "1")) == hidden
    assert json.loads(cli.query(org2, "data_scientist", "FindByDigest", [digest])) == []
    listing = cli.query(org2, "data_scientist", "ListModelVersions", ["", "100", ""])
    assert "credit-score" not in listing
    # A denied artifact access is recorded too, without the storage pointer.
    call = ["credit-score", "1", "audit"]
    denied = json.loads(cli.invoke(org2, "data_scientist", "AuthorizeArtifactAccess", call).payload)
    assert denied["decision"] == "DENIED" and "storage" not in denied
    # Auditors read everything, whatever their organisation.
    assert get_model(cli, org2, "auditor", "credit-score", "1")["owner"] == "Org1MSP"
    # Only the owner organisation's admin may grant; to Org2's admin the model does not exist.
    out = refusal(lambda: cli.invoke(org2, "admin", "GrantAccess", ["credit-score", "Org2MSP"]))
    assert out == 'NOT_FOUND: model "credit-score"'
    cli.invoke(org1, "admin", "GrantAccess", ["credit-score", "Org2MSP"])
    assert get_model(cli, org2, "data_scientist", "credit-score", "1")["modelDigest"] == digest
    found = json.loads(cli.query(org2, "data_scientist", "FindByDigest", [digest]))
    assert found == [{"name": "credit-score", "version": "1"}]
    call = ["credit-score", "1", "eval"]
    granted = json.loads(cli.invoke(org2, "data_scientist", "AuthorizeArtifactAccess", call).payload)
    assert granted["decision"] == "GRANTED" and granted["storage"] == registered["storage"]
    log = json.loads(cli.query(org1, "auditor", "ListAccessLog", ["credit-score", "1", "10", ""]))
    assert [(e["decision"], e["actor"]["mspId"], e["purpose"]) for e in log["records"]] == [
        ("DENIED", "Org2MSP", "audit"),
        ("GRANTED", "Org2MSP", "eval"),
    ]
    cli.invoke(org1, "admin", "RevokeAccess", ["credit-score", "Org2MSP"])
    assert refusal(lambda: get_model(cli, org2, "data_scientist", "credit-score", "1")) == hidden


# ---------------------------------------------------------------------- approval and deployment
def test_register_approve_by_both_then_deploy(cli: PeerCLI, org1: Organization, org2: Organization) -> None:
    register(cli, org1, "churn", "1")
    cli.invoke(org1, "approver", "ApproveModelVersion", ["churn", "1", "validated on hold-out set"])
    assert get_model(cli, org1, "auditor", "churn", "1")["status"] == "REGISTERED"
    out = refusal(lambda: cli.invoke(org1, "operator", "RecordDeployment", ["churn", "1", "prod", "https://m/churn"]))
    assert (
        out == 'CONFLICT: model "churn" version "1" is REGISTERED; only APPROVED or DEPLOYED versions can be deployed'
    )
    cli.invoke(org2, "approver", "ApproveModelVersion", ["churn", "1", "reviewed"])
    approved = get_model(cli, org1, "auditor", "churn", "1")
    assert approved["status"] == "APPROVED"
    assert sorted(a["mspId"] for a in approved["approvals"]) == ["Org1MSP", "Org2MSP"]
    cli.invoke(org1, "operator", "RecordDeployment", ["churn", "1", "prod", "https://serving.example/churn"])
    cli.invoke(org1, "operator", "RecordDeployment", ["churn", "1", "staging", "https://staging.example/churn"])
    prod = json.loads(cli.query(org1, "operator", "GetDeployment", ["prod", "churn"]))
    assert (prod["name"], prod["version"], prod["endpoint"]) == ("churn", "1", "https://serving.example/churn")
    deployed = get_model(cli, org1, "auditor", "churn", "1")
    assert deployed["status"] == "DEPLOYED"
    assert sorted(d["environment"] for d in deployed["deployments"]) == ["prod", "staging"]
    history = json.loads(cli.query(org1, "auditor", "GetHistory", ["churn", "1"]))
    assert len(history) == 5 and all(len(h["txId"]) == 64 for h in history)


def test_revoked_version_cannot_be_deployed(cli: PeerCLI, org1: Organization, org2: Organization) -> None:
    register(cli, org1, "churn", "2", seed="v2")
    for org in (org1, org2):
        cli.invoke(org, "approver", "ApproveModelVersion", ["churn", "2", "ok"])
    # Only the owner organisation's approver or admin may revoke.
    out = refusal(lambda: cli.invoke(org2, "approver", "RevokeModelVersion", ["churn", "2", "not ours"]))
    assert out == 'NOT_AUTHORIZED: only the owner organisation of model "churn" may revoke its versions'
    cli.invoke(org1, "approver", "RevokeModelVersion", ["churn", "2", "training data leak"])
    revoked = get_model(cli, org1, "auditor", "churn", "2")
    assert revoked["status"] == "REVOKED" and revoked["revocation"]["reason"] == "training data leak"
    out = refusal(lambda: cli.invoke(org1, "operator", "RecordDeployment", ["churn", "2", "prod", "https://x/churn"]))
    assert out == 'CONFLICT: model "churn" version "2" is REVOKED; only APPROVED or DEPLOYED versions can be deployed'
    out = refusal(lambda: cli.invoke(org1, "admin", "RevokeModelVersion", ["churn", "2", "again"]))
    assert out == 'CONFLICT: model "churn" version "2" is already revoked'
    # prod still runs version 1.
    assert json.loads(cli.query(org1, "operator", "GetDeployment", ["prod", "churn"]))["version"] == "1"


# ---------------------------------------------------------------------- access log and datasets
def submit_dated(network: FabricNetwork, msp_id: str, role: str, function: str, args: list[str], at: float) -> dict:
    """Submits through the Gateway with the transaction timestamp ``at`` (seconds since the epoch) in the proposal."""
    profile = ConnectionProfile.load(network.layout.connection_profile)
    with profile.gateway(msp_id, role) as gw:
        tx_id, proposal_bytes = build_proposal(
            gw.identity, profile.channel, profile.chaincode, function, [a.encode() for a in args], timestamp=at
        )
        proposed = gateway_pb2.ProposedTransaction(transaction_id=tx_id)
        proposed.proposal.proposal_bytes = proposal_bytes
        commit = Proposal(gw.stub, gw.signing, profile.channel, proposed, gw.options).endorse().submit()
        assert commit.wait().code_name == "VALID"
        return json.loads(commit.result)


def test_access_log_lists_in_commit_order_whatever_time_the_client_claims(
    network: FabricNetwork, cli: PeerCLI, org1: Organization, org2: Organization
) -> None:
    register(cli, org1, "access-order", "1", seed="access-order")
    cli.invoke(org1, "admin", "GrantAccess", ["access-order", "Org2MSP"])
    cli.invoke(org1, "operator", "AuthorizeArtifactAccess", ["access-order", "1", "first"])
    # Ten minutes back: the peers refuse a proposal dated outside their peer.authentication.timewindow
    # (Fabric's default, 15 minutes; a proposal dated 1999 is refused at endorsement).
    back = time.time() - 600
    dated = submit_dated(
        network,
        "Org2MSP",
        "data_scientist",
        "AuthorizeArtifactAccess",
        ["access-order", "1", "second, dated 10 minutes back"],
        at=back,
    )
    assert dated["decision"] == "GRANTED"
    cli.invoke(org1, "auditor", "AuthorizeArtifactAccess", ["access-order", "1", "third"])
    log = json.loads(cli.query(org1, "auditor", "ListAccessLog", ["access-order", "1", "10", ""]))
    assert [(e["purpose"], e["actor"]["mspId"]) for e in log["records"]] == [
        ("first", "Org1MSP"),
        ("second, dated 10 minutes back", "Org2MSP"),
        ("third", "Org1MSP"),
    ]
    times = [e["time"] for e in log["records"]]
    assert times[1].startswith(dt.datetime.fromtimestamp(int(back), dt.UTC).strftime("%Y-%m-%dT%H:%M:%S."))
    assert times[1] < times[0] < times[2]  # the client's times are kept, not used for the order
    too_early = dt.datetime(1999, 1, 1, tzinfo=dt.UTC).timestamp()
    with pytest.raises(EndorseError, match="incorrect timestamp"):
        submit_dated(
            network, "Org2MSP", "data_scientist", "AuthorizeArtifactAccess", ["access-order", "1", ""], too_early
        )
    # A version that does not exist: the same answer as an unreadable one, and no entry.
    missing = json.loads(
        cli.invoke(org2, "data_scientist", "AuthorizeArtifactAccess", ["access-order", "9", "probe"]).payload
    )
    assert missing["decision"] == "DENIED" and missing["reason"] == "model version not found or no read access"
    assert json.loads(cli.query(org1, "auditor", "ListAccessLog", ["access-order", "9", "10", ""]))["records"] == []


def test_concurrent_accesses_to_one_version_all_commit(
    network: FabricNetwork, cli: PeerCLI, org1: Organization, org2: Organization
) -> None:
    """Accesses endorsed before any of them commits (model-server replicas, an outsider's denied probes) all commit."""
    register(cli, org1, "access-concurrent", "1", seed="access-concurrent")
    profile = ConnectionProfile.load(network.layout.connection_profile)
    callers = [("Org1MSP", "operator"), ("Org2MSP", "data_scientist"), ("Org1MSP", "operator"), ("Org1MSP", "auditor")]
    gateways = [profile.gateway(msp, role) for msp, role in callers]
    try:
        contracts = [gw.network(profile.channel).contract(profile.chaincode) for gw in gateways]
        # Every access is endorsed first, so none of them saw another's writes (a shared
        # counter read by each made all but one fail MVCC_READ_CONFLICT), then all are submitted.
        endorsed = [
            c.new_proposal("AuthorizeArtifactAccess", ["access-concurrent", "1", f"replica {i}"]).endorse()
            for i, c in enumerate(contracts)
        ]
        commits = [tx.submit() for tx in endorsed]
        assert [c.wait().code_name for c in commits] == ["VALID"] * len(callers)
    finally:
        for gw in gateways:
            gw.close()
    decisions = [json.loads(tx.result)["decision"] for tx in endorsed]
    assert decisions == ["GRANTED", "DENIED", "GRANTED", "GRANTED"]
    log = json.loads(cli.query(org1, "auditor", "ListAccessLog", ["access-concurrent", "1", "10", ""]))
    assert sorted(e["purpose"] for e in log["records"]) == [f"replica {i}" for i in range(len(callers))]
    assert {e["txId"] for e in log["records"]} == {tx.transaction_id for tx in endorsed}


def test_every_organisation_records_its_own_dataset_claim(cli: PeerCLI, org1: Organization, org2: Organization) -> None:
    digest = sha("per-org dataset")
    own = {"name": "transactions-2027-01", "schemaSummary": "", "sha256": digest, "source": "s3://data/tx.parquet"}
    mine = json.loads(cli.invoke(org1, "registrar", "RegisterDataset", [json.dumps(own)]).payload)
    # Org2 cannot take the sha256 with a misleading description: it records its own claim beside Org1's.
    squat = {**own, "name": "harmless-sample", "source": "s3://elsewhere/sample.csv"}
    theirs = json.loads(cli.invoke(org2, "data_scientist", "RegisterDataset", [json.dumps(squat)]).payload)
    assert (mine["owner"], theirs["owner"]) == ("Org1MSP", "Org2MSP")
    claims = json.loads(cli.query(org2, "auditor", "GetDatasetClaims", [digest]))
    assert [(c["owner"], c["name"]) for c in claims] == [("Org1MSP", own["name"]), ("Org2MSP", squat["name"])]
    # GetDataset keeps chaincode 1.2.0's shape, one object: the caller's organisation's claim.
    assert json.loads(cli.query(org2, "auditor", "GetDataset", [digest])) == theirs
    assert json.loads(cli.query(org1, "auditor", "GetDataset", [digest])) == mine
    # The same claim again is idempotent; another description by the same organisation is a CONFLICT.
    again = json.loads(cli.invoke(org1, "data_scientist", "RegisterDataset", [json.dumps(own)]).payload)
    assert again == mine
    out = refusal(lambda: cli.invoke(org1, "registrar", "RegisterDataset", [json.dumps({**own, "source": "s3://x"})]))
    assert out == f"CONFLICT: dataset {digest} is already registered by Org1MSP with other content (differs in source)"
    # A model's reference counts its own organisation's claim, and the version records its approval set.
    record = model_record("per-org-datasets", "1", seed="per-org")
    record["datasets"] = [
        {"name": "transactions-2027-01", "sha256": digest, "source": "s3://data/tx.parquet"},
        {"name": "labels", "sha256": sha("claimed by Org2 only"), "source": "s3://data/labels.csv"},
        {"name": "features", "sha256": sha("claimed by Org1 as another"), "source": "s3://data/features.csv"},
    ]
    cli.invoke(org2, "data_scientist", "RegisterDataset", [json.dumps({**own, "sha256": sha("claimed by Org2 only")})])
    other = {**own, "name": "features-v0", "sha256": sha("claimed by Org1 as another"), "source": "s3://data/features.csv"}
    cli.invoke(org1, "registrar", "RegisterDataset", [json.dumps(other)])
    result = cli.invoke(org1, "registrar", "RegisterModelVersion", [json.dumps(record)])
    registered = json.loads(result.payload)
    assert {d["sha256"]: d["registered"] for d in registered["datasets"]} == {
        digest: True,
        sha("claimed by Org2 only"): False,
        sha("claimed by Org1 as another"): False,  # Org1's claim names it features-v0
    }
    assert registered["approvalOrgs"] == ["Org1MSP", "Org2MSP"]


# ---------------------------------------------------------------------- upgrade
def test_upgrade_to_changed_source_keeps_all_state(
    network: FabricNetwork, cli: PeerCLI, org1: Organization, tmp_path: Path
) -> None:
    before = get_model(cli, org1, "auditor", "churn", "1")
    seq = cli.committed("registry")["sequence"]
    pids = {
        o.name: network.supervisor.running(server_name(network.topology, o)).pid
        for o in network.topology.application_orgs
    }
    # A changed source (one extra comment): a new binary, version and sequence.
    src = tmp_path / "chaincode"
    shutil.copytree(
        Path(__file__).resolve().parents[2] / "chaincode", src, ignore=shutil.ignore_patterns("*_test.go", "testdata")
    )
    (src / "main.go").write_text((src / "main.go").read_text() + "\n// upgraded by the integration test\n")
    upgraded = ChaincodeDeployment(
        network.topology, network.layout, network.bins, network.supervisor, 90, source=src
    ).deploy(upgrade=True)
    assert upgraded.sequence == seq + 1
    assert upgraded.version.startswith(f"{seq + 1}-")
    committed = cli.committed("registry")
    assert (committed["sequence"], committed["version"]) == (seq + 1, upgraded.version)
    for org in network.topology.application_orgs:
        info = network.supervisor.running(server_name(network.topology, org))
        assert info is not None and info.pid != pids[org.name]
    assert get_model(cli, org1, "auditor", "churn", "1") == before
    assert json.loads(cli.query(org1, "operator", "GetDeployment", ["prod", "churn"]))["version"] == "1"
    # And the upgraded chaincode still writes.
    register(cli, org1, "after-upgrade", "1")


def test_upgrade_keeps_records_whose_digests_and_names_an_earlier_version_did_not_check(
    network: FabricNetwork, cli: PeerCLI, org1: Organization, tmp_path: Path
) -> None:
    """Contract 1.3.0 checks digests and the name class of new registrations only: records stored before stay."""
    real = Path(__file__).resolve().parents[2] / "chaincode"
    # The chaincode as 1.2.0 validated registrations: neither the digests nor the 1.3.0 name class.
    src = tmp_path / "chaincode"
    shutil.copytree(real, src, ignore=shutil.ignore_patterns("*_test.go", "testdata"))
    validation = src / "registry" / "validation.go"
    text = validation.read_text()
    unchecked = text.replace("func() error { return validateManifestDigests(in) },", "").replace(
        'return validateNewModelName("name", in.Name)', 'return validateModelName("name", in.Name)'
    )
    assert unchecked.count("validateManifestDigests(") == text.count("validateManifestDigests(") - 1
    assert 'validateNewModelName("name", in.Name)' not in unchecked
    validation.write_text(unchecked)

    def deploy(source: Path) -> None:
        ChaincodeDeployment(
            network.topology, network.layout, network.bins, network.supervisor, 90, source=source
        ).deploy(upgrade=True)

    deploy(src)
    old = {**model_record("legacy ", "1", seed="legacy"), "modelDigest": sha("made up"), "manifestDigest": sha("up")}
    stored = json.loads(cli.invoke(org1, "registrar", "RegisterModelVersion", [json.dumps(old)]).payload)
    deploy(real)
    assert get_model(cli, org1, "auditor", "legacy ", "1") == stored
    assert json.loads(cli.query(org1, "auditor", "FindByDigest", [sha("made up")])) == [
        {"name": "legacy ", "version": "1"}
    ]
    # The same registration now: refused, the name first.
    out = refusal(lambda: cli.invoke(org1, "registrar", "RegisterModelVersion", [json.dumps(old)]))
    assert out == "INVALID: name: must not start or end with a space"


def test_digests_that_do_not_belong_to_the_manifest_are_refused(cli: PeerCLI, org1: Organization) -> None:
    good = model_record("digest-check", "1", seed="digest-check")
    other = model_record("digest-check", "1", seed="digest-other")
    for field in ("modelDigest", "manifestDigest"):
        body = json.dumps({**good, field: other[field]})
        out = refusal(lambda body=body: cli.invoke(org1, "registrar", "RegisterModelVersion", [body]))
        assert out.startswith(f"INVALID: {field}: does not match manifest.files: their ") and out.endswith(good[field])
    # Nothing was written: no version, no digest index entry.
    out = refusal(lambda: get_model(cli, org1, "auditor", "digest-check", "1"))
    assert out == 'NOT_FOUND: model "digest-check" version "1"'
    assert json.loads(cli.query(org1, "auditor", "FindByDigest", [other["modelDigest"]])) == []
    assert json.loads(cli.query(org1, "auditor", "FindByDigest", [good["modelDigest"]])) == []
    register(cli, org1, "digest-check", "1", seed="digest-check")
    found = json.loads(cli.query(org1, "auditor", "FindByDigest", [good["modelDigest"]]))
    assert found == [{"name": "digest-check", "version": "1"}]


def test_names_outside_the_name_class_are_refused(cli: PeerCLI, org1: Organization) -> None:
    for name, rule in [
        ("bidi\u202eevil", "must not contain Unicode format characters (Cf: bidi controls, zero-width characters)"),
        ("trailing ", "must not start or end with a space"),
        ("team/model", "must not contain '/' or ':'"),
    ]:
        body = json.dumps(model_record(name, "1"))
        out = refusal(lambda body=body: cli.invoke(org1, "registrar", "RegisterModelVersion", [body]))
        assert out == f"INVALID: name: {rule}"

"""The Python Gateway SDK and registry client against the real network and chaincode."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fabric_protos.common import common_pb2, ledger_pb2

from modelledger.mlops.store import ledger_pointer
from modelledger.mlops.store.digest import FileEntry
from modelledger.mlops.store.digest import Manifest as FilesManifest
from modelledger.network import FabricNetwork
from modelledger.network.chaincode_deployment import ChaincodeDeployment
from modelledger.network.chaincode_lifecycle import PeerCLI
from modelledger.sdk import CommitError, ConnectionProfile
from modelledger.sdk.gateway.events import FileCheckpointer, blocks, chaincode_events
from modelledger.sdk.ledger.blocks import DecodedTransaction, _varint, decode_block, read_block_files, serialize_block
from modelledger.sdk.registry import NotFound, RegistryClient
from modelledger.sdk.registry.records import (
    EvaluationInput,
    Framework,
    Manifest,
    ManifestFile,
    Metric,
    MLflowSource,
    ModelVersionInput,
    Storage,
)
from modelledger.sdk.registry.statuses import status_meaning, status_word
from tests.cli_capture import (
    minimal_env,
    read_blocks,
    read_table,
    read_tsv,
    run_in_pty,
    run_piped,
    strip_ansi,
    too_wide,
)

pytestmark = pytest.mark.integration


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def version_input(name: str, version: str, seed: str = "") -> ModelVersionInput:
    """A version of one file (its content depends on name, version and seed), with the digests of that file."""
    files = FilesManifest((FileEntry("model.pkl", 2048, sha(f"{seed}{name}{version}file")),))
    return ModelVersionInput(
        name=name,
        version=version,
        model_digest=files.model_digest,
        manifest=Manifest([ManifestFile(f.path, f.sha256, f.size) for f in files.files]),
        manifest_digest=files.manifest_digest,
        storage=Storage(
            "anchored", f"models/{files.manifest_digest}/index.json", sha(f"{seed}{name}{version}index"), "v1"
        ),
        mlflow=MLflowSource("", f"models:/m-{sha(name)[:8]}"),
        framework=Framework("sklearn", "1.6.1"),
    )


@pytest.fixture(scope="module")
def deployed(network: FabricNetwork) -> ChaincodeDeployment:
    cc = network.chaincode
    cc.deploy()
    return cc


@pytest.fixture(scope="module")
def profile(network: FabricNetwork, deployed: ChaincodeDeployment) -> ConnectionProfile:
    return ConnectionProfile.load(network.layout.connection_profile)


def client(profile: ConnectionProfile, msp: str, role: str) -> RegistryClient:
    gw = profile.gateway(msp, role)
    return RegistryClient(gw.network(profile.channel), profile.chaincode)


def test_register_query_approve_round_trip(profile: ConnectionProfile) -> None:
    registrar = client(profile, "Org1MSP", "registrar")
    record = registrar.register_model_version(version_input("sdk-model", "1"))
    status = registrar.last_status
    assert status is not None and status.code_name == "VALID" and status.block_number > 0
    assert record.registrant.msp_id == "Org1MSP" and record.registrant.role == "registrar"
    assert record.registrant.cert_fingerprint == registrar.contract.network.gateway.identity.fingerprint
    assert client(profile, "Org1MSP", "auditor").get_model_version("sdk-model", "1") == record
    client(profile, "Org1MSP", "approver").approve("sdk-model", "1", "looks good")
    approved = client(profile, "Org2MSP", "approver").approve("sdk-model", "1", "agreed")
    assert approved.status == "APPROVED"
    assert [a.msp_id for a in approved.approvals] == ["Org1MSP", "Org2MSP"]
    with pytest.raises(NotFound) as info:
        client(profile, "Org2MSP", "data_scientist").get_model_version("sdk-model", "1")
    assert info.value.message == 'NOT_FOUND: model "sdk-model" version "1"'


def test_sdk_and_peer_cli_read_each_others_writes(network: FabricNetwork, profile: ConnectionProfile) -> None:
    cli = PeerCLI(network.topology, network.layout, network.bins)
    org1 = network.topology.org("Org1")
    written = client(profile, "Org1MSP", "registrar").register_model_version(version_input("sdk-written", "1"))
    read = json.loads(cli.query(org1, "auditor", "GetModelVersion", ["sdk-written", "1"]))
    assert read["modelDigest"] == written.model_digest and read["registeredTxId"] == written.registered_tx_id
    body = json.dumps(version_input("cli-written", "1").to_json())
    result = cli.invoke(org1, "data_scientist", "RegisterModelVersion", [body])
    from_sdk = client(profile, "Org2MSP", "auditor").get_model_version("cli-written", "1")
    assert from_sdk.registered_tx_id == result.tx_id
    assert from_sdk.registrant.role == "data_scientist"


def test_endorsement_by_org1_only_raises_commit_error_and_changes_nothing(profile: ConnectionProfile) -> None:
    registrar = client(profile, "Org1MSP", "registrar")
    body = json.dumps(version_input("org1-only", "1").to_json())
    with pytest.raises(CommitError) as info:
        registrar.contract.submit("RegisterModelVersion", [body], endorsing_organizations=["Org1MSP"])
    assert info.value.code_name == "ENDORSEMENT_POLICY_FAILURE"
    assert len(info.value.transaction_id) == 64 and info.value.block_number > 0
    with pytest.raises(NotFound):
        client(profile, "Org1MSP", "auditor").get_model_version("org1-only", "1")


CONSUMER = """
import json, sys
from modelledger.sdk import ConnectionProfile
from modelledger.sdk.gateway.events import FileCheckpointer, chaincode_events
profile, checkpoint, out, stop_after = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
prof = ConnectionProfile.load(profile)
net = prof.gateway("Org1MSP", "auditor").network(prof.channel)
cp = FileCheckpointer(checkpoint)
start = None if cp.checkpoint else int(sys.argv[5])
handled = 0
with open(out, "a") as f:
    for ev in chaincode_events(net, prof.chaincode, start_block=start, checkpoint=cp.checkpoint, timeout=60):
        f.write(json.dumps([ev.block_number, ev.transaction_id, ev.name]) + "\\n")
        f.flush()
        cp.checkpoint_event(ev)
        handled += 1
        if handled == stop_after:
            break
"""


def test_event_consumer_resumes_after_a_restart_without_gaps_or_repeats(
    network: FabricNetwork, profile: ConnectionProfile, tmp_path: Path
) -> None:
    registrar = client(profile, "Org1MSP", "registrar")
    start_block = registrar.register_dataset("events-0", sha("events-0"), "s3://e/0") and registrar.last_status
    assert start_block is not None
    names = [f"events-{i}" for i in range(1, 7)]
    tx_ids = []
    for n in names[:3]:
        tx_ids.append(registrar.register_dataset(n, sha(n), f"s3://e/{n}").registered_tx_id)
    checkpoint, out = tmp_path / "checkpoint.json", tmp_path / "events.jsonl"
    script = tmp_path / "consumer.py"
    script.write_text(CONSUMER)
    args = [sys.executable, str(script), str(profile.path), str(checkpoint), str(out)]
    # First run: handles two events, then stops (as if it crashed after checkpointing them).
    subprocess.run([*args, "2", str(start_block.block_number + 1)], check=True, timeout=120)
    # The gateway peer restarts in between, and more events arrive.
    network.supervisor.stop("peer0-Org1")
    network.up()
    time.sleep(1)
    for n in names[3:]:
        tx_ids.append(
            client(profile, "Org1MSP", "registrar").register_dataset(n, sha(n), f"s3://e/{n}").registered_tx_id
        )
    # Second run: resumes from the checkpoint and handles the remaining four.
    subprocess.run([*args, "4", "0"], check=True, timeout=120)
    seen = [json.loads(line) for line in out.read_text().splitlines()]
    assert [tx for _b, tx, _n in seen] == tx_ids
    assert {n for _b, _tx, n in seen} == {"DatasetRegistered"}
    assert FileCheckpointer(checkpoint).checkpoint.transaction_id == tx_ids[-1]  # type: ignore[union-attr]
    _ = chaincode_events  # the subprocess uses it


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "modelledger"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=300)


def _checks(doc: dict) -> dict[str, dict]:
    return {c["name"]: c for c in doc["checks"]}


def test_ledger_verify_checks_links_signatures_and_the_other_peers(
    network: FabricNetwork, profile: ConnectionProfile, tmp_path: Path
) -> None:
    client(profile, "Org1MSP", "registrar").register_dataset("ledger-verify", sha("ledger-verify"), "s3://l/v")
    network.wait_heights_converged(timeout=60)
    live = _cli("ledger", "verify", "--profile", str(profile.path), "--json")
    assert live.returncode == 0, live.stdout + live.stderr
    report = json.loads(live.stdout)
    height = json.loads(_cli("ledger", "height", "--profile", str(profile.path), "--json").stdout)["height"]
    assert report["ok"] is True and report["verdict"] == "ok" and report["blocks_verified"] == height >= 5
    assert report["blocks_signed"] == height - 1 and report["unchecked"] == []
    checks = _checks(report)
    assert list(checks) == [
        "hash-chain",
        "orderer-signatures",
        "genesis",
        "height",
        "same-blocks",
        "validation-flags",
    ]
    assert all(c["ok"] for c in checks.values())
    # Block 0 is the genesis block configtxgen wrote in the stack's state folder.
    assert str(network.layout.channel_block(profile.channel)) in checks["genesis"]["detail"]
    genesis = report["genesis_block_hash"]
    assert [p.split(" ")[0] for p in report["compared_with"]] == ["peer0-Org2"]  # the other organisation's peer
    assert "TRANSACTIONS_FILTER" in report["unsigned"]

    # A copy of the peer's block files, re-encoded identically: compared with both organisations' peers.
    source = (
        network.layout.ledger_dir(network.topology.peers[0]) / "ledgersData" / "chains" / "chains" / profile.channel
    )
    blocks = list(read_block_files(source))
    assert len(blocks) == height
    copy = tmp_path / "copy"
    copy.mkdir()
    encoded = [serialize_block(b) for b in blocks]
    original = b"".join(_varint(len(e)) + e for e in encoded)
    assert (source / "blockfile_000000").read_bytes()[: len(original)] == original

    def verify_copy(chain: list[bytes], *extra: str) -> tuple[int, dict]:
        (copy / "blockfile_000000").write_bytes(b"".join(_varint(len(e)) + e for e in chain))
        done = _cli("ledger", "verify", "--block-dir", str(copy), "--profile", str(profile.path), "--json", *extra)
        return done.returncode, json.loads(done.stdout)

    rc, doc = verify_copy(encoded)
    assert rc == 0 and doc["ok"] and len(doc["compared_with"]) == 2, doc
    # The files are Org1's peer's (--copy-org defaults to --org): only Org2's peer vouches for the flags.
    assert _checks(doc)["validation-flags"]["detail"].endswith("(organisations: Org2MSP)")

    # One flipped byte in block 3's orderer signature: named, with its check.
    victim = common_pb2.Block()
    victim.CopyFrom(blocks[3])
    md = common_pb2.Metadata.FromString(victim.metadata.metadata[common_pb2.SIGNATURES])
    sig = bytearray(md.signatures[0].signature)
    sig[len(sig) // 2] ^= 0x01
    md.signatures[0].signature = bytes(sig)
    victim.metadata.metadata[common_pb2.SIGNATURES] = md.SerializeToString()
    rc, doc = verify_copy([*encoded[:3], serialize_block(victim), *encoded[4:]])
    assert rc == 1 and doc["broken_block"] == 3
    assert _checks(doc)["orderer-signatures"]["ok"] is False
    assert _checks(doc)["orderer-signatures"]["detail"].startswith("block 3: ")

    # A copy missing its newest blocks is sound on its own, and behind the live peers.
    rc, doc = verify_copy(encoded[:-2])
    assert rc == 1 and _checks(doc)["hash-chain"]["ok"] and _checks(doc)["orderer-signatures"]["ok"]
    assert _checks(doc)["height"]["ok"] is False and "behind the live peer" in _checks(doc)["height"]["detail"]
    assert f"blocks {height - 2}-{height - 1} are missing" in _checks(doc)["height"]["detail"]

    # A validation flag flipped in the copy: no one signs it, the other peers' copies contradict it.
    last = common_pb2.Block()
    last.CopyFrom(blocks[-1])
    flags = bytearray(last.metadata.metadata[common_pb2.TRANSACTIONS_FILTER])
    flags[0] = 11 if flags[0] == 0 else 0
    last.metadata.metadata[common_pb2.TRANSACTIONS_FILTER] = bytes(flags)
    rc, doc = verify_copy([*encoded[:-1], serialize_block(last)])
    assert rc == 1 and _checks(doc)["orderer-signatures"]["ok"] and _checks(doc)["same-blocks"]["ok"]
    flagged = _checks(doc)["validation-flags"]
    assert flagged["ok"] is False and f"block {height - 1} vs peer0-Org1" in flagged["detail"]
    assert f"block {height - 1} vs peer0-Org2" in flagged["detail"]

    # With no peer to ask (and no genesis block known), the copy's own checks hold, the others are listed as
    # not made, and the verdict is incomplete: exit 3, not ok.
    rc, doc = verify_copy(encoded, "--profile", str(tmp_path / "no-profile.yaml"))
    assert rc == 3 and doc["ok"] is False and doc["verdict"] == "incomplete"
    assert doc["unchecked"] == ["genesis", "height", "same-blocks", "validation-flags"]
    assert "no live peer reachable" in _checks(doc)["height"]["detail"]
    rc, doc = verify_copy(encoded, "--profile", str(tmp_path / "no-profile.yaml"), "--genesis-hash", genesis)
    assert rc == 3 and _checks(doc)["genesis"]["ok"] is True and "genesis" not in doc["unchecked"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _cli("ledger", "verify", "--block-dir", str(empty), "--json").returncode == 1  # no block files


def test_block_events_stream_new_blocks_with_decoded_transactions(profile: ConnectionProfile) -> None:
    auditor = profile.gateway("Org2MSP", "auditor")
    network = auditor.network(profile.channel)
    height = ledger_pb2.BlockchainInfo.FromString(
        network.contract("qscc").evaluate("GetChainInfo", [profile.channel])
    ).height
    seen: list[DecodedTransaction] = []

    def consume() -> None:
        for block in blocks(network, start=height, timeout=60):
            seen.extend(decode_block(block))
            if any(t.chaincode == profile.chaincode for t in seen):
                return

    reader = threading.Thread(target=consume)
    reader.start()
    registrar = client(profile, "Org1MSP", "registrar")
    tx = registrar.register_dataset("block-events", sha("block-events"), "s3://b/e").registered_tx_id
    reader.join(timeout=90)
    (decoded,) = [t for t in seen if t.tx_id == tx]
    assert decoded.validation_code == "VALID" and decoded.type == "ENDORSER_TRANSACTION"
    assert decoded.creator.msp_id == "Org1MSP" and "CN=registrar" in decoded.creator.subject
    assert sorted(e.msp_id for e in decoded.endorsers) == ["Org1MSP", "Org2MSP"]
    auditor.close()


def test_event_consumer_resumes_in_the_middle_of_a_block(profile: ConnectionProfile, tmp_path: Path) -> None:
    registrar = client(profile, "Org1MSP", "registrar")
    start = registrar.register_dataset("mid-0", sha("mid-0"), "s3://m/0") and registrar.last_status
    assert start is not None
    # Submitted together, these land in one block (BatchTimeout 250 ms).
    names = [f"mid-{i}" for i in range(1, 6)]
    bodies = [json.dumps({"name": n, "schemaSummary": "", "sha256": sha(n), "source": f"s3://m/{n}"}) for n in names]
    commits = [registrar.contract.submit_async("RegisterDataset", [b]) for b in bodies]
    statuses = [c.wait() for c in commits]
    blocks_of = [s.block_number for s in statuses]
    assert len(set(blocks_of)) < len(blocks_of), f"expected shared blocks, got {blocks_of}"
    checkpoint, out = tmp_path / "cp.json", tmp_path / "events.jsonl"
    script = tmp_path / "consumer.py"
    script.write_text(CONSUMER)
    args = [sys.executable, str(script), str(profile.path), str(checkpoint), str(out)]
    subprocess.run([*args, "1", str(start.block_number + 1)], check=True, timeout=120)
    subprocess.run([*args, str(len(names) - 1), "0"], check=True, timeout=120)
    seen = [json.loads(line)[1] for line in out.read_text().splitlines()]
    assert sorted(seen) == sorted(c.transaction_id for c in commits) and len(seen) == len(set(seen))


VIEWS = ("list", "show", "history")


def test_model_views_show_every_value_whole_in_a_pipe_and_in_a_terminal(
    profile: ConnectionProfile, tmp_path: Path
) -> None:
    # `model list`, `show` and `history` run as a user runs them (docs/operations.md, "Output"): piped, each
    # record is one TAB-separated line; in an 80-column terminal, blocks; in a 200-column one, tables. Every
    # name, digest and transaction id comes out whole, never with an ellipsis.
    name = "breast-cancer-classifier-with-a-long-name"
    client(profile, "Org1MSP", "registrar").register_model_version(version_input(name, "1"))
    client(profile, "Org1MSP", "approver").approve(name, "1", "reviewed by the model risk committee this morning")
    auditor = client(profile, "Org1MSP", "auditor")
    mv = auditor.get_model_version(name, "1")
    env = minimal_env(tmp_path, TERM="xterm-256color")
    views = {v: ["model", v, name, *([] if v == "list" else ["1"]), "--profile", str(profile.path)] for v in VIEWS}

    list_header = ["name", "version", "status", "owner", "model digest", "registered"]
    listed = [[mv.name, mv.version, status_word(mv.status), mv.owner, mv.model_digest, mv.registered_at]]
    history_header = ["time", "action", "actor", "status", "tx id"]
    changes = [
        [e.time, e.action, f"{e.actor.role}@{e.actor.msp_id}" if e.actor else "-", status_word(e.status), e.tx_id]
        for e in auditor.get_history(name, "1")
    ]
    assert len(changes) == 2 and changes[0][4] == mv.registered_tx_id

    piped = {view: run_piped(args, env) for view, args in views.items()}
    for text in piped.values():
        assert "\x1b" not in text and "…" not in text and "│" not in text
    assert read_tsv(piped["list"]) == (list_header, listed)
    assert read_tsv(piped["history"]) == (history_header, changes)
    fields = dict(line.split("\t") for line in piped["show"].splitlines())
    assert fields["name"] == name and fields["model digest"] == mv.model_digest
    assert fields["registered"] == f"{mv.registered_at} tx {mv.registered_tx_id}"
    assert fields["registrant"].endswith(f"({mv.registrant.cert_fingerprint})")
    pointer = ledger_pointer(record=mv)
    assert fields["storage"] == pointer.uri and fields["storage version"] == pointer.version_id

    for columns in (80, 200):
        out = {view: strip_ansi(run_in_pty(args, env, columns)) for view, args in views.items()}
        for text in out.values():
            assert "…" not in text and not too_wide(text, columns), text
        if columns == 80:
            assert read_blocks(out["list"], list_header) == [dict(zip(list_header, r, strict=True)) for r in listed]
            assert read_blocks(out["history"], history_header) == [dict(zip(history_header, r, strict=True)) for r in changes]
            # (A block's line ends with its value's last word: "source " of a version with no source is "source".)
            assert read_blocks(out["show"], fields) == [{k: " ".join(v.split()) for k, v in fields.items()}]
        else:
            assert read_table(out["list"]) == (list_header, listed)
            assert read_table(out["history"]) == (history_header, changes)
            assert dict(read_table(out["show"])[1]) == {k: " ".join(v.split()) for k, v in fields.items()}


def test_governance_commands_record_decisions_and_a_refusal_changes_nothing(profile: ConnectionProfile) -> None:
    # `model approve|deploy|reject|revoke|grant|revoke-access` as a user runs them (docs/operations.md,
    # "Governance commands"): each acts as the role it names, prints what happened, and a refusal prints the
    # chaincode's reason on one line, exits 1 and leaves the ledger as it was.
    name = "governed-model"
    client(profile, "Org1MSP", "registrar").register_model_version(version_input(name, "1"))
    auditor = client(profile, "Org1MSP", "auditor")
    conn = ("--profile", str(profile.path))

    first = _cli("model", "approve", name, "1", "--comment", "reviewed", *conn)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"{name}/1 approved by Org1MSP: now registered (")
    second = _cli("model", "approve", name, "1", "--org", "Org2MSP", "--json", *conn)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["status"] == "APPROVED"
    assert auditor.get_model_version(name, "1").status == "APPROVED"

    deployed = _cli("model", "deploy", name, "1", "--environment", "prod", "--endpoint", "https://m.example/v1", *conn)
    assert deployed.returncode == 0, deployed.stderr
    assert deployed.stdout == (
        f"{name}/1 deployed to prod at https://m.example/v1 by Org1MSP: now deployed ({status_meaning('DEPLOYED')})\n"
    )

    before, history = auditor.get_model_version(name, "1"), len(auditor.get_history(name, "1"))
    refused = _cli("model", "reject", name, "1", "--org", "Org2MSP", "--reason", "too late", *conn)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr == f'error: refused: Org2MSP already approved model "{name}" version "1"\n', refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
    assert "endorse" not in refused.stderr and "grpc" not in refused.stderr.lower()
    by_auditor = _cli("model", "deploy", name, "1", "--environment", "dev", "--endpoint", "x", "--role", "auditor",
                      "--json", *conn)  # fmt: skip
    assert by_auditor.returncode == 1
    assert json.loads(by_auditor.stdout)["error"].startswith('not authorized: role "auditor" of Org1MSP may not call')
    assert auditor.get_model_version(name, "1") == before and len(auditor.get_history(name, "1")) == history

    revoked = _cli("model", "revoke", name, "1", "--reason", "leaked training data", "--json", *conn)
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(revoked.stdout)["revocation"]["reason"] == "leaked training data"
    again = _cli("model", "revoke", name, "1", "--reason", "twice", *conn)
    assert again.returncode == 1 and again.stderr == f'error: refused: model "{name}" version "1" is already revoked\n'

    granted = _cli("model", "grant", name, "Org2MSP", *conn)
    assert granted.returncode == 0, granted.stderr
    said = f"Org2MSP may now read every version of {name} (granted by Org1MSP); read access granted to: Org2MSP\n"
    assert granted.stdout == said
    assert client(profile, "Org2MSP", "data_scientist").get_model_version(name, "1").status == "REVOKED"
    withdrawn = _cli("model", "revoke-access", name, "Org2MSP", "--json", *conn)
    assert withdrawn.returncode == 0, withdrawn.stderr
    assert json.loads(withdrawn.stdout)["grants"] == []
    with pytest.raises(NotFound):
        client(profile, "Org2MSP", "data_scientist").get_model_version(name, "1")


def test_the_policy_command_and_the_gate_in_model_show(profile: ConnectionProfile) -> None:
    # `model policy` as a user runs it (docs/sdk.md, "Governance commands"): bad input and a refusal change
    # nothing; the owner's admin sets it; `model show` then says how many passing evaluations the version has of
    # those the policy requires, and an approval before they are there is refused with the chaincode's reason.
    name = "policy-cli-model"
    client(profile, "Org1MSP", "registrar").register_model_version(version_input(name, "1"))
    auditor = client(profile, "Org1MSP", "auditor")
    conn = ("--profile", str(profile.path))

    shown = _cli("model", "policy", name, *conn)
    assert shown.returncode == 0, shown.stderr
    assert "policy\tno policy" in shown.stdout.splitlines()
    bad = _cli("model", "policy", name, "--min", "accuracy_score=abc", *conn)
    assert bad.returncode == 2 and "is not a number" in bad.stderr
    by_approver = _cli("model", "policy", name, "--min", "accuracy_score=0.9", "--role", "approver", "--json", *conn)
    assert by_approver.returncode == 1, by_approver.stdout
    assert json.loads(by_approver.stdout)["error"].startswith("not authorized: ")
    assert auditor.get_model(name).policy is None

    argv = ("model", "policy", name, "--min", "accuracy_score=0.9", "--max", "log_loss=0.3", "--independent", *conn)
    set_ = _cli(*argv)
    assert set_.returncode == 0, set_.stderr
    said = (
        f"{name} policy set by Org1MSP: version 1: accuracy_score >= 0.9, log_loss <= 0.3; 1 passing evaluation "
        "required; evaluator of another organisation than the registrant's\n"
    )
    assert set_.stdout == said + "  new policy (the model had none)\n"
    again = _cli(*argv)  # the same policy again: no new version
    assert again.stdout == said + "  unchanged: version 1 is this policy already\n", again.stdout

    holdout = sha(f"{name} hold-out")
    client(profile, "Org2MSP", "data_scientist").register_dataset(f"{name} hold-out", holdout, "s3://holdout/data")
    evaluator = client(profile, "Org2MSP", "evaluator")

    def evaluation(run: str, accuracy: float) -> EvaluationInput:
        metrics = [Metric("accuracy_score", accuracy), Metric("log_loss", 0.1)]
        return EvaluationInput(dataset_sha256=holdout, run_id=run, artifacts_digest=sha(run), metrics=metrics)

    failure = "metric accuracy_score = 0.8 is below the minimum 0.9"
    failed = evaluator.record_evaluation(name, "1", evaluation("run-fail", 0.8)).evaluations[-1]
    assert (failed.result, failed.failures) == ("FAILED", [failure])

    def show() -> dict[str, str]:
        out = _cli("model", "show", name, "1", *conn)
        assert out.returncode == 0, out.stderr
        return dict(line.split("\t", 1) for line in out.stdout.splitlines())

    assert show()["gate"] == (
        "0 of the 1 passing evaluations that policy version 1 requires: not met (approval and deployment are "
        f"refused); the latest evaluation failed: {failure}"
    )
    before = auditor.get_model_version(name, "1")
    early = _cli("model", "approve", name, "1", *conn)
    assert early.returncode == 1
    assert early.stderr == (
        f'error: refused: model "{name}" version "1" has 0 of the 1 passing evaluations that policy version 1 '
        f"requires; the latest evaluation FAILED: {failure}\n"
    )
    assert auditor.get_model_version(name, "1") == before

    evaluator.record_evaluation(name, "1", evaluation("run-pass", 0.95))
    fields = show()
    assert fields["gate"] == "1 of the 1 passing evaluations that policy version 1 requires: met"
    assert fields["evaluation 2"].startswith("passed (policy version 1) by evaluator@Org2MSP ")
    assert holdout in fields["evaluation 2"] and fields["approval Org1MSP"] == "not decided yet"
    approved = _cli("model", "approve", name, "1", *conn)
    assert approved.returncode == 0, approved.stderr
    assert show()["approval Org1MSP"].startswith("approved by approver@Org1MSP ")

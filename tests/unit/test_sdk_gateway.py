"""The Gateway client against a fake Gateway service on a real gRPC channel."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import chaincode_pb2, proposal_pb2, transaction_pb2

from modelledger.sdk import (
    CommitError,
    CommitStatusError,
    EndorseError,
    EvaluateError,
    Identity,
    SubmitError,
    connect,
    load_msp,
)
from modelledger.sdk.gateway.errors import IdentityError
from modelledger.sdk.gateway.events import Checkpoint, FileCheckpointer, chaincode_events
from modelledger.sdk.gateway.identity import P256_ORDER, is_low_s, to_low_s
from modelledger.sdk.registry import Conflict, Invalid, NotAuthorized, NotFound, RegistryClient
from tests.unit.sdk_fakes import FakeServer, abort_with_details, invocation_args, make_identity, signer_for


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    server = FakeServer()
    yield server
    server.close()


@pytest.fixture
def ident() -> tuple[Identity, ec.EllipticCurvePrivateKey]:
    return make_identity()


def _verify(identity: Identity, message: bytes, signature: bytes) -> None:
    identity.x509.public_key().verify(signature, message, ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg,union-attr]
    assert is_low_s(signature)


# ---------------------------------------------------------------------- proposals and signatures
def test_proposal_bytes_parse_back_and_the_signature_verifies(fake: FakeServer, ident) -> None:
    identity, key = ident
    contract = connect(identity, signer_for(key), fake.channel).network("mlops").contract("registry")
    assert contract.evaluate("GetModelVersion", ["fraud", b"3"]) == b'{"ok":true}'

    request: gateway_pb2.EvaluateRequest = fake.gateway.requests["Evaluate"][0]
    assert request.channel_id == "mlops"
    signed = request.proposed_transaction
    _verify(identity, signed.proposal_bytes, signed.signature)

    proposal = proposal_pb2.Proposal.FromString(signed.proposal_bytes)
    header = common_pb2.Header.FromString(proposal.header)
    channel_header = common_pb2.ChannelHeader.FromString(header.channel_header)
    signature_header = common_pb2.SignatureHeader.FromString(header.signature_header)
    creator = identities_pb2.SerializedIdentity.FromString(signature_header.creator)
    assert (creator.mspid, creator.id_bytes) == ("Org1MSP", identity.certificate)
    assert channel_header.type == common_pb2.ENDORSER_TRANSACTION
    assert channel_header.channel_id == "mlops"
    assert len(signature_header.nonce) == 24
    expected_tx = hashlib.sha256(signature_header.nonce + signature_header.creator).hexdigest()
    assert channel_header.tx_id == request.transaction_id == expected_tx
    assert proposal_pb2.ChaincodeHeaderExtension.FromString(channel_header.extension).chaincode_id.name == "registry"
    assert invocation_args(signed) == [b"GetModelVersion", b"fraud", b"3"]
    spec = chaincode_pb2.ChaincodeInvocationSpec.FromString(
        proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload).input
    )
    assert spec.chaincode_spec.chaincode_id.name == "registry"


def test_submit_signs_the_transaction_and_the_commit_status_request(fake: FakeServer, ident) -> None:
    identity, key = ident
    contract = connect(identity, signer_for(key), fake.channel).network("mlops").contract("registry")
    result, status = contract.submit_with_status("RegisterDataset", ["{}"], endorsing_organizations=["Org1MSP"])
    assert result == b'{"ok":true}'
    assert (status.code_name, status.block_number, status.successful) == ("VALID", 7, True)

    endorse: gateway_pb2.EndorseRequest = fake.gateway.requests["Endorse"][0]
    assert list(endorse.endorsing_organizations) == ["Org1MSP"]
    submit: gateway_pb2.SubmitRequest = fake.gateway.requests["Submit"][0]
    assert submit.transaction_id == endorse.transaction_id == status.transaction_id
    _verify(identity, submit.prepared_transaction.payload, submit.prepared_transaction.signature)
    commit: gateway_pb2.SignedCommitStatusRequest = fake.gateway.requests["CommitStatus"][0]
    _verify(identity, commit.request, commit.signature)
    inner = gateway_pb2.CommitStatusRequest.FromString(commit.request)
    assert (inner.channel_id, inner.transaction_id, inner.identity) == (
        "mlops",
        status.transaction_id,
        identity.serialize(),
    )


def test_every_step_can_be_signed_offline(fake: FakeServer, ident) -> None:
    identity, key = ident
    offline = signer_for(key)
    contract = connect(identity, None, fake.channel).network("mlops").contract("registry")
    proposal = contract.new_proposal("RegisterDataset", ["{}"])
    with pytest.raises(ValueError, match="no signer"):
        proposal.endorse()
    proposal.set_signature(offline(proposal.digest()))
    transaction = proposal.endorse()
    assert transaction.result == b'{"ok":true}'
    transaction.set_signature(offline(transaction.digest()))
    commit = transaction.submit()
    commit.set_signature(offline(commit.digest()))
    assert commit.wait().successful
    _verify(
        identity,
        fake.gateway.requests["Submit"][0].prepared_transaction.payload,
        fake.gateway.requests["Submit"][0].prepared_transaction.signature,
    )


def test_low_s_normalisation() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    r, s = 12345, P256_ORDER - 7  # a high S
    high = encode_dss_signature(r, s)
    assert not is_low_s(high)
    assert decode_dss_signature(to_low_s(high)) == (r, 7)
    sign = signer_for(key)
    digests = [hashlib.sha256(bytes([i])).digest() for i in range(64)]
    assert all(is_low_s(sign(d)) for d in digests)  # ~half would be high-S without normalisation


def test_signature_does_not_verify_for_another_message(ident) -> None:
    identity, key = ident
    sig = signer_for(key)(hashlib.sha256(b"one").digest())
    with pytest.raises(InvalidSignature):
        identity.x509.public_key().verify(sig, b"two", ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg,union-attr]


def test_load_msp_reads_signcerts_and_keystore(tmp_path: Path, ident) -> None:
    identity, key = ident
    (tmp_path / "signcerts").mkdir()
    (tmp_path / "keystore").mkdir()
    (tmp_path / "signcerts" / "cert.pem").write_bytes(identity.certificate)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (tmp_path / "keystore" / "abc_sk").write_bytes(pem)
    loaded, signer = load_msp("Org1MSP", tmp_path)
    assert loaded == identity
    _verify(identity, b"m", signer(hashlib.sha256(b"m").digest()))
    (tmp_path / "keystore" / "other_sk").write_bytes(pem)
    with pytest.raises(IdentityError, match=r"expected exactly one file in .*keystore \(keystore\), found 2"):
        load_msp("Org1MSP", tmp_path)


def test_bad_identity_inputs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(IdentityError, match=r"not a PEM X\.509 certificate"):
        Identity("Org1MSP", b"nonsense")
    bad = tmp_path / "key.pem"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(IdentityError, match="is not a readable PEM private key") as info:
        from modelledger.sdk.gateway.identity import load_private_key_signer

        load_private_key_signer(bad)
    assert "AAAA" not in str(info.value)


# ---------------------------------------------------------------------- errors of each step
DETAILS = [("127.0.0.1:7351", "Org1MSP", 'chaincode response 500, NOT_FOUND: model "m" version "1"')]


def _failing(code: grpc.StatusCode, message: str):
    def handler(_request, context):
        abort_with_details(context, code, message, DETAILS)

    return handler


@pytest.mark.parametrize(
    ("method", "error_type", "call"),
    [
        ("Evaluate", EvaluateError, lambda c: c.evaluate("F")),
        ("Endorse", EndorseError, lambda c: c.submit("F")),
        ("Submit", SubmitError, lambda c: c.submit("F")),
        ("CommitStatus", CommitStatusError, lambda c: c.submit("F")),
    ],
)
def test_each_step_raises_its_error_with_tx_id_code_and_details(
    fake: FakeServer, ident, method, error_type, call
) -> None:
    identity, key = ident
    fake.gateway.handlers[method] = _failing(grpc.StatusCode.ABORTED, f"{method} failed")
    contract = connect(identity, signer_for(key), fake.channel).network("mlops").contract("registry")
    with pytest.raises(error_type) as info:
        call(contract)
    err = info.value
    assert err.code == grpc.StatusCode.ABORTED
    assert err.status_message == f"{method} failed"
    assert len(err.transaction_id) == 64
    if method == "CommitStatus":
        assert err.transaction_id == fake.gateway.requests["Submit"][0].transaction_id
    else:
        assert err.transaction_id == fake.gateway.requests[method][0].transaction_id
    assert [(d.address, d.msp_id, d.message) for d in err.details] == DETAILS
    assert err.transaction_id in str(err) and "127.0.0.1:7351 (Org1MSP)" in str(err)


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (transaction_pb2.ENDORSEMENT_POLICY_FAILURE, "ENDORSEMENT_POLICY_FAILURE"),
        (transaction_pb2.MVCC_READ_CONFLICT, "MVCC_READ_CONFLICT"),
    ],
)
def test_invalid_commit_raises_commit_error_with_the_validation_code(fake: FakeServer, ident, code, name) -> None:
    identity, key = ident
    fake.gateway.commit_code = code
    contract = connect(identity, signer_for(key), fake.channel).network("mlops").contract("registry")
    commit = contract.submit_async("F")
    assert commit.status().code_name == name  # the handle reports without raising
    with pytest.raises(CommitError) as info:
        contract.submit("F")
    assert (info.value.code, info.value.code_name, info.value.block_number) == (code, name, 7)
    assert len(info.value.transaction_id) == 64


def test_timeouts_are_per_step(fake: FakeServer, ident) -> None:
    import time

    from modelledger.sdk import CallOptions

    identity, key = ident
    fake.gateway.handlers["Evaluate"] = lambda _r, _c: time.sleep(0.5)
    gw = connect(identity, signer_for(key), fake.channel, options=CallOptions(evaluate=0.1))
    with pytest.raises(EvaluateError) as info:
        gw.network("mlops").contract("registry").evaluate("Slow")
    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED


# ---------------------------------------------------------------------- registry refusals
@pytest.mark.parametrize(
    ("message", "error_type"),
    [
        ("INVALID: name: must not be blank", Invalid),
        ('NOT_AUTHORIZED: role "auditor" of Org1MSP may not call RegisterModelVersion', NotAuthorized),
        ('NOT_FOUND: model "m" version "1"', NotFound),
        ('CONFLICT: model "m" version "1" is already registered with another digest', Conflict),
    ],
)
def test_chaincode_refusals_map_to_typed_exceptions(fake: FakeServer, ident, message, error_type) -> None:
    identity, key = ident
    detail = [("127.0.0.1:7351", "Org1MSP", f"chaincode response 500, {message}")]

    def refuse(_request, context):
        abort_with_details(
            context, grpc.StatusCode.ABORTED, "failed to endorse transaction, see attached details", detail
        )

    fake.gateway.handlers["Endorse"] = refuse
    fake.gateway.handlers["Evaluate"] = refuse
    client = RegistryClient(connect(identity, signer_for(key), fake.channel).network("mlops"))
    with pytest.raises(error_type) as info:
        client.approve("m", "1", "ok")
    assert info.value.message == message
    assert isinstance(info.value.__cause__, EndorseError)
    with pytest.raises(error_type):
        client.get_model_version("m", "1")


def test_registry_client_decodes_records(fake: FakeServer, ident) -> None:
    identity, key = ident
    fake.gateway.result = json.dumps(
        {
            "name": "m",
            "version": "1",
            "status": "APPROVED",
            "manifest": {"files": [{"path": "a", "sha256": "0" * 64, "size": 3}]},
            "metrics": [{"key": "auc", "value": 1}],
            "registrant": {"mspId": "Org1MSP", "role": "registrar", "certFingerprint": "ab"},
            "revocation": None,
            "someFutureField": 1,
        }
    ).encode()
    client = RegistryClient(connect(identity, signer_for(key), fake.channel).network("mlops"))
    mv = client.get_model_version("m", "1")
    assert (mv.name, mv.status, mv.manifest.files[0].size, mv.metrics[0].value, mv.registrant.role) == (
        "m",
        "APPROVED",
        3,
        1.0,
        "registrar",
    )
    assert isinstance(mv.metrics[0].value, float) and mv.revocation is None


def test_registry_client_reads_one_dataset_claim_or_every_claim(fake: FakeServer, ident) -> None:
    """``get_dataset`` keeps chaincode 1.2.0's shape (one claim); ``get_dataset_claims`` lists them all."""
    identity, key = ident
    client = RegistryClient(connect(identity, signer_for(key), fake.channel).network("mlops"))
    claim = {
        "name": "tx",
        "owner": "Org1MSP",
        "sha256": "a" * 64,
        "source": "s3://d",
        "registrant": {"mspId": "Org1MSP"},
    }
    fake.gateway.result = json.dumps(claim).encode()
    one = client.get_dataset("a" * 64)
    assert (one.owner, one.name, one.registrant.msp_id) == ("Org1MSP", "tx", "Org1MSP")
    fake.gateway.result = json.dumps([claim, {**claim, "owner": "Org2MSP", "name": "other"}]).encode()
    claims = client.get_dataset_claims("a" * 64)
    assert [(c.owner, c.name) for c in claims] == [("Org1MSP", "tx"), ("Org2MSP", "other")]
    called = [invocation_args(r.proposed_transaction)[0] for r in fake.gateway.requests["Evaluate"]]
    assert called == [b"GetDataset", b"GetDatasetClaims"]


# ---------------------------------------------------------------------- events and checkpoints
def _make_events(block: int, tx_ids: tuple[str, ...]) -> gateway_pb2.ChaincodeEventsResponse:
    from fabric_protos.peer import chaincode_event_pb2

    return gateway_pb2.ChaincodeEventsResponse(
        block_number=block,
        events=[
            chaincode_event_pb2.ChaincodeEvent(chaincode_id="registry", tx_id=t, event_name="E", payload=t.encode())
            for t in tx_ids
        ],
    )


def test_event_stream_resumes_from_a_file_checkpoint(fake: FakeServer, ident, tmp_path: Path) -> None:
    identity, key = ident
    fake.gateway.events = [_make_events(3, ("a", "b")), _make_events(4, ("c",)), _make_events(6, ("d", "e"))]
    network = connect(identity, signer_for(key), fake.channel).network("mlops")
    path = tmp_path / "cp.json"
    seen: list[str] = []
    cp = FileCheckpointer(path)
    for ev in chaincode_events(network, "registry", start_block=0, checkpoint=cp.checkpoint, timeout=5):
        seen.append(ev.transaction_id)
        cp.checkpoint_event(ev)
        if ev.transaction_id == "c":
            break  # the consumer "crashes" after handling c
    assert json.loads(path.read_text()) == {"blockNumber": 4, "transactionId": "c"}
    restarted = FileCheckpointer(path)
    assert restarted.checkpoint == Checkpoint(4, "c")
    for ev in chaincode_events(network, "registry", checkpoint=restarted.checkpoint, timeout=5):
        seen.append(ev.transaction_id)
        restarted.checkpoint_event(ev)
    assert seen == ["a", "b", "c", "d", "e"]
    last = fake.gateway.requests["ChaincodeEvents"][-1]
    inner = gateway_pb2.ChaincodeEventsRequest.FromString(last.request)
    assert (inner.start_position.specified.number, inner.after_transaction_id) == (4, "c")
    _verify(identity, last.request, last.signature)


def test_checkpointer_rejects_a_corrupt_file(tmp_path: Path) -> None:
    from modelledger.sdk import GatewayError

    path = tmp_path / "cp.json"
    path.write_text("{not json")
    with pytest.raises(GatewayError, match="is unreadable"):
        FileCheckpointer(path)
    path.write_text('{"transactionId": "x"}')
    with pytest.raises(GatewayError, match="is malformed"):
        FileCheckpointer(path)
    cp = FileCheckpointer(tmp_path / "new.json")
    assert cp.checkpoint is None
    cp.checkpoint_block(9)
    assert FileCheckpointer(tmp_path / "new.json").checkpoint == Checkpoint(10, "")


# ---------------------------------------------------------------------- Deliver, offline signing across processes
def test_blocks_streams_until_the_stop_block_and_fails_if_cut_short(fake: FakeServer, ident) -> None:
    from modelledger.sdk.gateway.events import EventsError, blocks
    from tests.unit.test_sdk_ledger import real_chain

    identity, key = ident
    network = connect(identity, signer_for(key), fake.channel).network("mlops")
    fake.deliver.blocks = real_chain()[:6]
    assert [b.header.number for b in blocks(network, 1, 4, timeout=5)] == [1, 2, 3, 4]
    envelope = fake.deliver.envelopes[0]
    _verify(identity, envelope.payload, envelope.signature)
    fake.deliver.final_status = common_pb2.FORBIDDEN
    with pytest.raises(EventsError, match="answered FORBIDDEN"):
        list(blocks(network, 0, 9, timeout=5))
    fake.deliver.final_status = common_pb2.SUCCESS
    fake.deliver.stall_after = 2
    with pytest.raises(EventsError) as info:
        list(blocks(network, 0, 5, timeout=0.5))
    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_steps_can_be_signed_in_another_process_from_their_bytes(fake: FakeServer, ident) -> None:
    identity, key = ident
    offline = signer_for(key)
    unsigned = connect(identity, None, fake.channel)
    proposal = unsigned.network("mlops").contract("registry").new_proposal("RegisterDataset", ["{}"])
    # The signing side sees only bytes and digests.
    rebuilt = unsigned.new_signed_proposal(proposal.bytes(), offline(proposal.digest()))
    transaction = rebuilt.endorse()
    transaction = unsigned.new_signed_transaction(transaction.bytes(), offline(transaction.digest()))
    commit = transaction.submit()
    commit = unsigned.new_signed_commit(commit.bytes(), offline(commit.digest()))
    assert commit.wait().successful and commit.transaction_id == proposal.transaction_id
    submitted = fake.gateway.requests["Submit"][0].prepared_transaction
    _verify(identity, submitted.payload, submitted.signature)


def test_chaincode_message_takes_the_earliest_class_prefix() -> None:
    from modelledger.sdk.gateway.errors import ErrorDetail, TransactionError
    from modelledger.sdk.registry.client import refusal

    err = TransactionError(
        "tx",
        grpc.StatusCode.ABORTED,
        "failed",
        (ErrorDetail("a", "m", 'chaincode response 500, NOT_FOUND: model "INVALID: x"'),),
    )
    typed = refusal(err)
    assert isinstance(typed, NotFound) and typed.message == 'NOT_FOUND: model "INVALID: x"'

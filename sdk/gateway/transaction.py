"""The explicit steps of a transaction: proposal → endorse → submit → commit status.

:class:`Proposal`, :class:`Transaction` and :class:`Commit` each hold the
signed (or still unsigned) protobuf of their step, so every step can run on
its own, and each can be signed offline: take :meth:`digest`, sign it
elsewhere and :meth:`set_signature`; or carry :meth:`bytes` to another
process and rebuild the step there with ``Gateway.new_signed_proposal``,
``new_signed_transaction`` or ``new_signed_commit``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc
from fabric_protos.peer import (
    chaincode_pb2,
    proposal_pb2,
    proposal_response_pb2,
    transaction_pb2,
)
from google.protobuf import timestamp_pb2
from google.protobuf.message import Message

from modelledger.sdk.gateway.errors import (
    CommitError,
    CommitStatusError,
    EndorseError,
    EvaluateError,
    SubmitError,
    TransactionError,
    validation_code_name,
)
from modelledger.sdk.gateway.identity import Hasher, Identity, Signer, sha256


@dataclass(frozen=True)
class CallOptions:
    """Timeouts in seconds of each step (None: no deadline)."""

    evaluate: float | None = 5.0
    endorse: float | None = 15.0
    # The peer's Gateway may retry orderers for up to 30 s; a shorter deadline would
    # report a SubmitError for a transaction that can still commit.
    submit: float | None = 35.0
    commit_status: float | None = 60.0


@dataclass
class Signing:
    """Who signs: the identity, its signer and its hash function."""

    identity: Identity
    signer: Signer | None
    hasher: Hasher = field(default=sha256)

    def sign(self, message: bytes) -> bytes:
        if self.signer is None:
            raise ValueError("no signer: sign the digest offline and pass the signature")
        return self.signer(self.hasher(message))


def new_transaction_id(creator: bytes, nonce: bytes) -> str:
    """Fabric's transaction id: hex SHA-256 of nonce followed by the creator."""
    return sha256(nonce + creator).hex()


def build_proposal(
    identity: Identity,
    channel: str,
    chaincode: str,
    function: str,
    args: Sequence[bytes],
    transient: dict[str, bytes] | None = None,
    nonce: bytes | None = None,
    timestamp: float | None = None,
) -> tuple[str, bytes]:
    """Builds an unsigned chaincode proposal; returns ``(transaction id, proposal bytes)``."""
    creator = identity.serialize()
    nonce = nonce if nonce is not None else os.urandom(24)
    tx_id = new_transaction_id(creator, nonce)
    ts = timestamp_pb2.Timestamp()
    if timestamp is None:
        ts.GetCurrentTime()
    else:
        ts.FromNanoseconds(int(timestamp * 1e9))
    extension = proposal_pb2.ChaincodeHeaderExtension(chaincode_id=chaincode_pb2.ChaincodeID(name=chaincode))
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.ENDORSER_TRANSACTION,
        timestamp=ts,
        channel_id=channel,
        tx_id=tx_id,
        epoch=0,
        extension=extension.SerializeToString(),
    )
    header = common_pb2.Header(
        channel_header=channel_header.SerializeToString(),
        signature_header=common_pb2.SignatureHeader(creator=creator, nonce=nonce).SerializeToString(),
    )
    spec = chaincode_pb2.ChaincodeInvocationSpec(
        chaincode_spec=chaincode_pb2.ChaincodeSpec(
            chaincode_id=chaincode_pb2.ChaincodeID(name=chaincode),
            input=chaincode_pb2.ChaincodeInput(args=[function.encode(), *args]),
        )
    )
    payload = proposal_pb2.ChaincodeProposalPayload(input=spec.SerializeToString(), TransientMap=transient or {})
    proposal = proposal_pb2.Proposal(header=header.SerializeToString(), payload=payload.SerializeToString())
    return tx_id, proposal.SerializeToString()


def _rpc(
    call: Callable[..., Any], request: Message, timeout: float | None, error_type: type[TransactionError], tx_id: str
) -> Any:
    try:
        return call(request, timeout=timeout)
    except grpc.RpcError as exc:
        raise error_type.from_rpc(tx_id, exc) from exc


class Proposal:
    """A transaction proposal, ready to be evaluated or endorsed."""

    def __init__(
        self,
        stub: gateway_pb2_grpc.GatewayStub,
        signing: Signing,
        channel: str,
        proposed: gateway_pb2.ProposedTransaction,
        options: CallOptions,
    ) -> None:
        self._stub = stub
        self._signing = signing
        self._channel = channel
        self._proposed = proposed
        self._options = options

    @property
    def transaction_id(self) -> str:
        """The transaction id."""
        return self._proposed.transaction_id

    @property
    def endorsing_organizations(self) -> list[str]:
        """MSP ids that will be asked to endorse (empty: the Gateway chooses)."""
        return list(self._proposed.endorsing_organizations)

    def bytes(self) -> bytes:
        """Serialised ``ProposedTransaction``, for offline signing or transport."""
        return self._proposed.SerializeToString()

    def digest(self) -> bytes:
        """What the signer signs."""
        return self._signing.hasher(self._proposed.proposal.proposal_bytes)

    def set_signature(self, signature: bytes) -> None:
        """Attaches a signature made offline over :meth:`digest`."""
        self._proposed.proposal.signature = signature

    def _sign(self) -> None:
        if not self._proposed.proposal.signature:
            self.set_signature(self._signing.sign(self._proposed.proposal.proposal_bytes))

    def evaluate(self) -> bytes:
        """Runs the proposal on one peer without ordering it; returns the result.

        Raises:
            EvaluateError: The Gateway or the chaincode refused it.
        """
        self._sign()
        request = gateway_pb2.EvaluateRequest(
            transaction_id=self.transaction_id,
            channel_id=self._channel,
            proposed_transaction=self._proposed.proposal,
            target_organizations=self._proposed.endorsing_organizations,
        )
        response = _rpc(self._stub.Evaluate, request, self._options.evaluate, EvaluateError, self.transaction_id)
        return response.result.payload

    def endorse(self) -> Transaction:
        """Collects endorsements as the chaincode's policy requires.

        Raises:
            EndorseError: Endorsement failed; ``details`` says which peer said what.
        """
        self._sign()
        request = gateway_pb2.EndorseRequest(
            transaction_id=self.transaction_id,
            channel_id=self._channel,
            proposed_transaction=self._proposed.proposal,
            endorsing_organizations=self._proposed.endorsing_organizations,
        )
        response = _rpc(self._stub.Endorse, request, self._options.endorse, EndorseError, self.transaction_id)
        prepared = gateway_pb2.PreparedTransaction(
            transaction_id=self.transaction_id, envelope=response.prepared_transaction
        )
        return Transaction(self._stub, self._signing, prepared, self._options)


def transaction_result(envelope: common_pb2.Envelope) -> tuple[str, bytes]:
    """The channel and the chaincode's return value inside an endorsed transaction envelope."""
    payload = common_pb2.Payload.FromString(envelope.payload)
    channel = common_pb2.ChannelHeader.FromString(payload.header.channel_header).channel_id
    tx = transaction_pb2.Transaction.FromString(payload.data)
    if not tx.actions:
        return channel, b""
    action_payload = transaction_pb2.ChaincodeActionPayload.FromString(tx.actions[0].payload)
    response_payload = proposal_response_pb2.ProposalResponsePayload.FromString(
        action_payload.action.proposal_response_payload
    )
    action = proposal_pb2.ChaincodeAction.FromString(response_payload.extension)
    return channel, action.response.payload


class Transaction:
    """An endorsed transaction, ready to be signed and submitted for ordering."""

    def __init__(
        self,
        stub: gateway_pb2_grpc.GatewayStub,
        signing: Signing,
        prepared: gateway_pb2.PreparedTransaction,
        options: CallOptions,
    ) -> None:
        self._stub = stub
        self._signing = signing
        self._prepared = prepared
        self._options = options
        self._channel, self._result = transaction_result(prepared.envelope)

    @property
    def transaction_id(self) -> str:
        """The transaction id."""
        return self._prepared.transaction_id

    @property
    def result(self) -> bytes:
        """The chaincode's return value as endorsed."""
        return self._result

    def bytes(self) -> bytes:
        """Serialised ``PreparedTransaction``."""
        return self._prepared.SerializeToString()

    def digest(self) -> bytes:
        """What the signer signs."""
        return self._signing.hasher(self._prepared.envelope.payload)

    def set_signature(self, signature: bytes) -> None:
        """Attaches a signature made offline over :meth:`digest`."""
        self._prepared.envelope.signature = signature

    def submit(self) -> Commit:
        """Sends the transaction to the orderer; returns a handle on its commit.

        Raises:
            SubmitError: The orderer did not accept it.
        """
        if not self._prepared.envelope.signature:
            self.set_signature(self._signing.sign(self._prepared.envelope.payload))
        request = gateway_pb2.SubmitRequest(
            transaction_id=self.transaction_id,
            channel_id=self._channel,
            prepared_transaction=self._prepared.envelope,
        )
        _rpc(self._stub.Submit, request, self._options.submit, SubmitError, self.transaction_id)
        status_request = gateway_pb2.CommitStatusRequest(
            channel_id=self._channel,
            transaction_id=self.transaction_id,
            identity=self._signing.identity.serialize(),
        )
        signed = gateway_pb2.SignedCommitStatusRequest(request=status_request.SerializeToString())
        return Commit(self._stub, self._signing, self.transaction_id, signed, self._options, self._result)


@dataclass(frozen=True)
class Status:
    """A transaction's commit status."""

    transaction_id: str
    code: int
    block_number: int

    @property
    def code_name(self) -> str:
        """The validation code's name, e.g. ``VALID``."""
        return validation_code_name(self.code)

    @property
    def successful(self) -> bool:
        """Committed as VALID."""
        return self.code == transaction_pb2.VALID


class Commit:
    """A submitted transaction, whose commit status can be waited for."""

    def __init__(
        self,
        stub: gateway_pb2_grpc.GatewayStub,
        signing: Signing,
        transaction_id: str,
        signed_request: gateway_pb2.SignedCommitStatusRequest,
        options: CallOptions,
        result: bytes = b"",
    ) -> None:
        self._stub = stub
        self._signing = signing
        self.transaction_id = transaction_id
        self._request = signed_request
        self._options = options
        self.result = result

    def bytes(self) -> bytes:
        """Serialised ``SignedCommitStatusRequest``."""
        return self._request.SerializeToString()

    def digest(self) -> bytes:
        """What the signer signs."""
        return self._signing.hasher(self._request.request)

    def set_signature(self, signature: bytes) -> None:
        """Attaches a signature made offline over :meth:`digest`."""
        self._request.signature = signature

    def status(self) -> Status:
        """Waits until the transaction is committed on the Gateway's peer and returns its status.

        Raises:
            CommitStatusError: The status could not be obtained (e.g. timeout).
        """
        if not self._request.signature:
            self.set_signature(self._signing.sign(self._request.request))
        response = _rpc(
            self._stub.CommitStatus, self._request, self._options.commit_status, CommitStatusError, self.transaction_id
        )
        return Status(self.transaction_id, int(response.result), int(response.block_number))

    def wait(self) -> Status:
        """Like :meth:`status`, but raises :class:`CommitError` unless the transaction is VALID."""
        status = self.status()
        if not status.successful:
            raise CommitError(self.transaction_id, status.code, status.block_number)
        return status

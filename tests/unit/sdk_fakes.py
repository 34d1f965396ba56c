"""A fake Gateway service on a real in-process gRPC server, and test identities.

The fake records every request and answers from per-test handlers, so tests
see the exact bytes the SDK sends over a real gRPC channel.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc
from fabric_protos.orderer import ab_pb2
from fabric_protos.peer import (
    chaincode_pb2,
    events_pb2,
    events_pb2_grpc,
    proposal_pb2,
    proposal_response_pb2,
    transaction_pb2,
)
from google.protobuf import any_pb2
from google.rpc import status_pb2

from modelledger.sdk.gateway.identity import Identity, private_key_signer


def make_identity(msp_id: str = "Org1MSP", cn: str = "registrar") -> tuple[Identity, ec.EllipticCurvePrivateKey]:
    """A fresh P-256 key and a self-signed certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return Identity(msp_id, cert.public_bytes(serialization.Encoding.PEM)), key


def abort_with_details(
    context: grpc.ServicerContext, code: grpc.StatusCode, message: str, details: list[tuple[str, str, str]]
) -> None:
    """Fails the call the way Fabric's Gateway does: a rich status with ErrorDetail entries."""
    status = status_pb2.Status(code=code.value[0], message=message)
    for address, msp_id, text in details:
        packed = any_pb2.Any()
        packed.Pack(gateway_pb2.ErrorDetail(address=address, msp_id=msp_id, message=text))
        status.details.append(packed)
    context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))
    context.abort(code, message)


def prepared_envelope(channel: str, tx_id: str, result: bytes) -> common_pb2.Envelope:
    """An endorsed (unsigned) transaction envelope carrying ``result`` as the chaincode's response."""
    action = proposal_pb2.ChaincodeAction(response=proposal_response_pb2.Response(status=200, payload=result))
    prp = proposal_response_pb2.ProposalResponsePayload(extension=action.SerializeToString())
    cap = transaction_pb2.ChaincodeActionPayload(
        action=transaction_pb2.ChaincodeEndorsedAction(proposal_response_payload=prp.SerializeToString())
    )
    tx = transaction_pb2.Transaction(actions=[transaction_pb2.TransactionAction(payload=cap.SerializeToString())])
    header = common_pb2.Header(
        channel_header=common_pb2.ChannelHeader(
            type=common_pb2.ENDORSER_TRANSACTION, channel_id=channel, tx_id=tx_id
        ).SerializeToString()
    )
    payload = common_pb2.Payload(header=header, data=tx.SerializeToString())
    return common_pb2.Envelope(payload=payload.SerializeToString())


def invocation_args(signed: proposal_pb2.SignedProposal) -> list[bytes]:
    """The chaincode arguments inside a signed proposal."""
    proposal = proposal_pb2.Proposal.FromString(signed.proposal_bytes)
    payload = proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload)
    spec = chaincode_pb2.ChaincodeInvocationSpec.FromString(payload.input)
    return list(spec.chaincode_spec.input.args)


Handler = Callable[[Any, grpc.ServicerContext], Any]


@dataclass
class FakeGateway(gateway_pb2_grpc.GatewayServicer):
    """Records requests; each method answers through an overridable handler."""

    requests: dict[str, list[Any]] = field(default_factory=dict)
    handlers: dict[str, Handler] = field(default_factory=dict)
    commit_code: int = transaction_pb2.VALID
    result: bytes = b'{"ok":true}'
    events: list[gateway_pb2.ChaincodeEventsResponse] = field(default_factory=list)

    def _record(self, name: str, request: Any, context: grpc.ServicerContext) -> Any:
        self.requests.setdefault(name, []).append(request)
        handler = self.handlers.get(name)
        return handler(request, context) if handler else None

    def Evaluate(self, request: gateway_pb2.EvaluateRequest, context: grpc.ServicerContext) -> Any:
        answer = self._record("Evaluate", request, context)
        return answer or gateway_pb2.EvaluateResponse(
            result=proposal_response_pb2.Response(status=200, payload=self.result)
        )

    def Endorse(self, request: gateway_pb2.EndorseRequest, context: grpc.ServicerContext) -> Any:
        answer = self._record("Endorse", request, context)
        return answer or gateway_pb2.EndorseResponse(
            prepared_transaction=prepared_envelope(request.channel_id, request.transaction_id, self.result)
        )

    def Submit(self, request: gateway_pb2.SubmitRequest, context: grpc.ServicerContext) -> Any:
        return self._record("Submit", request, context) or gateway_pb2.SubmitResponse()

    def CommitStatus(self, request: gateway_pb2.SignedCommitStatusRequest, context: grpc.ServicerContext) -> Any:
        answer = self._record("CommitStatus", request, context)
        return answer or gateway_pb2.CommitStatusResponse(result=self.commit_code, block_number=7)

    def ChaincodeEvents(
        self, request: gateway_pb2.SignedChaincodeEventsRequest, context: grpc.ServicerContext
    ) -> Iterator[gateway_pb2.ChaincodeEventsResponse]:
        self._record("ChaincodeEvents", request, context)
        inner = gateway_pb2.ChaincodeEventsRequest.FromString(request.request)
        start = inner.start_position.specified.number if inner.start_position.HasField("specified") else 0
        for response in self.events:
            if response.block_number < start:
                continue
            events = list(response.events)
            if response.block_number == start and inner.after_transaction_id:
                ids = [e.tx_id for e in events]
                if inner.after_transaction_id in ids:
                    events = events[ids.index(inner.after_transaction_id) + 1 :]
            if events:
                yield gateway_pb2.ChaincodeEventsResponse(block_number=response.block_number, events=events)


@dataclass
class FakeDeliver(events_pb2_grpc.DeliverServicer):
    """Streams ``blocks`` from the requested start, then ``final_status`` (or stalls if ``stall``)."""

    blocks: list[common_pb2.Block] = field(default_factory=list)
    final_status: int = common_pb2.SUCCESS
    stall_after: int | None = None
    envelopes: list[common_pb2.Envelope] = field(default_factory=list)

    def Deliver(self, request_iterator, context):
        envelope = next(request_iterator)
        self.envelopes.append(envelope)
        seek = ab_pb2.SeekInfo.FromString(common_pb2.Payload.FromString(envelope.payload).data)
        start, stop = seek.start.specified.number, seek.stop.specified.number
        for sent, block in enumerate(b for b in self.blocks if start <= b.header.number <= stop):
            if self.stall_after is not None and sent == self.stall_after:
                time.sleep(5)
                return
            yield events_pb2.DeliverResponse(block=block)
        yield events_pb2.DeliverResponse(status=self.final_status)


class FakeServer:
    """Runs a :class:`FakeGateway` (and a fake Deliver) on a free loopback port; ``channel`` connects to it."""

    def __init__(self) -> None:
        self.gateway = FakeGateway()
        self.deliver = FakeDeliver()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        gateway_pb2_grpc.add_GatewayServicer_to_server(self.gateway, self.server)
        events_pb2_grpc.add_DeliverServicer_to_server(self.deliver, self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")

    def close(self) -> None:
        self.channel.close()
        self.server.stop(None)


def signer_for(key: ec.EllipticCurvePrivateKey) -> Callable[[bytes], bytes]:
    """The SDK's signer for a test key."""
    return private_key_signer(key)

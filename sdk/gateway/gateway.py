"""Gateway → Network → Contract, the shape of Fabric's own Gateway clients.

``connect(identity, signer, channel)`` gives a :class:`Gateway` bound to one
peer's Gateway service; ``gateway.network("mlops")`` a :class:`Network`;
``network.contract("registry")`` a :class:`Contract`. The convenience
methods (:meth:`Contract.evaluate`, :meth:`Contract.submit`,
:meth:`Contract.submit_async`) sit on top of the explicit steps in
:mod:`modelledger.sdk.gateway.transaction`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc
from fabric_protos.peer import proposal_pb2

from modelledger.sdk.gateway.identity import Hasher, Identity, Signer, sha256
from modelledger.sdk.gateway.transaction import (
    CallOptions,
    Commit,
    Proposal,
    Signing,
    Status,
    Transaction,
    build_proposal,
)

Arg = str | bytes


def _as_bytes(args: Iterable[Arg]) -> list[bytes]:
    return [a if isinstance(a, bytes) else a.encode("utf-8") for a in args]


class Contract:
    """One chaincode (and optionally one named contract inside it) on a channel."""

    def __init__(self, network: Network, chaincode: str, contract: str = "") -> None:
        self.network = network
        self.chaincode = chaincode
        self.contract = contract

    def _function(self, name: str) -> str:
        return f"{self.contract}:{name}" if self.contract else name

    def new_proposal(
        self,
        function: str,
        args: Sequence[Arg] = (),
        transient: dict[str, bytes] | None = None,
        endorsing_organizations: Sequence[str] = (),
    ) -> Proposal:
        """Builds a proposal for ``function(args)`` (not yet signed or sent).

        Args:
            function: The transaction function.
            args: Its arguments (str are sent as UTF-8).
            transient: Private data, not recorded in the transaction.
            endorsing_organizations: MSP ids that must endorse (or, for evaluate,
                that may answer); empty lets the Gateway follow the chaincode's policy.
        """
        gw = self.network.gateway
        tx_id, proposal_bytes = build_proposal(
            gw.signing.identity, self.network.name, self.chaincode, self._function(function), _as_bytes(args), transient
        )
        proposed = gateway_pb2.ProposedTransaction(
            transaction_id=tx_id, endorsing_organizations=list(endorsing_organizations)
        )
        proposed.proposal.proposal_bytes = proposal_bytes
        return Proposal(gw.stub, gw.signing, self.network.name, proposed, gw.options)

    def evaluate(self, function: str, args: Sequence[Arg] = (), **kwargs: object) -> bytes:
        """Runs a read-only function on one peer and returns its result."""
        return self.new_proposal(function, args, **kwargs).evaluate()  # type: ignore[arg-type]

    def submit_async(self, function: str, args: Sequence[Arg] = (), **kwargs: object) -> Commit:
        """Endorses and submits; returns at once with a :class:`Commit` handle (its ``result`` is set)."""
        return self.new_proposal(function, args, **kwargs).endorse().submit()  # type: ignore[arg-type]

    def submit(self, function: str, args: Sequence[Arg] = (), **kwargs: object) -> bytes:
        """Endorses, submits and waits for a VALID commit; returns the chaincode's result.

        Raises:
            EndorseError, SubmitError, CommitStatusError: The step that failed.
            CommitError: The transaction was committed as invalid.
        """
        commit = self.submit_async(function, args, **kwargs)
        commit.wait()
        return commit.result

    def submit_with_status(self, function: str, args: Sequence[Arg] = (), **kwargs: object) -> tuple[bytes, Status]:
        """Like :meth:`submit`, and also returns the commit status (block number)."""
        commit = self.submit_async(function, args, **kwargs)
        return commit.result, commit.wait()


class Network:
    """A channel, seen through the Gateway."""

    def __init__(self, gateway: Gateway, name: str) -> None:
        self.gateway = gateway
        self.name = name

    def contract(self, chaincode: str, contract: str = "") -> Contract:
        """A chaincode on this channel."""
        return Contract(self, chaincode, contract)


class Gateway:
    """A connection to one peer's Gateway service, as one identity."""

    def __init__(
        self,
        identity: Identity,
        signer: Signer | None,
        channel: grpc.Channel,
        options: CallOptions | None = None,
        hasher: Hasher = sha256,
    ) -> None:
        self.signing = Signing(identity, signer, hasher)
        self.channel = channel
        self.stub = gateway_pb2_grpc.GatewayStub(channel)
        self.options = options or CallOptions()
        self.owns_channel = False

    @property
    def identity(self) -> Identity:
        """The client identity."""
        return self.signing.identity

    def network(self, name: str) -> Network:
        """The channel ``name``."""
        return Network(self, name)

    # Offline signing across processes: rebuild a step from its bytes and a signature.
    def new_signed_proposal(self, data: bytes, signature: bytes) -> Proposal:
        """A proposal from :meth:`Proposal.bytes` and a signature over its digest."""
        proposed = gateway_pb2.ProposedTransaction.FromString(data)
        proposed.proposal.signature = signature
        header = common_pb2.Header.FromString(proposal_pb2.Proposal.FromString(proposed.proposal.proposal_bytes).header)
        channel = common_pb2.ChannelHeader.FromString(header.channel_header).channel_id
        return Proposal(self.stub, self.signing, channel, proposed, self.options)

    def new_signed_transaction(self, data: bytes, signature: bytes) -> Transaction:
        """A transaction from :meth:`Transaction.bytes` and a signature over its digest."""
        prepared = gateway_pb2.PreparedTransaction.FromString(data)
        prepared.envelope.signature = signature
        return Transaction(self.stub, self.signing, prepared, self.options)

    def new_signed_commit(self, data: bytes, signature: bytes) -> Commit:
        """A commit handle from :meth:`Commit.bytes` and a signature over its digest."""
        request = gateway_pb2.SignedCommitStatusRequest.FromString(data)
        request.signature = signature
        tx_id = gateway_pb2.CommitStatusRequest.FromString(request.request).transaction_id
        return Commit(self.stub, self.signing, tx_id, request, self.options)

    def close(self) -> None:
        """Closes the gRPC channel if this Gateway opened it (a channel passed in stays the caller's)."""
        if self.owns_channel:
            self.channel.close()

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def connect(
    identity: Identity,
    signer: Signer | None,
    channel: grpc.Channel,
    options: CallOptions | None = None,
    hasher: Hasher = sha256,
) -> Gateway:
    """Connects ``identity`` to the Gateway reachable through ``channel``.

    Args:
        identity: The client's MSP id and certificate.
        signer: Signs digests; None if every step is signed offline.
        channel: A gRPC channel to a peer (TLS: see :mod:`modelledger.sdk.profile`).
        options: Per-step timeouts.
        hasher: The digest function the signer expects (SHA-256).
    """
    return Gateway(identity, signer, channel, options, hasher)

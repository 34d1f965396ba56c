"""Chaincode events (from the Gateway) and blocks (from the Deliver service).

Chaincode events resume from a checkpoint: the block number and the id of the
last transaction whose events were handled. :class:`FileCheckpointer` keeps it
in a small JSON file replaced atomically and durably, so a consumer that
crashes and restarts misses no event; an event it handled but had not yet
checkpointed when it died is delivered again (at-least-once), so handlers
should be idempotent.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2
from fabric_protos.orderer import ab_pb2
from fabric_protos.peer import events_pb2_grpc
from google.protobuf import timestamp_pb2

from modelledger.sdk.gateway.errors import GatewayError, TransactionError
from modelledger.sdk.gateway.gateway import Network


class EventsError(TransactionError):
    """An event or block stream failed."""

    step = "events"


@dataclass(frozen=True)
class ChaincodeEvent:
    """One chaincode event, with where it sits on the ledger."""

    block_number: int
    transaction_id: str
    chaincode: str
    name: str
    payload: bytes


@dataclass(frozen=True)
class Checkpoint:
    """Where to resume: the next block to read, and the last handled transaction in it."""

    block_number: int
    transaction_id: str = ""


class FileCheckpointer:
    """A checkpoint in a JSON file (mode 0600), replaced atomically and durably on every update."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._checkpoint = self._load()

    def _load(self) -> Checkpoint | None:
        try:
            doc = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise GatewayError(f"checkpoint file {self.path} is unreadable: {exc}") from exc
        try:
            return Checkpoint(int(doc["blockNumber"]), str(doc.get("transactionId", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise GatewayError(f"checkpoint file {self.path} is malformed: {exc}") from exc

    @property
    def checkpoint(self) -> Checkpoint | None:
        """The stored checkpoint, or None before the first event."""
        return self._checkpoint

    def _save(self, cp: Checkpoint) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        # Owner-only (0600), like every file of a state folder; the mode goes with the rename. A leftover
        # temporary file (a crash mid-write) is removed first: O_CREAT would keep its mode.
        tmp.unlink(missing_ok=True)
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            json.dump({"blockNumber": cp.block_number, "transactionId": cp.transaction_id}, f)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # make the rename itself durable
        finally:
            os.close(dir_fd)
        self._checkpoint = cp

    def checkpoint_event(self, event: ChaincodeEvent) -> None:
        """Records that ``event`` (and every event before it) has been handled."""
        self._save(Checkpoint(event.block_number, event.transaction_id))

    def checkpoint_block(self, block_number: int) -> None:
        """Records that every event of ``block_number`` has been handled."""
        self._save(Checkpoint(block_number + 1, ""))


def _seek_position(start_block: int | None) -> ab_pb2.SeekPosition:
    if start_block is None:
        return ab_pb2.SeekPosition(next_commit=ab_pb2.SeekNextCommit())
    return ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=start_block))


def chaincode_events(
    network: Network,
    chaincode: str,
    start_block: int | None = None,
    checkpoint: Checkpoint | None = None,
    timeout: float | None = None,
) -> Iterator[ChaincodeEvent]:
    """Streams the chaincode's events in ledger order.

    Args:
        network: The channel.
        chaincode: The chaincode name.
        start_block: First block to read (default: the next block committed).
        checkpoint: Resume after this checkpoint; wins over ``start_block``.
        timeout: Seconds after which the stream ends (None: runs until cancelled).

    Yields:
        Every event after the checkpoint, once.

    Raises:
        EventsError: The stream failed.
    """
    gw = network.gateway
    after_tx = ""
    if checkpoint is not None:
        start_block, after_tx = checkpoint.block_number, checkpoint.transaction_id
    request = gateway_pb2.ChaincodeEventsRequest(
        channel_id=network.name,
        chaincode_id=chaincode,
        identity=gw.identity.serialize(),
        start_position=_seek_position(start_block),
        after_transaction_id=after_tx,
    )
    body = request.SerializeToString()
    signed = gateway_pb2.SignedChaincodeEventsRequest(request=body, signature=gw.signing.sign(body))
    stream = gw.stub.ChaincodeEvents(signed, timeout=timeout)
    try:
        for response in stream:
            for ev in response.events:
                yield ChaincodeEvent(response.block_number, ev.tx_id, ev.chaincode_id, ev.event_name, bytes(ev.payload))
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.CANCELLED:
            return
        if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED and timeout is not None:
            return
        raise EventsError.from_rpc("", exc) from exc
    finally:
        stream.cancel()


def _deliver_envelope(network: Network, start: int, stop: int | None) -> common_pb2.Envelope:
    gw = network.gateway
    creator = gw.identity.serialize()
    ts = timestamp_pb2.Timestamp()
    ts.GetCurrentTime()
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.DELIVER_SEEK_INFO, channel_id=network.name, timestamp=ts, epoch=0
    )
    # Without a stop block, ask for every block up to the largest number: new blocks stream as they commit.
    seek = ab_pb2.SeekInfo(
        start=_seek_position(start),
        stop=_seek_position(stop if stop is not None else 2**64 - 1),
        behavior=ab_pb2.SeekInfo.BLOCK_UNTIL_READY,
    )
    payload = common_pb2.Payload(
        header=common_pb2.Header(
            channel_header=channel_header.SerializeToString(),
            signature_header=common_pb2.SignatureHeader(creator=creator, nonce=os.urandom(24)).SerializeToString(),
        ),
        data=seek.SerializeToString(),
    )
    body = payload.SerializeToString()
    return common_pb2.Envelope(payload=body, signature=gw.signing.sign(body))


def blocks(
    network: Network, start: int = 0, stop: int | None = None, timeout: float | None = None
) -> Iterator[common_pb2.Block]:
    """Streams full blocks from the Gateway's peer through the Deliver service.

    Args:
        network: The channel.
        start: First block number.
        stop: Last block number (inclusive); None streams new blocks as they commit.
        timeout: Seconds after which the stream ends.

    Raises:
        EventsError: The peer refused the request or the stream failed.
    """
    stub = events_pb2_grpc.DeliverStub(network.gateway.channel)
    envelope = _deliver_envelope(network, start, stop)
    stream = stub.Deliver(iter([envelope]), timeout=timeout)
    try:
        for response in stream:
            kind = response.WhichOneof("Type")
            if kind == "block":
                yield response.block
                if stop is not None and response.block.header.number >= stop:
                    return
            elif kind == "status":
                if response.status == common_pb2.SUCCESS:
                    return
                status = common_pb2.Status.Name(response.status)
                raise EventsError("", grpc.StatusCode.UNKNOWN, f"the peer's Deliver service answered {status}")
    except grpc.RpcError as exc:
        # Without a stop block the caller asked for "new blocks until the timeout": ending is normal.
        # With one, ending early would hide blocks (e.g. from a chain check), so it is an error.
        if stop is None and (
            exc.code() == grpc.StatusCode.CANCELLED
            or (exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED and timeout is not None)
        ):
            return
        raise EventsError.from_rpc("", exc) from exc
    finally:
        stream.cancel()

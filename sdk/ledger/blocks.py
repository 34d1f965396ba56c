"""Blocks as Fabric stores and hashes them: header hashes, block files, decoded transactions.

A Fabric block header is hashed as the ASN.1 DER encoding of
``SEQUENCE { INTEGER number, OCTET STRING previous_hash, OCTET STRING data_hash }``
with SHA-256, and ``data_hash`` is the SHA-256 of the block's data entries
concatenated. Each header names the previous header's hash, from the genesis
block on: :mod:`modelledger.sdk.ledger.chain` verifies that chain and the
orderers' signatures.

A peer's block files hold each block as a varint length, then the block in
Fabric's own layout (:func:`read_block_files`, :func:`serialize_block`);
:func:`decode_block` reads a block's transactions (id, type, time, creator,
endorsers, validation code).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from fabric_protos.common import common_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import proposal_pb2, transaction_pb2

from modelledger.sdk.gateway.errors import GatewayError, validation_code_name


class LedgerError(GatewayError):
    """Blocks could not be read or decoded."""


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(body)) + body


def _der_integer(n: int) -> bytes:
    body = n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big", signed=False)
    # Minimal two's complement: strip redundant leading zero bytes.
    while len(body) > 1 and body[0] == 0 and body[1] < 0x80:
        body = body[1:]
    return _der(0x02, body)


def header_bytes(header: common_pb2.BlockHeader) -> bytes:
    """A block header's ASN.1 DER encoding (Fabric's ``protoutil.BlockHeaderBytes``)."""
    return _der(
        0x30,
        _der_integer(header.number) + _der(0x04, header.previous_hash) + _der(0x04, header.data_hash),
    )


def header_hash(header: common_pb2.BlockHeader) -> bytes:
    """SHA-256 of a block header's ASN.1 DER encoding, as Fabric computes it."""
    return hashlib.sha256(header_bytes(header)).digest()


def data_hash(block: common_pb2.Block) -> bytes:
    """SHA-256 over the block's data entries, concatenated."""
    h = hashlib.sha256()
    for entry in block.data.data:
        h.update(entry)
    return h.digest()


def read_block(path: str | Path) -> common_pb2.Block:
    """A block stored as one marshalled ``common.Block`` (as configtxgen writes a channel's genesis block).

    Raises:
        LedgerError: The file cannot be read or is not a block.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise LedgerError(f"cannot read the block file {path}: {exc.strerror}") from exc
    try:
        return common_pb2.Block.FromString(data)
    except Exception as exc:  # protobuf's DecodeError
        raise LedgerError(f"{path} is not a block: {exc}") from exc


def read_block_files(ledger_dir: str | Path) -> Iterator[common_pb2.Block]:
    """Reads blocks from a peer's block files (``blockfile_000000``, ...) or a copy of them.

    Fabric stores each block as a varint length, then the block in its own
    layout: header (number, data hash, previous hash), the data entries and
    the metadata entries, each length-prefixed.

    Raises:
        LedgerError: At once, when the folder holds no block file; while reading, when a block is cut
            short (a file copied while the peer wrote it) or malformed, naming the file and offset, after
            yielding every complete block before it (:func:`verify_chain` reports it as the chain's end).
    """
    root = Path(ledger_dir)
    files = sorted(root.glob("blockfile_*"))
    if not files:
        raise LedgerError(f"no blockfile_* in {root}")
    return _blocks_in(files)


def _blocks_in(files: list[Path]) -> Iterator[common_pb2.Block]:
    for path in files:
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            start = pos
            length, pos = _read_varint(data, pos, path)
            if length == 0:  # preallocated, unused space
                break
            if pos + length > len(data):
                raise LedgerError(
                    f"{path}: truncated block: the block at byte {start} is {length} bytes long, but the file "
                    f"ends at byte {len(data)}"
                )
            yield _deserialize_block(data[pos : pos + length], path, pos)
            pos += length


def serialize_block(block: common_pb2.Block) -> bytes:
    """A block in Fabric's block-file layout (without the leading length)."""
    out = bytearray()
    out += _varint(block.header.number) + _raw(block.header.data_hash) + _raw(block.header.previous_hash)
    out += _varint(len(block.data.data)) + b"".join(_raw(d) for d in block.data.data)
    out += _varint(len(block.metadata.metadata)) + b"".join(_raw(m) for m in block.metadata.metadata)
    return bytes(out)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(data: bytes, pos: int, path: Path) -> tuple[int, int]:
    shift = value = 0
    while True:
        if pos >= len(data):
            raise LedgerError(f"{path}: truncated length at byte {pos}: the file ends there")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise LedgerError(f"{path}: bad length at byte {pos}")


def _raw(b: bytes) -> bytes:
    return _varint(len(b)) + b


def _deserialize_block(data: bytes, path: Path, offset: int) -> common_pb2.Block:
    block = common_pb2.Block()
    pos = 0

    def take_bytes() -> bytes:
        nonlocal pos
        n, pos = _read_varint(data, pos, path)
        if pos + n > len(data):
            raise LedgerError(f"{path}: malformed block at byte {offset}")
        chunk = data[pos : pos + n]
        pos += n
        return chunk

    number, pos = _read_varint(data, pos, path)
    block.header.number = number
    block.header.data_hash = take_bytes()
    block.header.previous_hash = take_bytes()
    count, pos = _read_varint(data, pos, path)
    for _ in range(count):
        block.data.data.append(take_bytes())
    count, pos = _read_varint(data, pos, path)
    for _ in range(count):
        block.metadata.metadata.append(take_bytes())
    return block


@dataclass(frozen=True)
class Creator:
    """An identity as it appears in a transaction."""

    msp_id: str
    subject: str

    @classmethod
    def parse(cls, serialized: bytes) -> Creator:
        ident = identities_pb2.SerializedIdentity.FromString(serialized)
        try:
            subject = x509.load_pem_x509_certificate(ident.id_bytes).subject.rfc4514_string()
        except ValueError:
            subject = ""
        return cls(ident.mspid, subject)


@dataclass(frozen=True)
class DecodedTransaction:
    """One transaction of a block."""

    index: int
    tx_id: str
    type: str
    timestamp: str
    creator: Creator
    validation_code: str
    chaincode: str = ""
    endorsers: tuple[Creator, ...] = field(default_factory=tuple)


def decode_block(block: common_pb2.Block) -> list[DecodedTransaction]:
    """Decodes every transaction of a block: id, type, time, creator, endorsers, validation code."""
    flags = block.metadata.metadata[common_pb2.TRANSACTIONS_FILTER] if len(block.metadata.metadata) > 2 else b""
    out = []
    for i, raw in enumerate(block.data.data):
        env = common_pb2.Envelope.FromString(raw)
        payload = common_pb2.Payload.FromString(env.payload)
        ch = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
        sh = common_pb2.SignatureHeader.FromString(payload.header.signature_header)
        code = validation_code_name(flags[i]) if i < len(flags) else "NOT_VALIDATED"
        chaincode, endorsers = "", ()
        if ch.type == common_pb2.ENDORSER_TRANSACTION:
            tx = transaction_pb2.Transaction.FromString(payload.data)
            if tx.actions:
                cap = transaction_pb2.ChaincodeActionPayload.FromString(tx.actions[0].payload)
                endorsers = tuple(Creator.parse(e.endorser) for e in cap.action.endorsements)
                ext = proposal_pb2.ChaincodeHeaderExtension.FromString(ch.extension)
                chaincode = ext.chaincode_id.name
        out.append(
            DecodedTransaction(
                index=i,
                tx_id=ch.tx_id,
                type=common_pb2.HeaderType.Name(ch.type),
                timestamp=ch.timestamp.ToJsonString() if ch.HasField("timestamp") else "",
                creator=Creator.parse(sh.creator) if sh.creator else Creator("", ""),
                validation_code=code,
                chaincode=chaincode,
                endorsers=endorsers,
            )
        )
    return out

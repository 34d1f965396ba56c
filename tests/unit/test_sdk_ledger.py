"""The ledger reader: header hashes, hash-chain verification, block files, decoding."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from fabric_protos.common import common_pb2

from modelledger.sdk.ledger.blocks import (
    LedgerError,
    _varint,
    data_hash,
    decode_block,
    header_hash,
    read_block_files,
    serialize_block,
    verify_chain,
)
from tests.unit.sdk_fakes import make_identity, prepared_envelope


def make_chain(n: int) -> list[common_pb2.Block]:
    """A valid chain of ``n`` blocks with one transaction each."""
    chain: list[common_pb2.Block] = []
    previous = b""
    for i in range(n):
        block = common_pb2.Block()
        block.data.data.append(prepared_envelope("mlops", f"tx{i}", f"result {i}".encode()).SerializeToString())
        block.header.number = i
        block.header.previous_hash = previous
        block.header.data_hash = data_hash(block)
        block.metadata.metadata.extend([b"", b"", bytes([0]), b""])
        previous = header_hash(block.header)
        chain.append(block)
    return chain


def test_header_hash_is_sha256_of_the_der_sequence() -> None:
    header = common_pb2.BlockHeader(number=128, previous_hash=b"\x01" * 32, data_hash=b"\x02" * 32)
    # SEQUENCE { INTEGER 128 (two bytes: 00 80), OCTET STRING 32, OCTET STRING 32 }
    der = bytes([0x30, 4 + 34 + 34, 0x02, 0x02, 0x00, 0x80, 0x04, 32]) + b"\x01" * 32 + bytes([0x04, 32]) + b"\x02" * 32
    assert header_hash(header) == hashlib.sha256(der).digest()
    genesis = common_pb2.BlockHeader(number=0, data_hash=b"\x03" * 32)
    der0 = bytes([0x30, 3 + 2 + 34, 0x02, 0x01, 0x00, 0x04, 0x00, 0x04, 32]) + b"\x03" * 32
    assert header_hash(genesis) == hashlib.sha256(der0).digest()


def test_a_valid_chain_verifies() -> None:
    report = verify_chain(make_chain(5))
    assert report.ok and report.blocks == 5 and report.broken is None


@pytest.mark.parametrize("victim", [0, 2, 4])
def test_altered_data_names_its_block(victim: int) -> None:
    chain = make_chain(5)
    chain[victim].data.data[0] = chain[victim].data.data[0][:-1] + b"X"
    report = verify_chain(chain)
    assert not report.ok
    assert report.broken is not None and report.broken.block_number == victim
    assert "data does not match" in report.broken.reason
    assert report.blocks == victim


def test_a_rewritten_header_breaks_the_next_link() -> None:
    chain = make_chain(4)
    # Rewrite block 1 consistently (new data, new data hash): block 2 no longer links to it.
    chain[1].data.data[0] = b"forged"
    chain[1].header.data_hash = data_hash(chain[1])
    report = verify_chain(chain)
    assert report.broken is not None and report.broken.block_number == 2
    assert "does not match block 1's header hash" in report.broken.reason


def test_missing_block_is_named() -> None:
    chain = make_chain(4)
    del chain[2]
    report = verify_chain(chain)
    assert report.broken is not None and report.broken.reason == "expected block 2, found block 3"


def test_no_blocks_is_not_ok() -> None:
    assert not verify_chain([]).ok


def test_block_files_are_read_in_order(tmp_path: Path) -> None:
    chain = make_chain(6)
    raw = [serialize_block(b) for b in chain]
    (tmp_path / "blockfile_000000").write_bytes(b"".join(_varint(len(r)) + r for r in raw[:4]))
    (tmp_path / "blockfile_000001").write_bytes(b"".join(_varint(len(r)) + r for r in raw[4:]) + b"\0" * 16)
    read = list(read_block_files(tmp_path))
    assert [b.header.number for b in read] == list(range(6))
    assert read == chain
    assert verify_chain(read).ok
    (tmp_path / "blockfile_000001").write_bytes(_varint(500) + b"short")
    with pytest.raises(LedgerError, match="truncated block"):
        list(read_block_files(tmp_path))
    with pytest.raises(LedgerError, match="no blockfile_"):
        list(read_block_files(tmp_path / "nowhere"))


def test_decode_block_names_creator_chaincode_and_validation_code() -> None:
    identity, _ = make_identity("Org2MSP", "auditor")
    block = make_chain(1)[0]
    env = common_pb2.Envelope.FromString(block.data.data[0])
    payload = common_pb2.Payload.FromString(env.payload)
    sh = common_pb2.SignatureHeader(creator=identity.serialize(), nonce=b"n")
    payload.header.signature_header = sh.SerializeToString()
    env.payload = payload.SerializeToString()
    block.data.data[0] = env.SerializeToString()
    block.metadata.metadata[2] = bytes([10])  # ENDORSEMENT_POLICY_FAILURE
    (tx,) = decode_block(block)
    assert (tx.tx_id, tx.type, tx.validation_code) == ("tx0", "ENDORSER_TRANSACTION", "ENDORSEMENT_POLICY_FAILURE")
    assert (tx.creator.msp_id, tx.creator.subject) == ("Org2MSP", "CN=auditor")

"""The ledger reader: header hashes, the hash chain, orderer signatures, block files, decoding, peer comparison.

The chains here are real: ``tests/unit/data/ledger/org{1,2}/blockfile_000000``
are the block files of Org1's and Org2's peers of a network brought up by
``tests/unit/data/ledger/capture_blocks.py`` (genesis, a channel configuration
update, the chaincode's lifecycle, a valid and an invalid transaction).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from fabric_protos.common import common_pb2
from fabric_protos.msp import identities_pb2

from modelledger.sdk.ledger.audit import (
    GENESIS,
    HEIGHT,
    SAME_BLOCKS,
    VALIDATION_FLAGS,
    GenesisAnchor,
    LivePeer,
    audit,
)
from modelledger.sdk.ledger.blocks import (
    LedgerError,
    _varint,
    data_hash,
    decode_block,
    header_bytes,
    header_hash,
    read_block_files,
    serialize_block,
)
from modelledger.sdk.ledger.chain import HASH_CHAIN, ORDERER_SIGNATURES, verify_chain
from modelledger.sdk.ledger.config import ChannelConfig, config_envelope
from tests.unit.pki_fakes import make_cert
from tests.unit.sdk_fakes import prepared_envelope

DATA = Path(__file__).parent / "data" / "ledger"
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def real_chain(org: str = "org1") -> list[common_pb2.Block]:
    return list(read_block_files(DATA / org))


def first_endorser_block(chain: list[common_pb2.Block]) -> common_pb2.Block:
    return next(b for b in chain if b.header.number > 0 and config_envelope(b) is None)


def signature_metadata(block: common_pb2.Block) -> common_pb2.Metadata:
    return common_pb2.Metadata.FromString(block.metadata.metadata[common_pb2.SIGNATURES])


def set_signature_metadata(block: common_pb2.Block, md: common_pb2.Metadata) -> None:
    block.metadata.metadata[common_pb2.SIGNATURES] = md.SerializeToString()


def test_header_hash_is_sha256_of_the_der_sequence() -> None:
    header = common_pb2.BlockHeader(number=128, previous_hash=b"\x01" * 32, data_hash=b"\x02" * 32)
    # SEQUENCE { INTEGER 128 (two bytes: 00 80), OCTET STRING 32, OCTET STRING 32 }
    der = bytes([0x30, 4 + 34 + 34, 0x02, 0x02, 0x00, 0x80, 0x04, 32]) + b"\x01" * 32 + bytes([0x04, 32]) + b"\x02" * 32
    assert header_bytes(header) == der and header_hash(header) == hashlib.sha256(der).digest()
    genesis = common_pb2.BlockHeader(number=0, data_hash=b"\x03" * 32)
    der0 = bytes([0x30, 3 + 2 + 34, 0x02, 0x01, 0x00, 0x04, 0x00, 0x04, 32]) + b"\x03" * 32
    assert header_hash(genesis) == hashlib.sha256(der0).digest()


def test_a_real_chain_verifies_its_links_and_every_orderer_signature() -> None:
    chain = real_chain()
    report = verify_chain(chain)
    assert report.ok and report.broken is None and report.blocks == len(chain) >= 6
    assert report.signed == len(chain) - 1  # every block but the genesis block
    configs = [b.header.number for b in chain if config_envelope(b) is not None]
    assert report.config_blocks == configs and len(configs) == 2  # genesis, then one configuration update
    assert [c.name for c in report.checks()] == [HASH_CHAIN, ORDERER_SIGNATURES]
    assert all(c.ok for c in report.checks())
    # The update's configuration is the one in force after it (the orderer organisation's MSP, for one).
    later = ChannelConfig.from_block(chain[configs[1]])
    assert later.block_number == configs[1] and later.orderer_orgs == ("OrdererMSP",)
    assert set(later.application_orgs) == {"Org1MSP", "Org2MSP"}


@pytest.mark.parametrize("where", ["signature", "signature header", "signed value"])
def test_a_flipped_byte_in_the_signature_metadata_names_the_block_and_check(where: str) -> None:
    chain = real_chain()
    victim = first_endorser_block(chain)
    md = signature_metadata(victim)
    if where == "signed value":
        md.value = md.value[:-1] + bytes([md.value[-1] ^ 0x01])
    else:
        field = "signature" if where == "signature" else "signature_header"
        raw = bytearray(getattr(md.signatures[0], field))
        raw[len(raw) // 2] ^= 0x01
        setattr(md.signatures[0], field, bytes(raw))
    set_signature_metadata(victim, md)
    report = verify_chain(chain)
    assert report.broken is not None and report.broken.block_number == victim.header.number
    assert report.broken.check == ORDERER_SIGNATURES
    assert report.blocks == victim.header.number + 1  # its hash links still hold: the header is unchanged
    failed = [c for c in report.checks() if c.ok is False]
    assert [c.name for c in failed] == [ORDERER_SIGNATURES]
    assert failed[0].detail.startswith(f"block {victim.header.number}: ")


def test_a_high_s_signature_is_refused_although_it_is_mathematically_valid() -> None:
    chain = real_chain()
    victim = first_endorser_block(chain)
    md = signature_metadata(victim)
    r, s = decode_dss_signature(md.signatures[0].signature)
    md.signatures[0].signature = encode_dss_signature(r, P256_ORDER - s)
    set_signature_metadata(victim, md)
    report = verify_chain(chain)
    assert report.broken is not None and report.broken.block_number == victim.header.number
    assert "not in low-S form" in report.broken.reason


def test_a_block_re_signed_by_an_identity_outside_the_orderer_organisation_fails() -> None:
    chain = real_chain()
    victim = first_endorser_block(chain)
    # A well-formed, valid signature over the right bytes, by a self-made "OrdererMSP" identity.
    key, cert = make_cert("o", ou="orderer", days=1)
    creator = identities_pb2.SerializedIdentity(
        mspid="OrdererMSP", id_bytes=cert.public_bytes(serialization.Encoding.PEM)
    ).SerializeToString()
    md = signature_metadata(victim)
    sh = common_pb2.SignatureHeader(creator=creator, nonce=b"n" * 24).SerializeToString()
    sig = key.sign(md.value + sh + header_bytes(victim.header), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(sig)
    sig = encode_dss_signature(r, min(s, P256_ORDER - s))
    del md.signatures[:]
    md.signatures.add(signature_header=sh, signature=sig)
    set_signature_metadata(victim, md)
    report = verify_chain(chain)
    assert report.broken is not None and report.broken.check == ORDERER_SIGNATURES
    assert "/Channel/Orderer/BlockValidation" in report.broken.reason
    assert "does not chain to a root certificate of OrdererMSP" in report.broken.reason


def test_unsigned_metadata_changes_go_unnoticed_by_the_chain_alone() -> None:
    # What no one signs: a validation flag flipped in a copy still verifies on its own.
    chain = real_chain()
    victim = first_endorser_block(chain)
    flags = bytearray(victim.metadata.metadata[common_pb2.TRANSACTIONS_FILTER])
    flags[0] = 10 if flags[0] == 0 else 0
    victim.metadata.metadata[common_pb2.TRANSACTIONS_FILTER] = bytes(flags)
    assert verify_chain(chain).ok


@pytest.mark.parametrize("victim", [0, 2, 4])
def test_altered_data_names_its_block(victim: int) -> None:
    chain = real_chain()
    chain[victim].data.data[0] = chain[victim].data.data[0][:-1] + b"X"
    report = verify_chain(chain)
    assert not report.ok
    assert report.broken is not None and report.broken.block_number == victim
    assert report.broken.check == HASH_CHAIN and "data does not match" in report.broken.reason
    assert report.blocks == victim


def test_a_consistently_rewritten_block_fails_its_own_orderer_signature() -> None:
    chain = real_chain()
    victim = first_endorser_block(chain)
    n = victim.header.number
    # New data and a matching data hash: the links to earlier blocks still hold, the orderer's signature does not.
    victim.data.data[0] = b"forged"
    victim.header.data_hash = data_hash(victim)
    report = verify_chain(chain)
    assert report.broken is not None and report.broken.block_number == n
    assert report.broken.check == ORDERER_SIGNATURES and "the signature does not verify" in report.broken.reason


def test_the_copies_of_two_peers_differ_only_in_the_orderer_who_signed() -> None:
    # Each orderer signs the blocks it writes, so two peers' copies may carry different signatures for
    # the same block (the metadata SIGNATURES entry); the signed header and the peers' flags agree.
    org1, org2 = real_chain("org1"), real_chain("org2")
    assert [header_hash(b.header) for b in org1] == [header_hash(b.header) for b in org2]
    assert all(verify_chain(c).ok for c in (org1, org2))


def test_missing_block_is_named() -> None:
    chain = real_chain()
    del chain[2]
    report = verify_chain(chain)
    assert report.broken is not None and report.broken.reason == "expected block 2, found block 3"


def test_no_blocks_is_not_ok() -> None:
    assert not verify_chain([]).ok


def test_block_files_are_read_in_order(tmp_path: Path) -> None:
    chain = real_chain()
    raw = [serialize_block(b) for b in chain]
    assert (DATA / "org1" / "blockfile_000000").read_bytes() == b"".join(_varint(len(r)) + r for r in raw)
    (tmp_path / "blockfile_000000").write_bytes(b"".join(_varint(len(r)) + r for r in raw[:4]))
    (tmp_path / "blockfile_000001").write_bytes(b"".join(_varint(len(r)) + r for r in raw[4:]) + b"\0" * 16)
    read = list(read_block_files(tmp_path))
    assert [b.header.number for b in read] == list(range(len(chain)))
    assert read == chain
    assert verify_chain(read).ok
    (tmp_path / "blockfile_000001").write_bytes(_varint(500) + b"short")
    with pytest.raises(LedgerError, match="truncated block"):
        list(read_block_files(tmp_path))
    with pytest.raises(LedgerError, match="no blockfile_"):
        list(read_block_files(tmp_path / "nowhere"))


def test_decode_block_names_creator_chaincode_and_validation_code() -> None:
    from tests.unit.sdk_fakes import make_identity

    identity, _ = make_identity("Org2MSP", "auditor")
    block = common_pb2.Block()
    env = prepared_envelope("mlops", "tx0", b"result")
    payload = common_pb2.Payload.FromString(env.payload)
    sh = common_pb2.SignatureHeader(creator=identity.serialize(), nonce=b"n")
    payload.header.signature_header = sh.SerializeToString()
    env.payload = payload.SerializeToString()
    block.data.data.append(env.SerializeToString())
    block.metadata.metadata.extend([b"", b"", bytes([10]), b""])  # ENDORSEMENT_POLICY_FAILURE
    (tx,) = decode_block(block)
    assert (tx.tx_id, tx.type, tx.validation_code) == ("tx0", "ENDORSER_TRANSACTION", "ENDORSEMENT_POLICY_FAILURE")
    assert (tx.creator.msp_id, tx.creator.subject) == ("Org2MSP", "CN=auditor")


def test_the_real_chain_holds_a_valid_and_an_invalid_transaction() -> None:
    codes = {t.validation_code for b in real_chain() for t in decode_block(b)}
    assert {"VALID", "ENDORSEMENT_POLICY_FAILURE"} <= codes


def anchor() -> GenesisAnchor:
    """The real chain's genesis block, as if known out of band."""
    return GenesisAnchor(header_hash(real_chain()[0].header), "the test network's genesis block")


def peer(name: str, chain: list[common_pb2.Block]) -> LivePeer:
    """A live peer named ``peer0-OrgN`` of ``OrgNMSP`` holding ``chain``."""
    return LivePeer(name, f"{name.split('-')[1]}MSP", lambda: len(chain), lambda a, b: iter(chain[a : b + 1]))


def by_name(report, name: str):
    return next(c for c in report.checks if c.name == name)


def test_a_copy_agrees_with_the_other_organisations_peer() -> None:
    report = audit("org1 copy", real_chain("org1"), [peer("peer0-Org2", real_chain("org2"))], genesis=anchor())
    assert (
        report.ok
        and report.verdict == "ok"
        and [c.name for c in report.checks]
        == [
            HASH_CHAIN,
            ORDERER_SIGNATURES,
            GENESIS,
            HEIGHT,
            SAME_BLOCKS,
            VALIDATION_FLAGS,
        ]
    )
    assert report.to_json()["unchecked"] == [] and report.compared_with == [
        f"peer0-Org2 of Org2MSP (blocks 0-{report.chain.blocks - 1})"
    ]


def test_a_truncated_copy_is_reported_behind_the_live_peer() -> None:
    full = real_chain()
    report = audit("truncated copy", full[:-2], [peer("peer0-Org1", real_chain())], genesis=anchor())
    assert not report.ok and report.chain.ok  # what it holds is sound; it is not all there is
    height = by_name(report, HEIGHT)
    assert height.ok is False and "behind the live peer peer0-Org1" in height.detail
    assert f"blocks {len(full) - 2}-{len(full) - 1} are missing" in height.detail
    assert by_name(report, SAME_BLOCKS).ok and by_name(report, VALIDATION_FLAGS).ok


def test_flags_differing_between_peers_are_reported_with_block_and_transaction() -> None:
    mine = real_chain("org1")
    theirs = real_chain("org2")
    victim = first_endorser_block(mine)
    flags = bytearray(victim.metadata.metadata[common_pb2.TRANSACTIONS_FILTER])
    before = flags[0]
    flags[0] = 0 if before else 11  # VALID <-> MVCC_READ_CONFLICT
    victim.metadata.metadata[common_pb2.TRANSACTIONS_FILTER] = bytes(flags)
    report = audit("org1 copy", mine, [peer("peer0-Org2", theirs)])
    assert report.chain.ok and not report.ok
    check = by_name(report, VALIDATION_FLAGS)
    assert check.ok is False
    assert f"block {victim.header.number} vs peer0-Org2: the validation flags differ (tx 0:" in check.detail
    assert by_name(report, SAME_BLOCKS).ok


def test_with_no_live_peer_the_verdict_is_incomplete_and_names_the_checks_not_made() -> None:
    report = audit("copy", real_chain(), [], ["peer0-Org1: connection refused"], genesis=anchor())
    assert not report.ok and report.verdict == "incomplete"  # nothing failed, but three checks could not be made
    doc = report.to_json()
    assert doc["ok"] is False and doc["verdict"] == "incomplete"
    assert doc["unchecked"] == [HEIGHT, SAME_BLOCKS, VALIDATION_FLAGS]
    assert all("no live peer reachable (peer0-Org1: connection refused)" in c.detail for c in report.unchecked)
    # A failure wins over a check not made.
    chain = real_chain()
    chain[3].data.data[0] = b"changed"
    assert audit("copy", chain, [], genesis=anchor()).verdict == "failed"


def test_the_genesis_block_is_compared_with_the_one_known_out_of_band() -> None:
    chain = real_chain()
    peers = [peer("peer0-Org2", real_chain("org2"))]
    good = by_name(audit("copy", chain, peers, genesis=anchor()), GENESIS)
    assert good.ok and header_hash(chain[0].header).hex() in good.detail
    assert (
        audit("copy", chain, peers, genesis=anchor()).to_json()["genesis_block_hash"]
        == header_hash(chain[0].header).hex()
    )
    # Another channel's (or a forged) history verifies on its own: only the anchor tells.
    other = GenesisAnchor(hashlib.sha256(b"another channel").digest(), "--genesis-hash")
    report = audit("copy", chain, peers, genesis=other)
    assert report.chain.ok and report.verdict == "failed"
    wrong = by_name(report, GENESIS)
    assert wrong.ok is False and "is not " + other.header_hash.hex() in wrong.detail  # type: ignore[union-attr]
    # None known: the check is not made, and the verdict is incomplete although everything else held.
    missing = audit("copy", chain, peers, genesis=GenesisAnchor(None, "/state/channel/x.block does not exist"))
    assert missing.verdict == "incomplete" and missing.to_json()["unchecked"] == [GENESIS]
    assert "/state/channel/x.block does not exist" in by_name(missing, GENESIS).detail
    assert audit("copy", chain, peers).verdict == "incomplete"


def test_a_copy_ahead_of_every_live_peer_fails_height_and_its_extra_blocks_are_not_vouched_for() -> None:
    # Under Raft any member of the orderer organisation can sign a block: blocks appended to a copy verify on
    # their own. A peer at height 5 vouches for blocks 0-4 only; a copy of 8 blocks cannot be ahead of the network.
    full = real_chain()
    report = audit("copy with extra blocks", full, [peer("peer0-Org2", real_chain("org2")[:5])])
    assert report.chain.ok and not report.ok
    height = by_name(report, HEIGHT)
    assert height.ok is False and "ahead of every live peer" in height.detail
    assert f"the copy holds blocks 5-{len(full) - 1}" in height.detail and "peer0-Org2, is at height 5" in height.detail
    for name in (SAME_BLOCKS, VALIDATION_FLAGS):
        check = by_name(report, name)
        assert check.ok is None and f"blocks 5-{len(full) - 1} were compared with no peer" in check.detail
    assert report.compared_with == ["peer0-Org2 of Org2MSP (blocks 0-4)"]


def test_a_live_peer_that_only_lagged_is_asked_again_and_compared_in_full() -> None:
    # A live source's peer may be a block behind when first asked (a block committed meanwhile).
    full, theirs = real_chain(), real_chain("org2")
    answers = iter([len(full) - 1, len(full)])
    lagging = LivePeer("peer0-Org2", "Org2MSP", lambda: next(answers), lambda a, b: iter(theirs[a : b + 1]))
    report = audit("live copy", full, [lagging], genesis=anchor())
    assert report.ok and by_name(report, HEIGHT).ok and by_name(report, VALIDATION_FLAGS).ok
    assert report.compared_with == [f"peer0-Org2 of Org2MSP (blocks 0-{len(full) - 1})"]


def test_a_peer_stream_that_ends_early_does_not_vouch_for_the_blocks_it_did_not_send() -> None:
    # The copy's newest block has a flipped flag; the peer claims the full height but sends 3 blocks only.
    mine, theirs = real_chain("org1"), real_chain("org2")
    last = mine[-1]
    flags = bytearray(last.metadata.metadata[common_pb2.TRANSACTIONS_FILTER])
    flags[0] = 11 if flags[0] == 0 else 0
    last.metadata.metadata[common_pb2.TRANSACTIONS_FILTER] = bytes(flags)
    cut = LivePeer("peer0-Org2", "Org2MSP", lambda: len(theirs), lambda a, b: iter(theirs[a : min(b + 1, 3)]))
    report = audit("org1 copy", mine, [cut], genesis=anchor())
    assert report.chain.ok and not report.ok and report.verdict == "incomplete"
    for name in (SAME_BLOCKS, VALIDATION_FLAGS):
        check = by_name(report, name)
        assert check.ok is None and f"blocks 3-{len(mine) - 1} were compared with no peer" in check.detail
        assert "its stream ended after 3 of the 8 blocks asked for" in check.detail
    assert report.compared_with == ["peer0-Org2 of Org2MSP (blocks 0-2)"]
    # A stream that skips a block is cut where it skipped.
    skipping = LivePeer("peer0-Org2", "Org2MSP", lambda: len(theirs), lambda a, b: iter(theirs[:2] + theirs[3:]))
    check = by_name(audit("org1 copy", mine, [skipping], genesis=anchor()), VALIDATION_FLAGS)
    assert check.ok is None and "it sent block 3 where block 2 was due" in check.detail


def test_only_another_organisations_peer_vouches_for_the_validation_flags() -> None:
    mine = real_chain("org1")
    own = peer("peer0-Org1", real_chain("org1"))
    report = audit("org1 copy", mine, [own], genesis=anchor(), own_org="Org1MSP")
    assert by_name(report, SAME_BLOCKS).ok is True and "organisations: Org1MSP" in by_name(report, SAME_BLOCKS).detail
    flags = by_name(report, VALIDATION_FLAGS)
    assert flags.ok is None and flags.detail.startswith("not made (no other organisation's peer reachable)")
    assert report.verdict == "incomplete"
    both = audit("org1 copy", mine, [own, peer("peer0-Org2", real_chain("org2"))], genesis=anchor(), own_org="Org1MSP")
    assert both.ok and by_name(both, VALIDATION_FLAGS).detail.endswith("(organisations: Org2MSP)")
    assert "organisations: Org1MSP, Org2MSP" in by_name(both, SAME_BLOCKS).detail
    # A difference with the copy's own organisation's peer still fails.
    changed = real_chain("org1")
    victim = first_endorser_block(changed)
    flipped = bytearray(victim.metadata.metadata[common_pb2.TRANSACTIONS_FILTER])
    flipped[0] = 11 if flipped[0] == 0 else 0
    victim.metadata.metadata[common_pb2.TRANSACTIONS_FILTER] = bytes(flipped)
    assert by_name(audit("copy", changed, [own], own_org="Org1MSP"), VALIDATION_FLAGS).ok is False


def test_a_block_file_cut_mid_block_verifies_the_complete_blocks_and_names_where_the_file_ends(tmp_path: Path) -> None:
    # A live peer's file copied while it wrote block 5: blocks 0-4 are whole, block 5 is cut short.
    raw = [serialize_block(b) for b in real_chain()]
    whole = b"".join(_varint(len(r)) + r for r in raw[:5])
    cut = whole + _varint(len(raw[5])) + raw[5][:40]
    (tmp_path / "blockfile_000000").write_bytes(cut)
    report = verify_chain(read_block_files(tmp_path))
    assert report.blocks == 5 and report.broken is not None and report.broken.block_number == 5
    assert report.broken.check == HASH_CHAIN
    assert f"the block at byte {len(whole)} is {len(raw[5])} bytes long, but the file ends at byte {len(cut)}" in (
        report.broken.reason
    )
    chain, sigs = report.checks()
    assert chain.ok is False and chain.detail.startswith("block 5: it cannot be read: ")
    assert sigs.ok is None  # not made beyond the break
    # Cut inside the next block's length: named too.
    (tmp_path / "blockfile_000000").write_bytes(whole + _varint(len(raw[5]))[:1])
    report = verify_chain(read_block_files(tmp_path))
    assert report.blocks == 5 and "truncated length" in report.broken.reason  # type: ignore[union-attr]

"""Verifying a copy of the chain: hash links, orderer signatures, and agreement with another copy.

:func:`verify_chain` checks first that each block header names the previous
header's hash (see :func:`~modelledger.sdk.ledger.blocks.header_hash`), from
the genesis block on, and that each block's data matches its data hash.

It then checks who made each block, as a peer does when it receives one
(``protoutil.BlockSignatureVerifier``, ``common/deliverclient``): the block
metadata entry ``SIGNATURES`` holds a value (``OrdererBlockMetadata``: the
last config block's number and the consenters' metadata) and the orderers'
signatures, each over ``value || signature header || DER(header)``. Each is an
ECDSA (P-256, SHA-256, low-S) or Ed25519 signature by the identity in its
signature header, and the set must satisfy ``/Channel/Orderer/BlockValidation``
of the configuration in force at that block: the genesis block's, then that
of each config block once it was itself verified under the previous one (see
:mod:`modelledger.sdk.ledger.config`). The genesis block is not signed: it is
the anchor, trusted as the channel was joined with it.

What no one signs: the metadata entries a peer writes when it commits the
block (``TRANSACTIONS_FILTER``, the validation code of each transaction, and
``COMMIT_HASH``, the peer's running hash over those codes and the state
updates), the deprecated ``LAST_CONFIG`` and ``ORDERER`` entries, and the
signatures' own encoding around the signed bytes. Comparing those with
another organisation's peer (:func:`compare_copies`) is the only check.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from fabric_protos.common import common_pb2
from fabric_protos.msp import identities_pb2

from modelledger.sdk.gateway.errors import validation_code_name
from modelledger.sdk.ledger.blocks import LedgerError, data_hash, header_bytes, header_hash
from modelledger.sdk.ledger.checks import Check
from modelledger.sdk.ledger.config import BLOCK_VALIDATION, ChannelConfig, ConfigError, SignedBy, config_envelope
from modelledger.sdk.ledger.msp import describe

HASH_CHAIN = "hash-chain"
ORDERER_SIGNATURES = "orderer-signatures"
# The order n of each curve Fabric accepts: a signature's s must be at most n/2 (bccsp's IsLowS).
_CURVE_ORDERS = {
    "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "secp384r1": int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973", 16
    ),
}


@dataclass(frozen=True)
class ChainBreak:
    """The first place where the chain does not hold, and which check failed there."""

    block_number: int
    reason: str
    check: str = HASH_CHAIN


@dataclass(frozen=True)
class BlockSummary:
    """What a block's copies must share: its header hash, and the metadata each peer writes unsigned."""

    number: int
    header_hash: bytes
    flags: bytes
    commit_hash: bytes


@dataclass
class ChainReport:
    """What :func:`verify_chain` found.

    Attributes:
        blocks: Blocks read whose hash links held (from 0).
        last_hash: Header hash of the last of them (hex).
        broken: The first block where a check failed.
        signed: Blocks whose orderer signatures satisfied the configuration in force.
        config_blocks: Numbers of the config blocks met (each changes the rules from the next block on).
        summaries: Per block read, what another copy must agree on (see :func:`compare_copies`).
    """

    blocks: int = 0
    last_hash: str = ""
    broken: ChainBreak | None = None
    signed: int = 0
    config_blocks: list[int] = field(default_factory=list)
    summaries: list[BlockSummary] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every block links to the previous one, matches its data hash and is signed as required."""
        return self.broken is None and self.blocks > 0

    def checks(self) -> list[Check]:
        """The hash-chain and orderer-signature checks, as named checks."""
        b = self.broken
        if self.blocks == 0 and b is None:
            return [Check(HASH_CHAIN, False, "no blocks")]
        chain = (
            Check(HASH_CHAIN, False, f"block {b.block_number}: {b.reason}")
            if b is not None and b.check == HASH_CHAIN
            else Check(HASH_CHAIN, True, f"{self.blocks} blocks from genesis link, last block hash {self.last_hash}")
        )
        configs = ", ".join(map(str, self.config_blocks)) or "none"
        if b is not None and b.check == ORDERER_SIGNATURES:
            sigs = Check(ORDERER_SIGNATURES, False, f"block {b.block_number}: {b.reason}")
        elif b is not None:
            sigs = Check(ORDERER_SIGNATURES, None, f"not made beyond block {b.block_number}: the chain broke there")
        elif self.blocks == 1:
            sigs = Check(ORDERER_SIGNATURES, True, "only the genesis block, the unsigned anchor")
        else:
            sigs = Check(
                ORDERER_SIGNATURES,
                True,
                f"blocks 1-{self.blocks - 1} signed under {BLOCK_VALIDATION} of the configuration in force "
                f"(config blocks {configs}); block 0 is the genesis block, the unsigned anchor",
            )
        return [chain, sigs]


def _metadata(block: common_pb2.Block, index: int) -> bytes:
    entries = block.metadata.metadata
    return entries[index] if len(entries) > index else b""


def summarize(block: common_pb2.Block) -> BlockSummary:
    """The parts of a block that every copy must agree on."""
    return BlockSummary(
        block.header.number,
        header_hash(block.header),
        _metadata(block, common_pb2.TRANSACTIONS_FILTER),
        _metadata(block, common_pb2.COMMIT_HASH),
    )


def _signature_ok(cert: x509.Certificate, signature: bytes, data: bytes) -> str:
    """Empty if ``signature`` is a valid (low-S) signature of ``data`` by the certificate's key, else why not."""
    try:
        key = cert.public_key()
    except ValueError as exc:
        return f"its certificate's public key cannot be read ({exc})"
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            order = _CURVE_ORDERS.get(key.curve.name)
            if order is None:
                return f"curve {key.curve.name} is not one Fabric accepts"
            _, s = decode_dss_signature(signature)
            if s > order // 2:
                return "the signature is not in low-S form (Fabric refuses it)"
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        else:
            return f"key type {type(key).__name__} is not one Fabric accepts"
    except (InvalidSignature, ValueError):
        return "the signature does not verify"
    return ""


def verify_block_signatures(block: common_pb2.Block, config: ChannelConfig, last_config: int) -> str:
    """Checks a block's orderer signatures against ``config``; empty if they hold, else why not.

    Args:
        block: The block (not the genesis block).
        config: The configuration in force at this block (that of the last config block before it).
        last_config: The number the block's signed metadata must name as the last config block.
    """
    raw = _metadata(block, common_pb2.SIGNATURES)
    if not raw:
        return "the block carries no orderer signatures"
    try:
        md = common_pb2.Metadata.FromString(raw)
        value = common_pb2.OrdererBlockMetadata.FromString(md.value)
    except Exception as exc:  # protobuf DecodeError
        return f"its signature metadata cannot be decoded: {exc}"
    if value.last_config.index != last_config:
        return f"its signed metadata names block {value.last_config.index} as the last config block, not {last_config}"
    signed_header = header_bytes(block.header)
    signers: list[SignedBy] = []
    notes: list[str] = []
    for i, sig in enumerate(md.signatures):
        if not sig.signature_header:
            notes.append(f"signature {i} has no signature header (BFT identifier headers are not verified here)")
            continue
        try:
            creator = common_pb2.SignatureHeader.FromString(sig.signature_header).creator
            ident = identities_pb2.SerializedIdentity.FromString(creator)
            cert = x509.load_pem_x509_certificate(ident.id_bytes)
        except Exception as exc:  # protobuf DecodeError, ValueError
            notes.append(f"signature {i}: its signer cannot be read ({exc})")
            continue
        why = _signature_ok(cert, sig.signature, md.value + sig.signature_header + signed_header)
        if why:
            notes.append(f"signature {i} by {ident.mspid} {describe(cert)}: {why}")
            continue
        signers.append(SignedBy(ident.mspid, cert, creator))
    if not md.signatures:
        return "the block carries no orderer signatures"
    try:
        result = config.evaluate(BLOCK_VALIDATION, signers)
    except ConfigError as exc:
        return f"the configuration in force (block {config.block_number}) cannot check it: {exc}"
    if result.satisfied:
        return ""
    who = ", ".join(f"{s.msp_id} {describe(s.cert)}" for s in signers) or "no valid signature"
    why = "; ".join(dict.fromkeys(notes + result.notes))
    orgs = ", ".join(config.orderer_orgs) or "none"
    return (
        f"its signatures do not satisfy {BLOCK_VALIDATION} of the configuration of block {config.block_number} "
        f"(orderer organisations: {orgs}); valid signatures by: {who}" + (f"; {why}" if why else "")
    )


def verify_chain(blocks: Iterable[common_pb2.Block]) -> ChainReport:
    """Checks numbering, each data hash and previous-hash link, and each block's orderer signatures, from block 0.

    Stops at the first failure and names that block and check. A block that cannot be read (e.g. a block
    file cut mid-block, :class:`LedgerError`) ends the chain there, as a ``hash-chain`` failure naming why;
    the blocks before it are verified.
    """
    report = ChainReport()
    previous: bytes | None = None
    config: ChannelConfig | None = None
    iterator = iter(blocks)
    for expected_number in itertools.count():
        try:
            block = next(iterator)
        except StopIteration:
            break
        except LedgerError as exc:
            report.broken = ChainBreak(expected_number, f"it cannot be read: {exc}")
            return report
        number = block.header.number
        if number != expected_number:
            report.broken = ChainBreak(number, f"expected block {expected_number}, found block {number}")
            return report
        if data_hash(block) != block.header.data_hash:
            report.broken = ChainBreak(number, "the block's data does not match the data hash in its header")
            return report
        if previous is None:
            if block.header.previous_hash:
                report.broken = ChainBreak(number, "the genesis block names a previous block")
                return report
        elif block.header.previous_hash != previous:
            report.broken = ChainBreak(
                number, f"its previous-block hash does not match block {number - 1}'s header hash"
            )
            return report
        previous = header_hash(block.header)
        report.blocks += 1
        report.last_hash = previous.hex()
        report.summaries.append(summarize(block))
        try:
            if config is None:
                config = ChannelConfig.from_block(block)
            else:
                why = verify_block_signatures(block, config, _last_config(block, config))
                if why:
                    report.broken = ChainBreak(number, why, ORDERER_SIGNATURES)
                    return report
                report.signed += 1
                if config_envelope(block) is not None:
                    config = ChannelConfig.from_block(block)
        except ConfigError as exc:
            report.broken = ChainBreak(number, f"its channel configuration cannot be read: {exc}", ORDERER_SIGNATURES)
            return report
        if config.block_number == number:
            report.config_blocks.append(number)
    return report


def _last_config(block: common_pb2.Block, config: ChannelConfig) -> int:
    """The last config block a block must name: itself if it is one, else the one in force."""
    return block.header.number if config_envelope(block) is not None else int(config.block_number or 0)


@dataclass(frozen=True)
class Disagreement:
    """Where two copies of the chain differ."""

    block_number: int
    what: str


@dataclass
class Comparison:
    """What :func:`compare_copies` found: the differences, and how many of the blocks asked for were compared.

    Attributes:
        differences: Where the copies differ.
        asked: How many blocks were to be compared.
        compared: How many were (from the first): fewer when the other copy's stream ended early or
            sent another block than the one due.
        note: Why fewer were compared.
    """

    differences: list[Disagreement]
    asked: int
    compared: int
    note: str = ""

    @property
    def complete(self) -> bool:
        return self.compared == self.asked


def compare_copies(mine: list[BlockSummary], theirs: Iterable[common_pb2.Block]) -> Comparison:
    """Compares a verified copy's blocks with another copy's (e.g. a peer of another organisation).

    Both must have the same header hash (the same orderer-signed block) and the
    same unsigned commit metadata: the validation code of every transaction and
    the commit hash. ``theirs`` must send ``mine``'s blocks in order; it is read
    up to the end of ``mine`` at most, and the blocks it did not send are
    counted, not assumed equal.
    """
    out: list[Disagreement] = []
    compared = 0
    note = ""
    for block in theirs:
        if compared == len(mine):
            break
        m = mine[compared]
        if block.header.number != m.number:
            note = f"it sent block {block.header.number} where block {m.number} was due"
            break
        compared += 1
        t = summarize(block)
        if t.header_hash != m.header_hash:
            out.append(Disagreement(m.number, "the header hashes differ (another block under the same number)"))
            continue
        if t.flags != m.flags:
            txs = [i for i in range(max(len(t.flags), len(m.flags))) if t.flags[i : i + 1] != m.flags[i : i + 1]]
            codes = ", ".join(f"tx {i}: {_code(m.flags, i)} here, {_code(t.flags, i)} there" for i in txs[:5]) + (
                f" and {len(txs) - 5} more" if len(txs) > 5 else ""
            )
            out.append(Disagreement(m.number, f"the validation flags differ ({codes})"))
        elif t.commit_hash != m.commit_hash:
            out.append(Disagreement(m.number, "the commit hashes differ"))
        if compared == len(mine):
            break
    if compared < len(mine) and not note:
        note = f"its stream ended after {compared} of the {len(mine)} blocks asked for"
    return Comparison(out, len(mine), compared, note)


def _code(flags: bytes, i: int) -> str:
    return validation_code_name(flags[i]) if i < len(flags) else "absent"

"""``ledger verify``: a copy of the chain checked on its own, then against live peers.

On its own (:func:`~modelledger.sdk.ledger.chain.verify_chain`), a copy
proves that its blocks link from genesis and that the orderers signed each of
them. It cannot prove that it is complete (a copy missing its newest blocks
is a valid prefix), that its newest blocks are the network's (under Raft any
member of the orderer organisation can sign a block, so blocks appended to a
copy verify on their own), nor that the metadata no one signs (each
transaction's validation code, the commit hash) is what the peers wrote.
Those need another copy: :func:`audit` compares with every live peer it can
reach, fails a copy behind a peer or ahead of every peer, and names the
checks it could not make (and the blocks it could not compare). The genesis
block is the unsigned anchor of everything else: ``genesis`` compares it with
a genesis block known out of band (:class:`GenesisAnchor`).

The verdict (:func:`~modelledger.sdk.ledger.checks.verdict`) is ``ok`` only
when every check was made and held, ``failed`` when one failed, and
``incomplete`` when none failed but one could not be made.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from fabric_protos.common import common_pb2

from modelledger.sdk.gateway.errors import GatewayError
from modelledger.sdk.ledger.chain import ChainBreak, ChainReport, compare_copies, verify_chain
from modelledger.sdk.ledger.checks import OK, Check, verdict

GENESIS = "genesis"
HEIGHT = "height"
SAME_BLOCKS = "same-blocks"
VALIDATION_FLAGS = "validation-flags"

UNSIGNED = (
    "No one signs a block's TRANSACTIONS_FILTER (the validation code of each transaction, written by each peer "
    "as it commits the block) nor its COMMIT_HASH (that peer's running hash over those codes and the state "
    "updates), nor the deprecated LAST_CONFIG and ORDERER metadata entries: a copy can change them and still "
    "verify on its own. Only another organisation's copy can contradict them."
)


@dataclass(frozen=True)
class LivePeer:
    """A peer to compare with: its name, its organisation (MSP id), its height now, and a reader of its blocks.

    ``blocks(start, stop)`` streams blocks ``start`` to ``stop`` inclusive.
    """

    name: str
    org: str
    height: Callable[[], int]
    blocks: Callable[[int, int], Iterable[common_pb2.Block]]


@dataclass(frozen=True)
class GenesisAnchor:
    """The channel's genesis block header hash, known out of band, or why there is none.

    Attributes:
        header_hash: The genesis block's header hash, or None when none is known.
        source: Where it comes from (e.g. the genesis block file configtxgen wrote, or a pinned value);
            when there is none, why.
    """

    header_hash: bytes | None
    source: str


@dataclass
class LedgerReport:
    """What :func:`audit` found: the chain on its own, then each comparison."""

    source: str
    chain: ChainReport
    checks: list[Check]
    compared_with: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """``ok`` (every check made and held), ``failed`` (one failed) or ``incomplete`` (one not made)."""
        return verdict(self.checks)  # a broken chain is a failed check

    @property
    def ok(self) -> bool:
        """True only when every check was made and held."""
        return self.verdict == OK

    @property
    def unchecked(self) -> list[Check]:
        """The checks that could not be made."""
        return [c for c in self.checks if c.ok is None]

    def to_json(self) -> dict[str, object]:
        broken = self.chain.broken
        return {
            "ok": self.ok,
            "verdict": self.verdict,
            "source": self.source,
            "blocks_verified": self.chain.blocks,
            "blocks_signed": self.chain.signed,
            "config_blocks": self.chain.config_blocks,
            "genesis_block_hash": self.chain.summaries[0].header_hash.hex() if self.chain.summaries else None,
            "last_block_hash": self.chain.last_hash,
            "broken_block": broken.block_number if broken else None,
            "reason": broken.reason if broken else None,
            "checks": [c.to_json() for c in self.checks],
            "unchecked": [c.name for c in self.unchecked],
            "compared_with": self.compared_with,
            "unsigned": UNSIGNED,
        }


def audit(
    source: str,
    blocks: Iterable[common_pb2.Block],
    peers: list[LivePeer],
    unreachable: list[str] | None = None,
    source_height: Callable[[], int] | None = None,
    expected: int | None = None,
    genesis: GenesisAnchor | None = None,
    own_org: str | None = None,
) -> LedgerReport:
    """Verifies a copy of the chain, then compares it with live peers.

    Args:
        source: What the copy is (for messages).
        blocks: The copy's blocks from 0.
        peers: Live peers to compare with (another organisation's, when the copy is a peer's own).
        unreachable: Peers that could not even be connected to, with the reason.
        source_height: When the copy is itself a live peer, its height now: the copy is behind another
            peer only if that peer is higher than the source still is after reading both (new blocks
            commit meanwhile).
        expected: How many blocks the copy must hold (a live source's height when it was asked).
        genesis: The genesis block known out of band; without one, ``genesis`` is not made.
        own_org: The organisation whose peer the copy comes from: its own peers are compared for
            ``same-blocks``, but only another organisation's peer can vouch for ``validation-flags``
            (None: unknown, every peer counts).
    """
    chain = verify_chain(blocks)
    if chain.broken is None and expected is not None and chain.blocks != expected:
        chain.broken = ChainBreak(chain.blocks, f"only {chain.blocks} of {expected} blocks could be read")
    report = LedgerReport(source, chain, [*chain.checks(), _genesis_check(chain, genesis)])
    missed = list(unreachable or [])
    height = len(chain.summaries)
    heights: dict[str, int] = {}
    for peer in peers:
        try:
            heights[peer.name] = peer.height()
        except GatewayError as exc:
            missed.append(f"{peer.name}: {exc}")
    if not heights:
        why = "; ".join(missed) or "none was given"
        for name in (HEIGHT, SAME_BLOCKS, VALIDATION_FLAGS):
            report.checks.append(Check(name, None, f"not made: no live peer reachable ({why})"))
        return report
    reach: dict[str, int] = {}  # per peer: blocks 0..n-1 of the copy compared with it
    forks: list[str] = []
    flags: list[str] = []
    short: list[str] = []  # peers that sent fewer blocks than asked for, and why

    def compare(peer: LivePeer, start: int, stop: int) -> None:
        """Compares the copy's blocks ``start..stop-1`` with the peer's."""
        try:
            comparison = compare_copies(chain.summaries[start:stop], peer.blocks(start, stop - 1))
        except GatewayError as exc:
            missed.append(f"{peer.name}: {exc}")
            short.append(f"{peer.name} (asked for blocks {start}-{stop - 1}: {exc})")
            return
        if not comparison.complete:
            end = start + comparison.compared
            short.append(
                f"{peer.name} (asked for blocks {start}-{stop - 1}, compared up to block {end - 1}: {comparison.note})"
            )
            missed.append(f"{peer.name}: {comparison.note}")
        if start + comparison.compared > 0:
            reach[peer.name] = start + comparison.compared
        for d in comparison.differences:
            target = forks if "header hashes" in d.what else flags
            target.append(f"block {d.block_number} vs {peer.name}: {d.what}")

    for peer in peers:
        if peer.name in heights and height > 0 and min(height, heights[peer.name]) > 0:
            compare(peer, 0, min(height, heights[peer.name]))
    if height > max(heights.values()):
        # No peer held the copy's newest blocks when asked. A live source's peers may only lag (a block
        # committed meanwhile): ask again, and compare what they hold now. A copy still ahead fails below.
        for peer in peers:
            if peer.name not in heights:
                continue
            try:
                heights[peer.name] = max(heights[peer.name], peer.height())
            except GatewayError as exc:
                missed.append(f"{peer.name}: {exc}")
                continue
            done = reach.get(peer.name, 0)
            if min(height, heights[peer.name]) > done:
                compare(peer, done, min(height, heights[peer.name]))
    report.checks.append(_height_check(height, heights, source_height))
    org_of = {peer.name: peer.org for peer in peers}
    report.compared_with = [f"{name} of {org_of[name]} (blocks 0-{n - 1})" for name, n in reach.items()]
    if not reach:
        why = "; ".join(missed) or "the copy holds no verified block to compare"
        report.checks.append(Check(SAME_BLOCKS, None, f"not made: no peer's blocks could be read ({why})"))
        report.checks.append(Check(VALIDATION_FLAGS, None, f"not made: no peer's blocks could be read ({why})"))
        return report
    report.checks.append(
        _comparison_check(SAME_BLOCKS, "same blocks", forks, reach, heights, height, short, org_of, "live peer")
    )
    others = {name: n for name, n in reach.items() if own_org is None or org_of[name] != own_org}
    if flags or others:
        other_heights = {name: h for name, h in heights.items() if own_org is None or org_of[name] != own_org}
        report.checks.append(
            _comparison_check(
                VALIDATION_FLAGS,
                "same validation flags and commit hashes",
                flags,
                others,
                other_heights,
                height,
                short,
                org_of,
                "live peer of another organisation",
            )
        )
    else:
        report.checks.append(
            Check(
                VALIDATION_FLAGS,
                None,
                f"not made (no other organisation's peer reachable): the copy is {own_org}'s, and only its own "
                f"organisation's peers were compared ({', '.join(report.compared_with)}); they agree with it, but "
                f"only a second organisation's copy can contradict flags its own peers wrote",
            )
        )
    return report


def _comparison_check(
    name: str,
    same: str,
    differences: list[str],
    reach: dict[str, int],
    heights: dict[str, int],
    height: int,
    short: list[str],
    org_of: dict[str, str],
    holders: str,
) -> Check:
    """A comparison's verdict: failed on any difference, not made for blocks no peer of ``reach`` covered."""
    if differences:
        return Check(name, False, "; ".join(differences))
    seen = ", ".join(f"{peer} (blocks 0-{n - 1})" for peer, n in reach.items())
    orgs = ", ".join(sorted({org_of[peer] for peer in reach}))
    covered = max(reach.values())
    if covered < height:
        if max(heights.values(), default=0) < height:
            why = f"no {holders} holds them"
        else:
            why = "the peers that hold them did not send them all: " + "; ".join(short)
        return Check(
            name,
            None,
            f"not made for every block: {same} as {seen} (organisations: {orgs}); blocks {covered}-{height - 1} "
            f"were compared with no peer: {why}",
        )
    return Check(name, True, f"{same} as {seen} (organisations: {orgs})")


def _genesis_check(chain: ChainReport, anchor: GenesisAnchor | None) -> Check:
    if anchor is None or anchor.header_hash is None:
        why = anchor.source if anchor is not None else "none was given"
        return Check(GENESIS, None, f"not made: no genesis block known out of band ({why})")
    if not chain.summaries:
        return Check(GENESIS, None, "not made: the copy's genesis block could not be read")
    mine = chain.summaries[0].header_hash
    if mine != anchor.header_hash:
        return Check(
            GENESIS,
            False,
            f"block 0's header hash {mine.hex()} is not {anchor.header_hash.hex()}, the genesis block's of "
            f"{anchor.source}: the copy is another channel's, or a forged history",
        )
    return Check(GENESIS, True, f"block 0 is the genesis block of {anchor.source} (header hash {mine.hex()})")


def _height_check(height: int, heights: dict[str, int], source_height: Callable[[], int] | None) -> Check:
    """Fails a copy behind a live peer (blocks missing from it) or ahead of every live peer (blocks no peer holds)."""
    now = height
    if source_height is not None:
        try:
            now = max(height, source_height())
        except GatewayError:
            now = height
    behind = {name: h for name, h in heights.items() if h > now}
    seen = ", ".join(f"{name} {h}" for name, h in sorted(heights.items()))
    if behind:
        name, top = max(behind.items(), key=lambda item: item[1])
        return Check(
            HEIGHT,
            False,
            f"behind the live peer {name}: the copy ends at block {height - 1} (height {height}), the peer's height "
            f"is {top}, so blocks {height}-{top - 1} are missing from it (live peers: {seen})",
        )
    name, top = max(heights.items(), key=lambda item: item[1])
    if top < height:
        return Check(
            HEIGHT,
            False,
            f"ahead of every live peer: the copy holds blocks {top}-{height - 1} (height {height}), but the highest "
            f"live peer, {name}, is at height {top}; a copy cannot be ahead of the network, and no peer vouches for "
            f"those blocks (live peers: {seen})",
        )
    return Check(HEIGHT, True, f"height {height}; live peers: {seen}")

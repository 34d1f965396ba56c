"""Which configuration checks which block, and how policies are evaluated: on synthetic channels.

A config block changes the rules from the next block on; it is itself
checked under the configuration in force before it (the previous config
block's), as Fabric's peers do.
"""

from __future__ import annotations

from modelledger.sdk.ledger.blocks import ORDERER_SIGNATURES, verify_chain
from tests.unit.ledger_fakes import block, channel_config, orderer_org, org_group, sign


def test_a_config_block_installing_an_attacker_ca_and_signed_only_by_it_fails() -> None:
    (ca, orderer), (evil_ca, evil) = orderer_org("example"), orderer_org("attacker")
    genesis = block(0, None, channel_config({"OrdererOrg": org_group("OrdererMSP", ca[1])}))
    # The attacker's configuration names its own CA as OrdererMSP's root, and its identity signs it.
    takeover = sign(
        block(1, genesis, channel_config({"OrdererOrg": org_group("OrdererMSP", evil_ca[1])})), 1, ("OrdererMSP", evil)
    )
    then = sign(block(2, takeover), 1, ("OrdererMSP", evil))
    report = verify_chain([genesis, takeover, then])
    assert report.broken is not None and report.broken.block_number == 1
    assert report.broken.check == ORDERER_SIGNATURES
    assert "of the configuration of block 0" in report.broken.reason
    assert "does not chain to a root certificate of OrdererMSP" in report.broken.reason
    assert report.signed == 0 and report.config_blocks == [0]
    # The same configuration block, signed by the orderer in force, is accepted (the check is the signer's).
    legit = sign(
        block(1, genesis, channel_config({"OrdererOrg": org_group("OrdererMSP", evil_ca[1])})),
        1,
        ("OrdererMSP", orderer),
    )
    assert verify_chain([genesis, legit]).ok


def test_after_an_orderer_ca_rotation_only_the_new_ca_signs() -> None:
    (old_ca, old), (new_ca, new) = orderer_org("old"), orderer_org("new")
    genesis = block(0, None, channel_config({"OrdererOrg": org_group("OrdererMSP", old_ca[1])}))
    # The rotation is a config block signed under the configuration it replaces: by the old CA's orderer.
    rotation = sign(
        block(1, genesis, channel_config({"OrdererOrg": org_group("OrdererMSP", new_ca[1])})), 1, ("OrdererMSP", old)
    )
    after = sign(block(2, rotation), 1, ("OrdererMSP", new))
    report = verify_chain([genesis, rotation, after])
    assert report.ok and report.signed == 2 and report.config_blocks == [0, 1]
    stale = sign(block(2, rotation), 1, ("OrdererMSP", old))
    report = verify_chain([genesis, rotation, stale])
    assert report.broken is not None and report.broken.block_number == 2
    assert report.broken.check == ORDERER_SIGNATURES and "of the configuration of block 1" in report.broken.reason
    assert "does not chain to a root certificate of OrdererMSP" in report.broken.reason

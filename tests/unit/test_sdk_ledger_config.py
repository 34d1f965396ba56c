"""Which configuration checks which block, and how policies are evaluated: on synthetic channels.

A config block changes the rules from the next block on; it is itself
checked under the configuration in force before it (the previous config
block's), as Fabric's peers do.
"""

from __future__ import annotations

import pytest
from fabric_protos.common import policies_pb2

from modelledger.sdk.ledger.chain import ORDERER_SIGNATURES, verify_chain
from modelledger.sdk.ledger.config import ChannelConfig, ConfigError
from tests.unit.ledger_fakes import block, channel_config, implicit_meta, member_of, orderer_org, org_group, sign
from tests.unit.pki_fakes import make_cert


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


def test_an_identity_that_signs_twice_counts_once() -> None:
    # BlockValidation: two signatures by members of OrdererMSP. One orderer signing twice is one identity.
    ca, first = orderer_org("example")
    second = make_cert("orderer2.example", issuer=ca, ou="orderer")
    config = channel_config(
        {"OrdererOrg": org_group("OrdererMSP", ca[1])}, block_validation=member_of("OrdererMSP", "OrdererMSP", n=2)
    )
    genesis = block(0, None, config)
    twice = sign(block(1, genesis), 0, ("OrdererMSP", first), ("OrdererMSP", first))
    report = verify_chain([genesis, twice])
    assert report.broken is not None and report.broken.block_number == 1
    assert report.broken.check == ORDERER_SIGNATURES
    assert verify_chain([genesis, sign(block(1, genesis), 0, ("OrdererMSP", first), ("OrdererMSP", second))]).ok


@pytest.mark.parametrize(
    "rule", [policies_pb2.ImplicitMetaPolicy.MAJORITY, policies_pb2.ImplicitMetaPolicy.ALL], ids=["MAJORITY", "ALL"]
)
def test_an_organisation_without_the_sub_policy_counts_as_a_rejection(rule: int) -> None:
    # Two orderer organisations; the second has no Writers policy. Fabric counts it, and it rejects:
    # MAJORITY of 2 needs 2, so OrdererOrg's signature alone is not enough.
    (ca, orderer), (other_ca, _) = orderer_org("example"), orderer_org("other")
    groups = {
        "OrdererOrg": org_group("OrdererMSP", ca[1]),
        "OtherOrg": org_group("OtherMSP", other_ca[1], writers=False),
    }
    genesis = block(0, None, channel_config(groups, block_validation=implicit_meta("Writers", rule)))
    report = verify_chain([genesis, sign(block(1, genesis), 0, ("OrdererMSP", orderer))])
    assert report.broken is not None and report.broken.check == ORDERER_SIGNATURES
    assert "/Channel/Orderer/OtherOrg/Writers: no such policy (it rejects)" in report.broken.reason


@pytest.mark.parametrize("rule", ["ANY", "ALL", "MAJORITY"])
def test_an_implicit_meta_policy_over_no_organisation_is_satisfied_as_in_fabric(rule: str) -> None:
    config = channel_config(
        {}, block_validation=implicit_meta("Writers", policies_pb2.ImplicitMetaPolicy.Rule.Value(rule))
    )
    assert ChannelConfig.parse(config).evaluate("/Channel/Orderer/BlockValidation", []).satisfied


def test_an_msp_id_defined_twice_differently_is_refused() -> None:
    # An application organisation claiming the orderer organisation's MSP id with its own CA must not replace it.
    (ca, orderer), (evil_ca, evil) = orderer_org("example"), orderer_org("attacker")
    twice = channel_config(
        {"OrdererOrg": org_group("OrdererMSP", ca[1])}, {"Org1": org_group("OrdererMSP", evil_ca[1])}
    )
    with pytest.raises(
        ConfigError,
        match="MSP OrdererMSP is defined twice, differently: by organisation OrdererOrg "
        "of the Orderer group and by organisation Org1 of the Application group",
    ):
        ChannelConfig.parse(twice)
    genesis = block(0, None, channel_config({"OrdererOrg": org_group("OrdererMSP", ca[1])}))
    update = sign(block(1, genesis, twice), 1, ("OrdererMSP", orderer))
    report = verify_chain([genesis, update, sign(block(2, update), 1, ("OrdererMSP", evil))])
    assert report.broken is not None and report.broken.block_number == 1
    assert "defined twice, differently" in report.broken.reason
    # The same definition in both groups is one MSP.
    same = channel_config({"OrdererOrg": org_group("OrdererMSP", ca[1])}, {"Org1": org_group("OrdererMSP", ca[1])})
    parsed = ChannelConfig.parse(same)
    assert parsed.orderer_orgs == ("OrdererMSP",) and parsed.application_orgs == ("OrdererMSP",)

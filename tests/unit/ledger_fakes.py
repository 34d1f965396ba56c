"""Synthetic channels for unit tests: configurations, config blocks and blocks signed by chosen identities.

A channel here is what configtxgen makes for ModelLedger, reduced to what
block verification reads: each orderer organisation's MSP (its root CA), its
``Writers`` policy (any member), and ``/Channel/Orderer/BlockValidation``
(``ANY Writers``). Real chains are in ``tests/unit/data/ledger``.
"""

from __future__ import annotations

import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from fabric_protos.common import common_pb2, configtx_pb2, policies_pb2
from fabric_protos.msp import identities_pb2, msp_config_pb2, msp_principal_pb2

from modelledger.sdk.ledger.blocks import data_hash, header_bytes, header_hash
from tests.unit.pki_fakes import Issued, make_cert, pem

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
CHANNEL = "synthetic"


def orderer_org(name: str) -> tuple[Issued, Issued]:
    """A CA and one orderer identity it issued."""
    ca = make_cert(f"ca.{name}", ca=True)
    return ca, make_cert(f"orderer.{name}", issuer=ca, ou="orderer")


def msp_value(msp_id: str, *roots: x509.Certificate) -> configtx_pb2.ConfigValue:
    """An organisation's ``MSP`` config value: its root certificates, NodeOUs off."""
    fabric = msp_config_pb2.FabricMSPConfig(name=msp_id, root_certs=[pem(r) for r in roots])
    return configtx_pb2.ConfigValue(
        value=msp_config_pb2.MSPConfig(type=0, config=fabric.SerializeToString()).SerializeToString()
    )


def member_of(*msp_ids: str, n: int = 1) -> policies_pb2.Policy:
    """A signature policy: ``n`` out of one member of each MSP."""
    principals = [
        msp_principal_pb2.MSPPrincipal(
            principal_classification=msp_principal_pb2.MSPPrincipal.ROLE,
            principal=msp_principal_pb2.MSPRole(
                msp_identifier=m, role=msp_principal_pb2.MSPRole.MEMBER
            ).SerializeToString(),
        )
        for m in msp_ids
    ]
    rule = policies_pb2.SignaturePolicy(
        n_out_of=policies_pb2.SignaturePolicy.NOutOf(
            n=n, rules=[policies_pb2.SignaturePolicy(signed_by=i) for i in range(len(msp_ids))]
        )
    )
    envelope = policies_pb2.SignaturePolicyEnvelope(rule=rule, identities=principals)
    return policies_pb2.Policy(type=policies_pb2.Policy.SIGNATURE, value=envelope.SerializeToString())


def implicit_meta(sub_policy: str, rule: int = policies_pb2.ImplicitMetaPolicy.ANY) -> policies_pb2.Policy:
    meta = policies_pb2.ImplicitMetaPolicy(sub_policy=sub_policy, rule=rule)  # type: ignore[arg-type]
    return policies_pb2.Policy(type=policies_pb2.Policy.IMPLICIT_META, value=meta.SerializeToString())


def org_group(msp_id: str, *roots: x509.Certificate, writers: bool = True) -> configtx_pb2.ConfigGroup:
    """An organisation's group: its MSP and (unless ``writers`` is False) a ``Writers`` policy of any member."""
    group = configtx_pb2.ConfigGroup()
    group.values["MSP"].CopyFrom(msp_value(msp_id, *roots))
    if writers:
        group.policies["Writers"].policy.CopyFrom(member_of(msp_id))
    return group


def channel_config(
    orderers: dict[str, configtx_pb2.ConfigGroup],
    applications: dict[str, configtx_pb2.ConfigGroup] | None = None,
    block_validation: policies_pb2.Policy | None = None,
) -> configtx_pb2.Config:
    """A configuration with these organisation groups and ``BlockValidation`` (default: ``ANY Writers``)."""
    config = configtx_pb2.Config()
    orderer = config.channel_group.groups["Orderer"]
    for name, group in orderers.items():
        orderer.groups[name].CopyFrom(group)
    orderer.policies["BlockValidation"].policy.CopyFrom(block_validation or implicit_meta("Writers"))
    if applications:
        application = config.channel_group.groups["Application"]
        for name, group in applications.items():
            application.groups[name].CopyFrom(group)
    return config


def _envelope(kind: int, data: bytes) -> bytes:
    header = common_pb2.ChannelHeader(type=kind, channel_id=CHANNEL, tx_id=os.urandom(8).hex())
    payload = common_pb2.Payload(header=common_pb2.Header(channel_header=header.SerializeToString()), data=data)
    return common_pb2.Envelope(payload=payload.SerializeToString()).SerializeToString()


def block(
    number: int, previous: common_pb2.Block | None, config: configtx_pb2.Config | None = None
) -> common_pb2.Block:
    """Block ``number`` after ``previous``: a config block carrying ``config``, else one endorser transaction."""
    b = common_pb2.Block()
    b.header.number = number
    if previous is not None:
        b.header.previous_hash = header_hash(previous.header)
    if config is not None:
        b.data.data.append(_envelope(common_pb2.CONFIG, configtx_pb2.ConfigEnvelope(config=config).SerializeToString()))
    else:
        b.data.data.append(_envelope(common_pb2.ENDORSER_TRANSACTION, os.urandom(16)))
    b.header.data_hash = data_hash(b)
    b.metadata.metadata.extend([b""] * 5)
    return b


def sign(b: common_pb2.Block, last_config: int, *signers: tuple[str, Issued]) -> common_pb2.Block:
    """Signs ``b`` as orderers do (``SIGNATURES`` metadata naming ``last_config``), once per ``(msp_id, identity)``."""
    value = common_pb2.OrdererBlockMetadata(last_config=common_pb2.LastConfig(index=last_config)).SerializeToString()
    md = common_pb2.Metadata(value=value)
    for msp_id, (key, cert) in signers:
        creator = identities_pb2.SerializedIdentity(mspid=msp_id, id_bytes=pem(cert)).SerializeToString()
        sh = common_pb2.SignatureHeader(creator=creator, nonce=os.urandom(24)).SerializeToString()
        r, s = decode_dss_signature(key.sign(value + sh + header_bytes(b.header), ec.ECDSA(hashes.SHA256())))
        md.signatures.add(signature_header=sh, signature=encode_dss_signature(r, min(s, P256_ORDER - s)))
    b.metadata.metadata[common_pb2.SIGNATURES] = md.SerializeToString()
    return b

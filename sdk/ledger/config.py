"""The channel configuration: organisations' MSPs and the policies that say who may sign what.

A configuration comes either from a config block (the genesis block, or a
later block whose single transaction is of type ``CONFIG``) or, for the
configuration in force now, from the peer's ``cscc`` (``GetChannelConfig``,
readable by any member of the channel).

:meth:`ChannelConfig.evaluate` evaluates a policy of the configuration (e.g.
``/Channel/Orderer/BlockValidation``) against identities whose signatures
were already checked, with Fabric's rules: an implicit-meta policy (``ANY``,
``ALL``, ``MAJORITY`` of a sub-policy of each organisation of the group; an
organisation without that sub-policy counts and rejects, and a group without
organisations is satisfied, as in ``common/policies/implicitmeta.go``), and
a signature policy (``n_out_of`` over ``signed_by`` principals, each
identity counted once however often it signed, see ``common/cauthdsl`` and
``SignatureSetToValidIdentities``) with principals of
classification ``ROLE`` (member, admin, client, peer, orderer) or
``IDENTITY``. Other principal kinds satisfy nothing, and the result says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from fabric_protos.common import common_pb2, configtx_pb2, policies_pb2
from fabric_protos.msp import identities_pb2, msp_config_pb2, msp_principal_pb2

from modelledger.sdk.gateway.gateway import Network
from modelledger.sdk.ledger.msp import MspError, MspTrust

BLOCK_VALIDATION = "/Channel/Orderer/BlockValidation"
_ROLE_NAMES = {
    msp_principal_pb2.MSPRole.MEMBER: "member",
    msp_principal_pb2.MSPRole.ADMIN: "admin",
    msp_principal_pb2.MSPRole.CLIENT: "client",
    msp_principal_pb2.MSPRole.PEER: "peer",
    msp_principal_pb2.MSPRole.ORDERER: "orderer",
}


class ConfigError(MspError):
    """A configuration could not be read, or a policy it names does not exist."""


@dataclass(frozen=True)
class SignedBy:
    """An identity whose signature over the data in question has been verified."""

    msp_id: str
    cert: x509.Certificate
    serialized: bytes


@dataclass
class PolicyResult:
    """Whether a policy was satisfied, and the reasons the identities did not count."""

    satisfied: bool
    notes: list[str] = field(default_factory=list)


def config_envelope(block: common_pb2.Block) -> configtx_pb2.ConfigEnvelope | None:
    """The configuration a block carries, or None if it is not a config block.

    Raises:
        ConfigError: The block claims to be a config block but cannot be decoded.
    """
    if len(block.data.data) != 1:
        return None
    try:
        env = common_pb2.Envelope.FromString(block.data.data[0])
        payload = common_pb2.Payload.FromString(env.payload)
        header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
    except Exception:  # protobuf's DecodeError and friends: not a config block
        return None
    if header.type != common_pb2.CONFIG:
        return None
    try:
        return configtx_pb2.ConfigEnvelope.FromString(payload.data)
    except Exception as exc:
        raise ConfigError(f"block {block.header.number}: its configuration cannot be decoded: {exc}") from exc


@dataclass(frozen=True)
class ChannelConfig:
    """A channel configuration: every organisation's MSP and the policy tree."""

    config: configtx_pb2.Config
    msps: dict[str, MspTrust]
    orderer_orgs: tuple[str, ...]
    application_orgs: tuple[str, ...]
    block_number: int | None = None  # the config block it came from, when known

    @classmethod
    def parse(cls, config: configtx_pb2.Config, block_number: int | None = None) -> ChannelConfig:
        """Reads the MSPs of every organisation of the ``Orderer`` and ``Application`` groups.

        An MSP id defined by more than one organisation must be defined identically each time (Fabric's
        ``ProposeMSP``: "attempted to define two different versions of MSP"); otherwise the one read last
        would silently decide who that MSP vouches for.

        Raises:
            ConfigError: An MSP definition cannot be read, or two organisations define one MSP id differently.
        """
        msps: dict[str, MspTrust] = {}
        defined: dict[str, tuple[msp_config_pb2.MSPConfig, str]] = {}
        sections: dict[str, list[str]] = {"Orderer": [], "Application": []}
        for section, ids in sections.items():
            group = config.channel_group.groups.get(section)
            if group is None:
                continue
            for name in sorted(group.groups):
                value = group.groups[name].values.get("MSP")
                if value is None:
                    raise ConfigError(f"organisation {name} of the {section} group has no MSP value")
                try:
                    mc = msp_config_pb2.MSPConfig.FromString(value.value)
                    fabric = msp_config_pb2.FabricMSPConfig.FromString(mc.config)
                except Exception as exc:
                    raise ConfigError(f"the MSP of organisation {name} cannot be decoded: {exc}") from exc
                if mc.type != 0:
                    raise ConfigError(f"the MSP of organisation {name} is of type {mc.type}; only X.509 (0) is read")
                where = f"organisation {name} of the {section} group"
                if fabric.name in defined:
                    first, first_where = defined[fabric.name]
                    if first != mc:
                        raise ConfigError(
                            f"MSP {fabric.name} is defined twice, differently: by {first_where} and by {where}"
                        )
                else:
                    defined[fabric.name] = (mc, where)
                    msps[fabric.name] = MspTrust.from_config(fabric.name, fabric)
                ids.append(fabric.name)
        return cls(config, msps, tuple(sections["Orderer"]), tuple(sections["Application"]), block_number)

    @classmethod
    def from_block(cls, block: common_pb2.Block) -> ChannelConfig:
        """The configuration a config block carries.

        Raises:
            ConfigError: The block is not a config block, or cannot be read.
        """
        envelope = config_envelope(block)
        if envelope is None:
            raise ConfigError(f"block {block.header.number} is not a config block")
        return cls.parse(envelope.config, block.header.number)

    def msp(self, msp_id: str) -> MspTrust:
        """One organisation's MSP.

        Raises:
            ConfigError: No organisation of the channel has this MSP id.
        """
        trust = self.msps.get(msp_id)
        if trust is None:
            raise ConfigError(f"{msp_id} is not an organisation of the channel (known: {', '.join(sorted(self.msps))})")
        return trust

    def _policy(self, path: str) -> tuple[configtx_pb2.ConfigGroup, policies_pb2.Policy]:
        parts = path.strip("/").split("/")
        if len(parts) < 2 or parts[0] != "Channel":
            raise ConfigError(f"{path}: a policy path looks like /Channel/<group>/<policy>")
        group = self.config.channel_group
        for name in parts[1:-1]:
            if name not in group.groups:
                raise ConfigError(f"{path}: the configuration has no group {name}")
            group = group.groups[name]
        if parts[-1] not in group.policies:
            raise ConfigError(f"{path}: the configuration has no such policy")
        return group, group.policies[parts[-1]].policy

    def evaluate(self, path: str, signers: Sequence[SignedBy]) -> PolicyResult:
        """Evaluates the policy at ``path`` for identities whose signatures were verified.

        Raises:
            ConfigError: The policy does not exist or cannot be decoded.
        """
        group, policy = self._policy(path)
        result = PolicyResult(False)
        result.satisfied = self._evaluate(group, policy, _distinct(signers), result.notes, path)
        return result

    def _evaluate(
        self,
        group: configtx_pb2.ConfigGroup,
        policy: policies_pb2.Policy,
        signers: list[SignedBy],
        notes: list[str],
        path: str,
    ) -> bool:
        try:
            if policy.type == policies_pb2.Policy.IMPLICIT_META:
                # Fabric's common/policies/implicitmeta.go: every sub-group counts; one without the sub-policy
                # rejects (its policy manager answers a reject policy); no sub-group at all needs nothing.
                meta = policies_pb2.ImplicitMetaPolicy.FromString(policy.value)
                met = 0
                for name, sub in sorted(group.groups.items()):
                    p = f"{path.rsplit('/', 1)[0]}/{name}/{meta.sub_policy}"
                    if meta.sub_policy not in sub.policies:
                        notes.append(f"{p}: no such policy (it rejects)")
                        continue
                    met += self._evaluate(sub, sub.policies[meta.sub_policy].policy, signers, notes, p)
                subs = len(group.groups)
                need = {
                    policies_pb2.ImplicitMetaPolicy.ANY: 1,
                    policies_pb2.ImplicitMetaPolicy.ALL: subs,
                    policies_pb2.ImplicitMetaPolicy.MAJORITY: subs // 2 + 1,
                }[meta.rule]
                return met >= (need if subs else 0)
            if policy.type == policies_pb2.Policy.SIGNATURE:
                env = policies_pb2.SignaturePolicyEnvelope.FromString(policy.value)
                return _signature_rule(env.rule, list(env.identities), signers, [False] * len(signers), self, notes)
        except ConfigError:
            raise
        except Exception as exc:  # a malformed policy in the configuration
            raise ConfigError(f"{path}: the policy cannot be decoded: {exc}") from exc
        notes.append(f"{path}: policy type {policy.type} is not evaluated")
        return False

    def satisfies(self, signer: SignedBy, principal: msp_principal_pb2.MSPPrincipal, notes: list[str]) -> bool:
        """Whether a verified signer matches one principal of a signature policy."""
        kind = principal.principal_classification
        if kind == msp_principal_pb2.MSPPrincipal.ROLE:
            role = msp_principal_pb2.MSPRole.FromString(principal.principal)
            if role.msp_identifier != signer.msp_id:
                return False
            try:
                trust = self.msp(signer.msp_id)
                trust.chain(signer.cert)
            except MspError as exc:
                notes.append(str(exc))
                return False
            return _ROLE_NAMES.get(role.role, "?") in trust.roles(signer.cert)
        if kind == msp_principal_pb2.MSPPrincipal.IDENTITY:
            wanted = identities_pb2.SerializedIdentity.FromString(principal.principal)
            mine = identities_pb2.SerializedIdentity.FromString(signer.serialized)
            if (wanted.mspid, wanted.id_bytes) != (mine.mspid, mine.id_bytes):
                return False
            try:
                self.msp(signer.msp_id).chain(signer.cert)
            except MspError as exc:
                notes.append(str(exc))
                return False
            return True
        notes.append(f"principal classification {kind} is not evaluated")
        return False


def _distinct(signers: Sequence[SignedBy]) -> list[SignedBy]:
    """Each identity once, in order (Fabric's ``SignatureSetToValidIdentities``: the same MSP and certificate
    signing twice counts once)."""
    seen: set[tuple[str, bytes]] = set()
    out: list[SignedBy] = []
    for signer in signers:
        key = (signer.msp_id, signer.cert.public_bytes(Encoding.DER))
        if key not in seen:
            seen.add(key)
            out.append(signer)
    return out


def _signature_rule(
    rule: policies_pb2.SignaturePolicy,
    principals: list[msp_principal_pb2.MSPPrincipal],
    signers: list[SignedBy],
    used: list[bool],
    config: ChannelConfig,
    notes: list[str],
) -> bool:
    """Fabric's cauthdsl: ``signed_by`` takes the first unused matching identity; ``n_out_of`` needs n sub-rules."""
    if rule.WhichOneof("Type") == "signed_by":
        if not 0 <= rule.signed_by < len(principals):
            notes.append(f"signature policy names principal {rule.signed_by}, which does not exist")
            return False
        for i, signer in enumerate(signers):
            if not used[i] and config.satisfies(signer, principals[rule.signed_by], notes):
                used[i] = True
                return True
        return False
    trial = list(used)
    met = sum(_signature_rule(sub, principals, signers, trial, config, notes) for sub in rule.n_out_of.rules)
    if met >= rule.n_out_of.n:
        used[:] = trial
        return True
    return False


def channel_config(network: Network) -> ChannelConfig:
    """The configuration in force on the Gateway peer's channel (``cscc GetChannelConfig``).

    Raises:
        EvaluateError: The peer refused the query.
        ConfigError: The answer cannot be read.
    """
    raw = network.contract("cscc").evaluate("GetChannelConfig", [network.name])
    try:
        config = configtx_pb2.Config.FromString(raw)
    except Exception as exc:
        raise ConfigError(f"the channel configuration of {network.name} cannot be decoded: {exc}") from exc
    return ChannelConfig.parse(config)

"""Where every generated file of the network lives, under one runtime folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelledger.network.topology import CA, Node, Organization
from modelledger.runtime.settings import NetworkSettings


@dataclass(frozen=True)
class NodeTLS:
    """A node's TLS files."""

    cert: Path
    key: Path
    ca: Path


@dataclass(frozen=True)
class NetworkLayout:
    """Paths of generated state. Nothing here is committed; ``clean`` removes ``root``."""

    root: Path

    @property
    def config_dir(self) -> Path:
        """Generated core.yaml and orderer.yaml (stock files with our settings on top)."""
        return self.root / "config"

    @property
    def configtx_dir(self) -> Path:
        """Generated configtx.yaml."""
        return self.root / "configtx"

    def channel_block(self, channel: str) -> Path:
        """The channel's genesis block, made once by configtxgen."""
        return self.root / "channel" / f"{channel}.block"

    @property
    def connection_profile(self) -> Path:
        """The connection profile clients read (endpoints, TLS roots, identities)."""
        return NetworkSettings.connection_profile_in(self.root)

    # --- certificate authorities -------------------------------------------------
    def ca_home(self, ca: CA) -> Path:
        """fabric-ca-server home (its DB, CA key and config)."""
        return self.root / "cas" / ca.org / "server"

    def ca_cert(self, ca: CA) -> Path:
        """The CA's root certificate, also the org's TLS root."""
        return self.ca_home(ca) / "ca-cert.pem"

    def ca_tls(self, ca: CA) -> NodeTLS:
        """The CA server's own TLS certificate, signed by the CA."""
        d = self.ca_home(ca) / "tls"
        return NodeTLS(d / "server.crt", d / "server.key", self.ca_cert(ca))

    def ca_registrar_home(self, ca: CA) -> Path:
        """fabric-ca-client home of the CA's bootstrap registrar."""
        return self.root / "cas" / ca.org / "registrar"

    def secret_file(self, org: str, identity: str) -> Path:
        """Where an identity's enrollment secret is kept (mode 0600)."""
        return self.root / "secrets" / org / f"{identity}.secret"

    # --- organisations and identities ---------------------------------------------
    def org_dir(self, org: Organization | str) -> Path:
        """Everything of one organisation."""
        name = org if isinstance(org, str) else org.name
        return self.root / "orgs" / name

    def org_msp(self, org: Organization | str) -> Path:
        """The organisation's channel MSP (CA roots and NodeOU config) for configtxgen."""
        return self.org_dir(org) / "msp"

    def node_dir(self, node: Node) -> Path:
        """A node's identity folder."""
        return self.org_dir(node.org) / "nodes" / node.name

    def node_msp(self, node: Node) -> Path:
        """A node's local MSP."""
        return self.node_dir(node) / "msp"

    def node_tls(self, node: Node) -> NodeTLS:
        """A node's TLS server (and cluster client) certificate."""
        d = self.node_dir(node) / "tls"
        return NodeTLS(d / "server.crt", d / "server.key", d / "ca.crt")

    def user_dir(self, org: Organization | str, role: str) -> Path:
        """A role user's folder, e.g. orgs/Org1/users/registrar."""
        return self.org_dir(org) / "users" / role

    def user_msp(self, org: Organization | str, role: str) -> Path:
        """A role user's MSP (signcerts, keystore, cacerts, config.yaml)."""
        return self.user_dir(org, role) / "msp"

    def user_tls(self, org: Organization | str, role: str) -> NodeTLS:
        """A user's TLS client certificate (the orderer admin uses it for osnadmin)."""
        d = self.user_dir(org, role) / "tls"
        return NodeTLS(d / "client.crt", d / "client.key", d / "ca.crt")

    # --- node runtime ------------------------------------------------------------------
    def ledger_dir(self, node: Node) -> Path:
        """A node's ledger, state database and (orderers) Raft WAL and snapshots."""
        return self.root / "ledgers" / node.id

    # --- chaincode as a service ----------------------------------------------------------
    @property
    def chaincode_dir(self) -> Path:
        """Chaincode binaries, packages, server TLS and the deployment record."""
        return self.root / "chaincode"

    @property
    def chaincode_record(self) -> Path:
        """What was deployed last: sequence, version, source digest, binary, package ids."""
        return self.chaincode_dir / "deployed.json"

    def chaincode_binary(self, name: str, source_digest: str) -> Path:
        """The chaincode server built from one version of the source."""
        return self.chaincode_dir / "bin" / f"{name}-{source_digest[:16]}"

    def chaincode_package(self, org: Organization | str, label: str) -> Path:
        """An organisation's ccaas package (its connection.json names that org's server)."""
        return self.org_dir(org) / "chaincode" / f"{label}.tar.gz"

    def chaincode_server_tls(self, org: Organization | str) -> NodeTLS:
        """TLS server certificate of an organisation's chaincode server."""
        d = self.org_dir(org) / "chaincode" / "tls"
        return NodeTLS(d / "server.crt", d / "server.key", d / "ca.crt")

    def chaincode_tls_ca_key(self, org: Organization | str) -> Path:
        """Key of the organisation's own CA for peer-to-chaincode TLS (its certificate is ``ca.crt``)."""
        return self.org_dir(org) / "chaincode" / "tls" / "ca.key"

    def chaincode_client_tls(self, org: Organization | str) -> NodeTLS:
        """TLS client certificate the org's peers present to its chaincode server."""
        d = self.org_dir(org) / "chaincode" / "tls"
        return NodeTLS(d / "client.crt", d / "client.key", d / "ca.crt")

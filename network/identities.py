"""Enrols every identity the topology needs, through each organisation's CA.

For each organisation: the CA's bootstrap registrar; every node (an MSP plus a
TLS certificate); one user per role, whose certificate carries the ecert
attribute ``modelledger.role``. The orderer organisation gets only an
``admin`` user. Every ``admin`` also has a TLS client certificate, for
``osnadmin`` and for the nodes' operations endpoints.
Already-enrolled identities are left untouched.
"""

from __future__ import annotations

from modelledger.network.binaries import FabricBinaries
from modelledger.network.ca import CAClient, role_attrs, write_org_msp
from modelledger.network.layout import NetworkLayout
from modelledger.network.topology import Organization, Topology


def node_hosts(org: Organization, node_name: str, host: str) -> list[str]:
    """Names a node's TLS certificate is valid for."""
    return list(dict.fromkeys([host, f"{node_name}.{org.domain}", "localhost", "127.0.0.1"]))


def org_roles(topo: Topology, org: Organization) -> tuple[str, ...]:
    """The role users enrolled for ``org``."""
    return topo.roles if org.type == "application" else ("admin",)


def enroll_organization(topo: Topology, org: Organization, layout: NetworkLayout, bins: FabricBinaries) -> list[str]:
    """Enrols everything of one organisation; returns what was newly enrolled."""
    done: list[str] = []
    client = CAClient(org.ca, org, layout, bins)
    client.enroll_registrar()
    write_org_msp(layout.org_msp(org), layout.ca_cert(org.ca))

    for node in org.nodes:
        msp = layout.node_msp(node)
        tls = layout.node_tls(node)
        if (msp / "config.yaml").is_file() and tls.cert.is_file():
            continue
        secret = client.register(node.name, node.kind, {})
        client.enroll_identity(node.name, secret, msp)
        client.enroll_tls(node.name, secret, tls.cert, tls.key, tls.ca, node_hosts(org, node.name, node.host))
        done.append(node.id)

    for role in org_roles(topo, org):
        msp = layout.user_msp(org, role)
        # Admins get a TLS client certificate too: osnadmin and the nodes'
        # operations /metrics endpoint require mutual TLS.
        needs_tls = role == "admin"
        tls = layout.user_tls(org, role)
        if (msp / "config.yaml").is_file() and (not needs_tls or tls.cert.is_file()):
            continue
        secret = client.register(role, "admin" if role == "admin" else "client", role_attrs(role))
        client.enroll_identity(role, secret, msp)
        if needs_tls:
            client.enroll_tls(role, secret, tls.cert, tls.key, tls.ca, [f"{role}.{org.domain}"])
        done.append(f"{role}@{org.name}")
    return done

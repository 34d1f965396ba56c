"""The chaincode-as-a-service processes: one server per application organisation, and their TLS.

Each application organisation runs one chaincode server, supervised like the
nodes. Its peers reach it with mutual TLS under a CA of the organisation's
own: the server certificate and the peers' client certificate (whose key
travels in the ccaas package's ``connection.json``) are issued by it.

Each server reports the runtime's :class:`~modelledger.runtime.status.ServerStatus`.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from modelledger.network.errors import ChaincodeError, NodeFailedError
from modelledger.network.layout import NetworkLayout
from modelledger.network.topology import Organization, Topology
from modelledger.runtime.lifecycle import wait_healthy
from modelledger.runtime.processes import ProcessSupervisor, wait_port_free
from modelledger.runtime.status import ServerStatus
from modelledger.runtime.tls import create_tls_ca, issue_tls_certificate, tls_context, tls_handshake


def server_name(topo: Topology, org: Organization) -> str:
    """Process name of an organisation's chaincode server, e.g. ``registry-Org1``."""
    return f"{topo.chaincode}-{org.name}"


class ChaincodeServers:
    """The chaincode servers of one network: TLS material, start, health, stop, status."""

    def __init__(
        self, topo: Topology, layout: NetworkLayout, supervisor: ProcessSupervisor, health_timeout: float = 60.0
    ) -> None:
        self.topo = topo
        self.layout = layout
        self.supervisor = supervisor
        self.health_timeout = health_timeout

    def connection(self, org: Organization) -> dict[str, Any]:
        """The ``connection.json`` of the org's ccaas package: the server's address and the peers' TLS."""
        server = org.chaincode_server
        if server is None:
            raise ChaincodeError(f"organizations[{org.name}].chaincode_server is not set in the topology")
        client = self.layout.chaincode_client_tls(org)
        return {
            "address": server.address,
            "dial_timeout": "10s",
            "tls_required": True,
            "client_auth_required": True,
            "client_cert": client.cert.read_text(),
            "client_key": client.key.read_text(),
            "root_cert": self.layout.chaincode_server_tls(org).ca.read_text(),
        }

    def ensure_tls(self, org: Organization) -> bool:
        """Creates the org's peer-to-chaincode TLS CA, the server certificate and the peers' client certificate.

        A CA of its own, rather than the org's Fabric CA, so that only the org's
        peers (which hold the client key from the package) can connect to the
        chaincode server, not every identity the Fabric CA ever enrolled.
        """
        server_tls = self.layout.chaincode_server_tls(org)
        client_tls = self.layout.chaincode_client_tls(org)
        if server_tls.cert.is_file() and client_tls.cert.is_file() and server_tls.ca.is_file():
            return False
        assert org.chaincode_server is not None
        ca_cert, ca_key = create_tls_ca(
            server_tls.ca, self.layout.chaincode_tls_ca_key(org), f"{self.topo.chaincode} TLS CA of {org.name}"
        )
        host = org.chaincode_server.host
        hosts = list(dict.fromkeys([host, f"{self.topo.chaincode}.{org.domain}", "localhost", "127.0.0.1"]))
        issue_tls_certificate(ca_cert, ca_key, server_tls.cert, server_tls.key, hosts)
        issue_tls_certificate(ca_cert, ca_key, client_tls.cert, client_tls.key, [f"peers.{org.domain}"])
        return True

    def _server_env(self, org: Organization, ccid: str) -> dict[str, str]:
        assert org.chaincode_server is not None
        tls = self.layout.chaincode_server_tls(org)
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "CHAINCODE_ID": ccid,
            "CHAINCODE_SERVER_ADDRESS": org.chaincode_server.address,
            "CHAINCODE_TLS_CERT": str(tls.cert),
            "CHAINCODE_TLS_KEY": str(tls.key),
            "CHAINCODE_TLS_CLIENT_CA": str(self.layout.chaincode_server_tls(org).ca),
        }

    def start(self, org: Organization, binary: Path, ccid: str) -> bool:
        """Starts (or restarts onto another binary or package) the org's chaincode server."""
        name = server_name(self.topo, org)
        info = self.supervisor.running(name)
        if info is not None and info.argv0 == str(binary) and info.tag == ccid:
            return False
        if info is not None:
            self.supervisor.stop(name)
        assert org.chaincode_server is not None
        ep = org.chaincode_server
        busy = wait_port_free(ep.host, ep.port, timeout=10.0 if info is not None else 0.0)
        if busy is not None:
            raise ChaincodeError(f"cannot start {name}: port {ep.address} is already in use ({busy.strerror})")
        self.supervisor.start(name, [str(binary)], self._server_env(org, ccid), tag=ccid)
        return True

    def health(self, org: Organization) -> tuple[bool, str]:
        """A mutual-TLS handshake with the org's chaincode server, as its peers do it."""
        assert org.chaincode_server is not None
        client = self.layout.chaincode_client_tls(org)
        ctx = tls_context(client.ca, client.cert, client.key)
        ep = org.chaincode_server
        failure = tls_handshake(ep.host, ep.port, ctx)
        return (True, "TLS handshake OK") if failure is None else (False, failure)

    def wait_healthy(self) -> None:
        """Waits until every org's server answers the handshake.

        Raises:
            NodeFailedError: A server exited or stayed unreachable; names its log.
        """
        checks = {server_name(self.topo, o): (lambda o=o: self.health(o)) for o in self.topo.application_orgs}
        wait_healthy(self.supervisor, checks, self.health_timeout, "chaincode server", NodeFailedError)

    def all_running(self) -> bool:
        """Whether every application organisation's server runs."""
        return all(self.supervisor.running(server_name(self.topo, org)) for org in self.topo.application_orgs)

    def stop(self) -> list[str]:
        """Stops every chaincode server; returns the names stopped."""
        return [
            server_name(self.topo, org)
            for org in self.topo.application_orgs
            if self.supervisor.stop(server_name(self.topo, org))
        ]

    def statuses(self) -> list[ServerStatus]:
        """Every org's server as seen now: process, memory, handshake and log."""
        servers = []
        for org in self.topo.application_orgs:
            assert org.chaincode_server is not None
            health = functools.partial(self.health, org)
            name, address = server_name(self.topo, org), org.chaincode_server.address
            servers.append(ServerStatus.observe(self.supervisor, name, address, health, {"org": org.name}))
        return servers

"""The network as a whole: ``up``, ``down``, ``status``, ``clean``.

``up`` is idempotent: every step first checks whether its result is already
there (CA initialised, identity enrolled, process running, channel joined)
and only does what is missing. On a healthy network it changes nothing and
says so.

:class:`FabricNetwork` runs the steps in order; the steps themselves live in
the modules it calls (CAs in ``ca``, nodes in ``nodes``, generated files and
the clients' connection profile in ``configuration``, channel joins in
``channel``, the waits for the channel to settle in ``convergence``, the
chaincode in ``chaincode_deployment``).
"""

from __future__ import annotations

import functools
import hashlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from modelledger.network.binaries import FabricBinaries
from modelledger.network.ca import CAServer, ca_health
from modelledger.network.chaincode_deployment import ChaincodeDeployment
from modelledger.network.chaincode_servers import server_name
from modelledger.network.channel import (
    channel_members,
    create_genesis_block,
    fetch_config,
    join_orderer,
    join_peer,
)
from modelledger.network.configuration import connection_profile_yaml, write_configtx, write_node_config
from modelledger.network.convergence import (
    channel_heights,
    node_heights,
    wait_gossip_converged,
    wait_heights_converged,
    wait_raft_leader,
)
from modelledger.network.errors import NetworkError, NodeFailedError
from modelledger.network.identities import enroll_organizations
from modelledger.network.layout import NetworkLayout
from modelledger.network.nodes import node_health, start_node
from modelledger.network.topology import Node, Topology, load_topology
from modelledger.runtime.lifecycle import (
    MarkerMismatchError,
    UpReport,
    check_marked_dir,
    claim_marked_dir,
    remove_marked_dir,
    wait_healthy,
)
from modelledger.runtime.private_files import write_if_changed
from modelledger.runtime.processes import (
    HealthCheck,
    ProcessSupervisor,
    first_busy_port,
    wait_port_free,
)
from modelledger.runtime.settings import PORT_BASE_ENV, STATE_DIR_ENV, NetworkSettings
from modelledger.runtime.status import ServerStatus

Progress = Callable[[str], None]


def free_port_base(topology: Path | None = None, low: int = 10000, high: int = 31000) -> int:
    """A port base at which every port of the topology is free now (for test and bench networks).

    Bases stay below Linux's ephemeral range (32768+), so outgoing connections never take the ports.
    """
    path = topology or NetworkSettings.from_env().topology_path
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(low, high, 100)
        if first_busy_port("127.0.0.1", load_topology(path, base).all_ports()) is None:
            return base
    raise NetworkError(f"no free port range found between {low} and {high}")


# Written into the state folder by ``up``; ``clean`` deletes only folders that carry it.
STATE_MARKER = ".modelledger-network"
# How long ``up`` waits for a port that a just-stopped process may still hold, before calling it taken.
PORT_RELEASE_SECONDS = 5.0
# The role lists that releases before 1.4.0 put in the state folder's fingerprint (they had no evaluator).
_FINGERPRINTED_ROLES = (("data_scientist", "registrar", "approver", "operator", "auditor", "admin"),)


@dataclass
class NetworkStatus:
    """The whole network as seen now.

    Each process is a :class:`~modelledger.runtime.status.ServerStatus` whose ``details`` hold its
    ``kind`` (``ca``, ``orderer``, ``peer``, ``chaincode``), its ``org`` and, for nodes, the ledger
    ``heights`` per channel.
    """

    channel: str
    processes: list[ServerStatus]
    members: dict[str, list[str]]
    state_dir: str

    @property
    def healthy(self) -> bool:
        """True when every process runs and reports healthy."""
        return all(p.ok for p in self.processes)

    @property
    def total_rss_kib(self) -> int:
        """Resident memory of all processes together."""
        return sum(p.rss_kib for p in self.processes)

    @property
    def total_peak_rss_kib(self) -> int:
        """Sum of every process's peak resident memory."""
        return sum(p.peak_rss_kib for p in self.processes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "channel": self.channel,
            "healthy": self.healthy,
            "total_rss_kib": self.total_rss_kib,
            "total_peak_rss_kib": self.total_peak_rss_kib,
            "state_dir": self.state_dir,
            "members": self.members,
            "processes": [p.to_dict() for p in self.processes],
        }


class FabricNetwork:
    """A native Fabric network generated from a topology into a runtime folder."""

    def __init__(self, settings: NetworkSettings | None = None) -> None:
        self.settings = settings or NetworkSettings.from_env()
        self.topology: Topology = load_topology(self.settings.topology_path, self.settings.port_base)
        self.layout = NetworkLayout(self.settings.network_dir)
        self.supervisor = ProcessSupervisor(self.layout.root)
        self._bins: FabricBinaries | None = None

    @property
    def bins(self) -> FabricBinaries:
        """The installed Fabric tools (located on first use)."""
        if self._bins is None:
            self._bins = FabricBinaries.locate(self.settings.tools_dir)
        return self._bins

    @property
    def chaincode(self) -> ChaincodeDeployment:
        """The registry chaincode of this network (deploy, upgrade, servers)."""
        return ChaincodeDeployment(self.topology, self.layout, self.bins, self.supervisor, self.settings.health_timeout)

    # ------------------------------------------------------------------ up
    def up(self, progress: Progress | None = None) -> UpReport:
        """Brings the whole network up, doing only what is missing.

        Raises:
            NodeFailedError: A process failed to start or become healthy; names its log.
            NetworkError: Any other failure, with the failing step in the message.
        """
        say = progress or (lambda _msg: None)
        t0 = time.monotonic()
        actions: list[str] = []
        topo, layout, bins = self.topology, self.layout, self.bins
        self._claim_state_dir()

        # 1. Certificate authorities.
        servers = {o.name: CAServer(o.ca, o, layout, bins) for o in topo.organizations}
        for org in topo.organizations:
            srv = servers[org.name]
            if not srv.initialized:
                say(f"initialising {org.ca.name}")
                srv.initialize()
                actions.append(f"initialised {org.ca.name}")
            if self.supervisor.running(org.ca.name) is None:
                self._check_ports_free(org.ca.name, [org.ca.port, org.ca.operations_port], org.ca.host)
                srv.start(self.supervisor)
                actions.append(f"started {org.ca.name}")
        self._wait_healthy({o.ca.name: servers[o.name].healthy for o in topo.organizations}, "CA")

        # 2. Identities.
        say("enrolling identities")
        by_org = enroll_organizations(topo, topo.organizations, layout, bins)
        for org in topo.organizations:
            enrolled = by_org[org.name]
            if enrolled:
                say(f"enrolled {', '.join(enrolled)}")
                actions.append(f"enrolled {len(enrolled)} identities of {org.name}")

        # 3. Configuration and genesis block.
        if write_node_config(bins.sampleconfig, layout):
            actions.append("wrote core.yaml and orderer.yaml")
        if write_configtx(topo, layout):
            actions.append("wrote configtx.yaml")
        if create_genesis_block(topo, layout, bins):
            actions.append(f"created the genesis block of channel {topo.channel}")

        # 4. Nodes.
        started = []
        for node in topo.nodes:
            if self.supervisor.running(node.id) is None:
                self._check_ports_free(node.id, node.ports, node.host)
                say(f"starting {node.id}")
                start_node(topo, node, layout, bins, self.supervisor)
                started.append(node.id)
        actions += [f"started {n}" for n in started]
        t_nodes = time.monotonic()
        self._wait_healthy({n.id: (lambda n=n: node_health(topo, n, layout)) for n in topo.nodes}, "node")
        seconds_to_healthy = time.monotonic() - t_nodes

        # 5. Channel.
        for node in topo.orderers:
            if join_orderer(topo, node, layout, bins):
                actions.append(f"joined {node.id} to {topo.channel}")
        for node in topo.peers:
            if join_peer(topo, node, layout, bins):
                actions.append(f"joined {node.id} to {topo.channel}")
        self.wait_heights_converged()
        self.wait_raft_leader()
        self.wait_gossip_converged()

        # 6. Connection profile for clients.
        if write_if_changed(layout.connection_profile, connection_profile_yaml(topo, layout)):
            actions.append("wrote the connection profile")

        # 7. Chaincode servers of a deployed chaincode (deploying is `chaincode deploy`).
        actions += self.chaincode.start_servers()
        return UpReport(actions, time.monotonic() - t0, seconds_to_healthy)

    def _check_ports_free(self, name: str, ports: list[int] | tuple[int, ...], host: str) -> None:
        """Refuses to start ``name`` on a port another program holds; a port still held for a moment by a process
        that was just stopped (``down`` then ``up``) is waited for, up to :data:`PORT_RELEASE_SECONDS`."""
        for port in ports:
            exc = wait_port_free(host, port, PORT_RELEASE_SECONDS)  # at once when it is free
            if exc is None:
                continue
            raise NetworkError(
                f"cannot start {name}: port {host}:{port} is already in use by another "
                f"program ({exc.strerror}); stop it or set {PORT_BASE_ENV}"
            ) from exc

    def _wait_healthy(self, checks: dict[str, HealthCheck], what: str) -> None:
        wait_healthy(self.supervisor, checks, self.settings.health_timeout, what, NodeFailedError)

    def _node_heights(self, node: Node) -> dict[str, int]:
        """A node's height per channel (peers from metrics, orderers from the admin API)."""
        return node_heights(self.topology, node, self.layout)

    def heights(self) -> dict[str, int]:
        """The channel's height per node that reports one."""
        return channel_heights(self.topology, self.layout)

    def _limit(self, timeout: float | None) -> float:
        return self.settings.health_timeout if timeout is None else timeout

    def wait_heights_converged(self, timeout: float | None = None) -> dict[str, int]:
        """Waits until every orderer and peer reports the same channel height."""
        return wait_heights_converged(self.topology, self.layout, self._limit(timeout))

    def wait_gossip_converged(self, timeout: float | None = None) -> None:
        """Waits until every peer knows every other peer of the channel through gossip (see ``convergence``)."""
        wait_gossip_converged(self.topology, self.layout, self._limit(timeout))

    def wait_raft_leader(self, timeout: float | None = None) -> str:
        """Waits until one running orderer reports itself Raft leader of the channel."""
        return wait_raft_leader(self.topology, self.layout, self.supervisor, self._limit(timeout))

    # ------------------------------------------------------------------ down / clean
    def down(self) -> list[str]:
        """Stops every process this network started (nodes first, then CAs); keeps all data."""
        stopped = []
        order = [server_name(self.topology, o) for o in self.topology.application_orgs]
        order += [n.id for n in self.topology.peers] + [n.id for n in self.topology.orderers]
        order += [ca.name for ca in self.topology.cas]
        order += [n for n in self.supervisor.names() if n not in order]
        for name in order:
            if self.supervisor.stop(name):
                stopped.append(name)
        return stopped

    def clean(self) -> list[str]:
        """Stops everything and deletes all generated state.

        Raises:
            NetworkError: If the folder exists but was not created by ``up`` (no marker):
                nothing is stopped or deleted then.
        """
        root = self.layout.root
        try:
            check_marked_dir(root, STATE_MARKER)
            stopped = self.down()
            remove_marked_dir(root, STATE_MARKER)
        except PermissionError as exc:
            raise NetworkError(str(exc)) from exc
        return stopped

    def _fingerprint(self, roles: tuple[str, ...] = ()) -> str:
        """Identifies the topology (after the port shift) that the state was generated for.

        The roles are left out: a new role (``evaluator`` in 1.4.0) only adds identities, which the
        next ``up`` enrols, so it must not lock an existing network out. ``roles`` rebuilds the
        fingerprint of releases that counted them (:data:`_FINGERPRINTED_ROLES`).
        """
        return hashlib.sha256(repr(replace(self.topology, roles=roles)).encode()).hexdigest()

    def _earlier_fingerprints(self) -> set[str]:
        """The fingerprints releases before 1.4.0 wrote for this topology (they included its roles)."""
        role_sets = {self.topology.roles, *_FINGERPRINTED_ROLES}
        return {self._fingerprint(roles) for roles in role_sets}

    def _claim_state_dir(self) -> None:
        """Marks the state folder as ours (0700), or checks it was made for this same topology.

        Raises:
            NetworkError: The folder is not ours, or was generated for another topology or port base.
        """
        root = self.layout.root
        try:
            claim_marked_dir(root, STATE_MARKER, self._fingerprint(), same_note=True)
        except MarkerMismatchError as exc:
            if exc.recorded in self._earlier_fingerprints():
                # The same topology, fingerprinted by an earlier release: record today's fingerprint.
                write_if_changed(root / STATE_MARKER, self._fingerprint() + "\n")
                return
            raise NetworkError(
                f"the network in {root} was generated for a different topology or port base; "
                f"run `make clean` first, or use another {STATE_DIR_ENV}"
            ) from exc
        except PermissionError as exc:
            raise NetworkError(str(exc)) from exc

    # ------------------------------------------------------------------ status
    def status(self, with_members: bool = True) -> NetworkStatus:
        """Health, ledger heights, memory and channel members of every process."""
        topo, layout, sup = self.topology, self.layout, self.supervisor
        procs: list[ServerStatus] = []
        for org in topo.organizations:
            details = {"kind": "ca", "org": org.name, "heights": {}}
            health = functools.partial(ca_health, org.ca, layout)
            procs.append(ServerStatus.observe(sup, org.ca.name, org.ca.url, health, details))
        for n in topo.nodes:
            st = ServerStatus.observe(sup, n.id, n.address, functools.partial(node_health, topo, n, layout))
            heights = self._node_heights(n) if st.running else {}
            procs.append(replace(st, details={"kind": n.kind, "org": n.org, "heights": heights}))
        if layout.chaincode_record.is_file():
            cc = self.chaincode
            for org in topo.application_orgs:
                address = org.chaincode_server.address if org.chaincode_server else ""
                details = {"kind": "chaincode", "org": org.name, "heights": {}}
                health = functools.partial(cc.server_health, org)
                procs.append(ServerStatus.observe(sup, server_name(topo, org), address, health, details))
        members: dict[str, list[str]] = {}
        if with_members and all(p.running for p in procs if p.details["kind"] in ("peer", "orderer")):
            try:
                members = channel_members(fetch_config(topo, layout, self.bins))
            except NetworkError as exc:
                members = {"error": [str(exc).splitlines()[0]]}
        return NetworkStatus(topo.channel, procs, members, str(layout.root))

    # ------------------------------------------------------------------ clients
    def logs(self) -> dict[str, str]:
        """Log file path per process name."""
        names = [ca.name for ca in self.topology.cas] + [n.id for n in self.topology.nodes]
        names += [n for n in self.supervisor.names() if n not in names]
        return {n: str(self.supervisor.log_path(n)) for n in names}

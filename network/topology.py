"""The network topology: organisations, their CA and nodes, hosts and ports.

The topology file is the single source from which CA settings, identities,
``configtx.yaml``, node environments and the connection profile are generated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from modelledger.network.errors import TopologyError

ROLES = ("data_scientist", "registrar", "evaluator", "approver", "operator", "auditor", "admin")
ROLE_ATTRIBUTE = "modelledger.role"

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,62}$")
_MSP_RE = re.compile(r"^[A-Za-z][A-Za-z0-9.-]{0,62}$")
_CHANNEL_RE = re.compile(r"^[a-z][a-z0-9.-]{0,248}$")
_CHAINCODE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")

OrgType = Literal["orderer", "application"]


@dataclass(frozen=True)
class Endpoint:
    """A host and port."""

    host: str
    port: int

    @property
    def address(self) -> str:
        """``host:port``."""
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class CA:
    """An organisation's Fabric CA server."""

    org: str
    host: str
    port: int
    operations_port: int

    @property
    def name(self) -> str:
        """The CA name and process name, e.g. ``ca-Org1``."""
        return f"ca-{self.org}"

    @property
    def url(self) -> str:
        """The CA's HTTPS base URL."""
        return f"https://{self.host}:{self.port}"


@dataclass(frozen=True)
class Node:
    """An orderer or a peer."""

    org: str
    msp_id: str
    kind: Literal["orderer", "peer"]
    name: str
    host: str
    port: int
    operations_port: int
    admin_port: int | None = None
    chaincode_port: int | None = None

    @property
    def id(self) -> str:
        """Unique process name, e.g. ``peer0-Org1``."""
        return f"{self.name}-{self.org}"

    @property
    def ports(self) -> tuple[int, ...]:
        """Every port the node listens on."""
        return tuple(p for p in (self.port, self.operations_port, self.admin_port, self.chaincode_port) if p)

    @property
    def address(self) -> str:
        """The node's gRPC ``host:port``."""
        return f"{self.host}:{self.port}"

    @property
    def admin_address(self) -> str:
        """An orderer's channel-participation admin ``host:port``."""
        if self.admin_port is None:
            raise TopologyError(f"{self.id} has no admin port")
        return f"{self.host}:{self.admin_port}"

    @property
    def operations_address(self) -> str:
        """The operations (health, metrics) ``host:port``."""
        return f"{self.host}:{self.operations_port}"


@dataclass(frozen=True)
class Organization:
    """An organisation: its MSP, its CA and its nodes."""

    name: str
    msp_id: str
    domain: str
    type: OrgType
    ca: CA
    nodes: tuple[Node, ...]
    chaincode_server: Endpoint | None = None

    @property
    def orderers(self) -> tuple[Node, ...]:
        """Enabled orderer nodes."""
        return tuple(n for n in self.nodes if n.kind == "orderer")

    @property
    def peers(self) -> tuple[Node, ...]:
        """Enabled peer nodes."""
        return tuple(n for n in self.nodes if n.kind == "peer")


@dataclass(frozen=True)
class Topology:
    """The whole network."""

    channel: str
    roles: tuple[str, ...]
    organizations: tuple[Organization, ...]
    chaincode: str = "registry"

    @property
    def orderer_orgs(self) -> tuple[Organization, ...]:
        """Organisations that run orderers."""
        return tuple(o for o in self.organizations if o.type == "orderer")

    @property
    def application_orgs(self) -> tuple[Organization, ...]:
        """Organisations that run peers and endorse."""
        return tuple(o for o in self.organizations if o.type == "application")

    @property
    def orderers(self) -> tuple[Node, ...]:
        """Every enabled orderer."""
        return tuple(n for o in self.orderer_orgs for n in o.orderers)

    @property
    def peers(self) -> tuple[Node, ...]:
        """Every enabled peer."""
        return tuple(n for o in self.application_orgs for n in o.peers)

    @property
    def nodes(self) -> tuple[Node, ...]:
        """Every enabled node, orderers first."""
        return self.orderers + self.peers

    @property
    def cas(self) -> tuple[CA, ...]:
        """Every CA server."""
        return tuple(o.ca for o in self.organizations)

    def org(self, name: str) -> Organization:
        """Returns the organisation called ``name`` (or with that MSP id)."""
        for o in self.organizations:
            if name in (o.name, o.msp_id):
                return o
        raise TopologyError(f"no organisation named {name!r}")

    def all_ports(self) -> list[int]:
        """Every port the network listens on."""
        ports: list[int] = []
        for o in self.organizations:
            ports += [o.ca.port, o.ca.operations_port]
            if o.chaincode_server is not None:
                ports.append(o.chaincode_server.port)
        for n in self.nodes:
            ports += n.ports
        return ports


def _require(mapping: dict[str, Any], key: str, where: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise TopologyError(f"{where}.{key}: required field is missing")
    return mapping[key]


def _port(value: Any, where: str, shift: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise TopologyError(f"{where}: must be a port number from 1 to 65535, got {value!r}")
    shifted = value + shift
    if not 1024 <= shifted <= 65535:
        raise TopologyError(f"{where}: port {value} shifted by {shift} is {shifted}, outside 1024-65535")
    return shifted


def _host(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or any(c in value for c in " /:@"):
        raise TopologyError(f"{where}: must be a host name or IP address, got {value!r}")
    return value


def parse_topology(data: Any, port_base: int | None = None) -> Topology:
    """Validates a topology mapping and builds a :class:`Topology`.

    Args:
        data: The parsed YAML document.
        port_base: When given, every port is shifted by ``port_base - data["port_base"]``.

    Returns:
        The topology, with only enabled nodes.

    Raises:
        TopologyError: On any malformed field; the message names the field.
    """
    if not isinstance(data, dict):
        raise TopologyError("topology: must be a mapping")
    channel = _require(data, "channel", "topology")
    if not isinstance(channel, str) or not _CHANNEL_RE.match(channel):
        raise TopologyError(f"topology.channel: must match {_CHANNEL_RE.pattern}, got {channel!r}")
    base = _require(data, "port_base", "topology")
    if not isinstance(base, int) or isinstance(base, bool):
        raise TopologyError(f"topology.port_base: must be an integer, got {base!r}")
    shift = 0 if port_base is None else port_base - base
    roles = tuple(data.get("roles", ROLES))
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise TopologyError(f"topology.roles: unknown roles {unknown}; allowed: {list(ROLES)}")

    orgs: list[Organization] = []
    raw_orgs = _require(data, "organizations", "topology")
    if not isinstance(raw_orgs, list) or not raw_orgs:
        raise TopologyError("topology.organizations: must be a non-empty list")
    for i, raw in enumerate(raw_orgs):
        where = f"organizations[{i}]"
        name = _require(raw, "name", where)
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise TopologyError(f"{where}.name: must match {_NAME_RE.pattern}, got {name!r}")
        where = f"organizations[{name}]"
        msp_id = _require(raw, "msp_id", where)
        if not isinstance(msp_id, str) or not _MSP_RE.match(msp_id):
            raise TopologyError(f"{where}.msp_id: must match {_MSP_RE.pattern}, got {msp_id!r}")
        domain = _host(_require(raw, "domain", where), f"{where}.domain")
        org_type = _require(raw, "type", where)
        if org_type not in ("orderer", "application"):
            raise TopologyError(f"{where}.type: must be 'orderer' or 'application', got {org_type!r}")
        raw_ca = _require(raw, "ca", where)
        ca = CA(
            org=name,
            host=_host(_require(raw_ca, "host", f"{where}.ca"), f"{where}.ca.host"),
            port=_port(_require(raw_ca, "port", f"{where}.ca"), f"{where}.ca.port", shift),
            operations_port=_port(
                _require(raw_ca, "operations_port", f"{where}.ca"), f"{where}.ca.operations_port", shift
            ),
        )
        nodes: list[Node] = []
        kind: Literal["orderer", "peer"] = "orderer" if org_type == "orderer" else "peer"
        for j, rn in enumerate(_require(raw, "nodes", where) or []):
            nwhere = f"{where}.nodes[{j}]"
            enabled = rn.get("enabled", True) if isinstance(rn, dict) else True
            if not isinstance(enabled, bool):
                raise TopologyError(f"{nwhere}.enabled: must be true or false, got {enabled!r}")
            nname = _require(rn, "name", nwhere)
            if not isinstance(nname, str) or not _NAME_RE.match(nname):
                raise TopologyError(f"{nwhere}.name: must match {_NAME_RE.pattern}, got {nname!r}")
            allowed = {"name", "host", "port", "operations_port", "enabled"} | (
                {"admin_port"} if kind == "orderer" else {"chaincode_port"}
            )
            extra = sorted(set(rn) - allowed)
            if extra:
                raise TopologyError(f"{nwhere}: unknown fields {extra} for a {kind}")
            if not enabled:
                continue
            nodes.append(
                Node(
                    org=name,
                    msp_id=msp_id,
                    kind=kind,
                    name=nname,
                    host=_host(_require(rn, "host", nwhere), f"{nwhere}.host"),
                    port=_port(_require(rn, "port", nwhere), f"{nwhere}.port", shift),
                    operations_port=_port(_require(rn, "operations_port", nwhere), f"{nwhere}.operations_port", shift),
                    admin_port=(
                        _port(_require(rn, "admin_port", nwhere), f"{nwhere}.admin_port", shift)
                        if kind == "orderer"
                        else None
                    ),
                    chaincode_port=(
                        _port(_require(rn, "chaincode_port", nwhere), f"{nwhere}.chaincode_port", shift)
                        if kind == "peer"
                        else None
                    ),
                )
            )
        if not nodes:
            raise TopologyError(f"{where}.nodes: at least one enabled node is required")
        cc_server = None
        if org_type == "application":
            cwhere = f"{where}.chaincode_server"
            raw_cc = _require(raw, "chaincode_server", where)
            cc_server = Endpoint(
                host=_host(_require(raw_cc, "host", cwhere), f"{cwhere}.host"),
                port=_port(_require(raw_cc, "port", cwhere), f"{cwhere}.port", shift),
            )
        elif "chaincode_server" in raw:
            raise TopologyError(f"{where}.chaincode_server: only application organisations run chaincode")
        orgs.append(Organization(name, msp_id, domain, org_type, ca, tuple(nodes), cc_server))

    chaincode = data.get("chaincode", "registry")
    if not isinstance(chaincode, str) or not _CHAINCODE_RE.match(chaincode):
        raise TopologyError(f"topology.chaincode: must match {_CHAINCODE_RE.pattern}, got {chaincode!r}")
    topo = Topology(channel=channel, roles=roles, organizations=tuple(orgs), chaincode=chaincode)
    _check_unique(topo)
    return topo


def _check_unique(topo: Topology) -> None:
    names = [o.name for o in topo.organizations]
    msps = [o.msp_id for o in topo.organizations]
    for label, values in (("organisation name", names), ("msp_id", msps)):
        dupes = sorted({v for v in values if values.count(v) > 1})
        if dupes:
            raise TopologyError(f"topology: duplicate {label} {dupes}")
    if not topo.orderer_orgs:
        raise TopologyError("topology: at least one organisation of type 'orderer' is required")
    if not topo.application_orgs:
        raise TopologyError("topology: at least one organisation of type 'application' is required")
    seen: dict[tuple[str, int], str] = {}
    for o in topo.organizations:
        entries = [(o.ca.host, o.ca.port, o.ca.name), (o.ca.host, o.ca.operations_port, o.ca.name)]
        if o.chaincode_server is not None:
            entries.append((o.chaincode_server.host, o.chaincode_server.port, f"chaincode server of {o.name}"))
        for n in o.nodes:
            entries += [(n.host, p, n.id) for p in n.ports]
        for host, port, owner in entries:
            if (host, port) in seen:
                raise TopologyError(f"topology: port {host}:{port} is used twice ({seen[(host, port)]} and {owner})")
            seen[(host, port)] = owner
        ids = [n.id for n in o.nodes]
        if len(set(ids)) != len(ids):
            raise TopologyError(f"organizations[{o.name}].nodes: duplicate node names")


def load_topology(path: Path, port_base: int | None = None) -> Topology:
    """Reads and validates a topology file.

    Raises:
        TopologyError: If the file is missing, not YAML, or malformed.
    """
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise TopologyError(f"cannot read topology file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise TopologyError(f"topology file {path} is not valid YAML: {exc}") from exc
    return parse_topology(data, port_base)

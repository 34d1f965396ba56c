"""Deploying and running the registry chaincode as a service (ccaas).

Each application organisation runs one chaincode server process, built from
``chaincode/`` and supervised like the nodes. Its peers reach it through a
ccaas package whose ``connection.json`` names the server's address and carries
the TLS material for mutual TLS between peer and chaincode.

``deploy`` is idempotent: it builds, packages, installs, starts, approves and
commits only what is missing, then checks that every peer can call the
chaincode. ``upgrade`` does the same for the next sequence with a version that
names the source digest. The ccaas packages do not change between versions,
so an upgrade restarts the servers on the new binary and commits the new
definition; the world state lives in the peers and is untouched.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from modelledger.network.binaries import FabricBinaries
from modelledger.network.chaincode_lifecycle import Definition, PeerCLI, endorsement_policy
from modelledger.network.errors import CommandError, NetworkError, NodeFailedError
from modelledger.network.layout import NetworkLayout
from modelledger.network.topology import Organization, Topology
from modelledger.runtime.lifecycle import wait_healthy
from modelledger.runtime.private_files import PRIVATE_UMASK, make_private_dir, write_private_file
from modelledger.runtime.processes import ProcessFailedError, ProcessSupervisor, wait_port_free
from modelledger.runtime.settings import REPO_ROOT
from modelledger.runtime.status import ServerStatus
from modelledger.runtime.tls import create_tls_ca, issue_tls_certificate, tls_context, tls_handshake

Progress = Callable[[str], None]

CHAINCODE_SOURCE = REPO_ROOT / "chaincode"
# Files whose content decides the chaincode binary.
_SOURCE_SUFFIXES = (".go", "go.mod", "go.sum")


class ChaincodeError(NetworkError):
    """The chaincode could not be built, deployed or reached."""


# ---------------------------------------------------------------------- source and packages
def source_digest(src: Path = CHAINCODE_SOURCE) -> str:
    """SHA-256 over the chaincode's Go sources (names and contents, tests excluded)."""
    h = hashlib.sha256()
    files = sorted(
        p
        for p in src.rglob("*")
        if p.is_file() and p.name.endswith(_SOURCE_SUFFIXES) and not p.name.endswith("_test.go")
    )
    if not files:
        raise ChaincodeError(f"no Go sources found in {src}")
    for p in files:
        rel = p.relative_to(src).as_posix()
        data = p.read_bytes()
        h.update(f"{rel}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def build_binary(out: Path, src: Path = CHAINCODE_SOURCE) -> bool:
    """Builds the chaincode server into ``out`` unless it exists; returns True if built now."""
    if out.is_file():
        return False
    go = shutil.which("go")
    if go is None:
        raise ChaincodeError("the `go` command is not on PATH; it is needed to build the chaincode")
    make_private_dir(out.parent)
    tmp = out.with_suffix(".tmp")
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false"}
    proc = subprocess.run(
        [go, "build", "-trimpath", "-o", str(tmp), "."],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
        umask=PRIVATE_UMASK,
    )
    if proc.returncode != 0:
        raise ChaincodeError(f"go build in {src} failed:\n{(proc.stdout + proc.stderr).strip()[-3000:]}")
    tmp.replace(out)
    return True


def _tar_gz(files: dict[str, bytes]) -> bytes:
    """A gzipped tar of ``files`` with fixed metadata, so equal input gives equal bytes."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(files[name]))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def ccaas_package(label: str, connection: dict[str, Any]) -> bytes:
    """A chaincode-as-a-service package: ``metadata.json`` plus ``code.tar.gz`` with ``connection.json``."""
    code = _tar_gz({"connection.json": json.dumps(connection, indent=2, sort_keys=True).encode()})
    metadata = json.dumps({"label": label, "type": "ccaas"}, sort_keys=True).encode()
    return _tar_gz({"code.tar.gz": code, "metadata.json": metadata})


def package_id(label: str, package: bytes) -> str:
    """The id Fabric gives an installed package: ``label:sha256(package)``."""
    return f"{label}:{hashlib.sha256(package).hexdigest()}"


def server_name(topo: Topology, org: Organization) -> str:
    """Process name of an organisation's chaincode server, e.g. ``registry-Org1``."""
    return f"{topo.chaincode}-{org.name}"


def settings_joins(settings: dict[str, Any], msp_ids: list[str], deployment_tx_id: str) -> list[str]:
    """The organisations the deployment makes join the approval set, each through its own admin.

    Args:
        settings: The ledger's settings (``GetSettings``; ``{}`` or without
            ``lastChange`` while unset).
        msp_ids: The topology's application organisations.
        deployment_tx_id: The transaction of the last settings change the
            deployment made ("" if none).

    Returns:
        The MSP ids of ``msp_ids`` missing from the approval set, in order,
        while the settings are unset or were last changed by the deployment
        itself; nothing once anyone else changed them (then they are the
        organisations' admins' to change).
    """
    last = (settings.get("lastChange") or {}).get("txId", "")
    if last and last != deployment_tx_id:
        return []
    present = set(settings.get("approvalOrgs") or [])
    return [msp for msp in msp_ids if msp not in present]


# ---------------------------------------------------------------------- deployment record
@dataclass
class DeploymentRecord:
    """What ``deploy`` last committed, kept in the state folder."""

    name: str
    version: str
    sequence: int
    source_digest: str
    binary: str
    package_ids: dict[str, str]
    # The transaction of the last settings change the deployment made (see ``settings_joins``).
    settings_tx_id: str = ""

    @classmethod
    def load(cls, path: Path) -> DeploymentRecord | None:
        """Reads the record, or None if there is none."""
        try:
            return cls(**json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as exc:
            raise ChaincodeError(f"{path} is not a valid deployment record: {exc}") from exc

    def save(self, path: Path) -> None:
        """Writes the record atomically (0600)."""
        write_private_file(path, json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")


@dataclass
class DeployReport:
    """What ``deploy`` or ``upgrade`` did; no actions means nothing changed."""

    name: str
    version: str
    sequence: int
    actions: list[str]
    seconds: float
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DeploymentPlan:
    """Which definition ``deploy`` or ``upgrade`` aims at, and from which source."""

    sequence: int
    version: str
    source_digest: str
    warnings: tuple[str, ...] = ()


def definition_version(sequence: int, digest: str) -> str:
    """The version string of a definition: ``<sequence>-<first 12 hex of the source digest>``."""
    return f"{sequence}-{digest[:12]}"


def plan_deployment(
    committed: dict[str, Any] | None,
    record: DeploymentRecord | None,
    current_digest: str,
    msp_ids: list[str],
    upgrade: bool,
) -> DeploymentPlan:
    """Decides the target definition from what is committed, what was recorded and the source.

    Args:
        committed: ``querycommitted`` output, or None if nothing is committed.
        record: The local deployment record, if any.
        current_digest: Digest of the chaincode source now.
        msp_ids: The application organisations of the topology.
        upgrade: Move to the next sequence with the current source.

    Raises:
        ChaincodeError: Deploying would run code or an endorsement policy other than the
            committed one; the message says to upgrade instead.
    """
    if committed is None or upgrade:
        sequence = int(committed["sequence"]) + 1 if committed else 1
        return DeploymentPlan(sequence, definition_version(sequence, current_digest), current_digest)

    sequence = int(committed["sequence"])
    version = str(committed["version"])
    members = sorted(committed.get("approvals", {}))
    if members and members != sorted(msp_ids):
        raise ChaincodeError(
            f"the committed definition of sequence {sequence} is endorsed by {members} but the topology has "
            f"{sorted(msp_ids)}; run `make upgrade-chaincode` to commit a definition for the new organisations"
        )
    if record is not None and record.sequence == sequence and record.version == version:
        warnings: tuple[str, ...] = ()
        if record.source_digest != current_digest:
            warnings = (
                f"chaincode/ changed since version {version} was deployed; "
                "run `make upgrade-chaincode` to deploy the change",
            )
        return DeploymentPlan(sequence, version, record.source_digest, warnings)
    # No record of this definition (state folder lost it, or a crash came before the commit):
    # the committed version names the digest prefix of the source it was made from.
    committed_prefix = version.partition("-")[2]
    if committed_prefix != current_digest[:12]:
        raise ChaincodeError(
            f"committed version {version} was built from other sources than chaincode/ now "
            f"({current_digest[:12]}) and no local record of its binary matches; "
            "run `make upgrade-chaincode` to deploy the current source as the next version"
        )
    return DeploymentPlan(sequence, version, current_digest)


# ---------------------------------------------------------------------- the deployer
class ChaincodeDeployment:
    """Builds, deploys, upgrades and supervises the registry chaincode of one network."""

    def __init__(
        self,
        topo: Topology,
        layout: NetworkLayout,
        bins: FabricBinaries,
        supervisor: ProcessSupervisor,
        health_timeout: float = 60.0,
        source: Path = CHAINCODE_SOURCE,
    ) -> None:
        self.topo = topo
        self.layout = layout
        self.bins = bins
        self.supervisor = supervisor
        self.health_timeout = health_timeout
        self.source = source
        self.cli = PeerCLI(topo, layout, bins)

    # ------------------------------------------------------------------ deploy / upgrade
    def deploy(self, upgrade: bool = False, progress: Progress | None = None) -> DeployReport:
        """Deploys the chaincode, or with ``upgrade`` moves it to the next sequence.

        Raises:
            ChaincodeError: A build, lifecycle or health step failed; the message names it.
            NodeFailedError: A chaincode server exited or stayed unreachable; names its log.
        """
        say = progress or (lambda _msg: None)
        t0 = time.monotonic()
        actions: list[str] = []
        warnings: list[str] = []
        name = self.topo.chaincode
        current_digest = source_digest(self.source)
        committed = self.cli.committed(name)
        record = DeploymentRecord.load(self.layout.chaincode_record)

        plan = plan_deployment(
            committed, record, current_digest, [o.msp_id for o in self.topo.application_orgs], upgrade
        )
        sequence, version, digest = plan.sequence, plan.version, plan.source_digest
        warnings += plan.warnings
        definition = Definition(name, version, sequence, endorsement_policy(self.topo))

        # 1. Binary.
        binary = self.layout.chaincode_binary(name, digest)
        if not binary.is_file() and digest != current_digest:
            raise ChaincodeError(
                f"the binary of deployed version {version} ({binary}) is gone and chaincode/ has changed "
                "since; run `make upgrade-chaincode`"
            )
        # Record what is about to run before restarting anything, so a crash between the
        # server restart and the commit leaves a record `up` and `deploy` can reconcile.
        say(f"building {name} from chaincode/")
        if build_binary(binary, self.source):
            actions.append(f"built {binary.name}")

        # 2. TLS material, packages, installation.
        package_ids: dict[str, str] = {}
        for org in self.topo.application_orgs:
            if self._ensure_tls(org):
                actions.append(f"enrolled chaincode TLS certificates of {org.name}")
            pkg_path = self.layout.chaincode_package(org, name)
            data = ccaas_package(name, self._connection(org))
            if not pkg_path.is_file() or pkg_path.read_bytes() != data:
                # The package holds the peers' TLS client key: owner-only, like every key file.
                write_private_file(pkg_path, data)
            pkg_path.chmod(0o600)
            pid = package_id(name, data)
            package_ids[org.name] = pid
            for node in org.peers:
                if pid not in self.cli.installed(node):
                    say(f"installing {name} on {node.id}")
                    self.cli.install(node, pkg_path)
                    actions.append(f"installed {name} on {node.id}")

        # 3. Approvals (each org approves its own package).
        if not committed or int(committed["sequence"]) < sequence:
            for org in self.topo.application_orgs:
                approved = self.cli.approved(org, name, sequence)
                if approved is None or not _same_approval(approved, definition, package_ids[org.name]):
                    say(f"approving {name} {version} (sequence {sequence}) for {org.name}")
                    self.cli.approve(org, definition, package_ids[org.name])
                    actions.append(f"approved sequence {sequence} for {org.name}")

        # 4. Servers, on the binary of the definition about to be (or already) committed.
        settings_tx_id = record.settings_tx_id if record is not None else ""
        saved = DeploymentRecord(name, version, sequence, digest, str(binary), package_ids, settings_tx_id)
        saved.save(self.layout.chaincode_record)
        for org in self.topo.application_orgs:
            if self._start_server(org, binary, package_ids[org.name]):
                actions.append(f"started {server_name(self.topo, org)}")
        self._wait_servers()

        # 5. Commit.
        if not committed or int(committed["sequence"]) < sequence:
            readiness = self.cli.commit_readiness(definition)
            missing = sorted(msp for msp, ok in readiness.items() if not ok)
            if missing:
                raise ChaincodeError(f"cannot commit {name} sequence {sequence}: not approved by {missing}")
            say(f"committing {name} {version} (sequence {sequence})")
            self.cli.commit(definition)
            actions.append(f"committed {name} {version} (sequence {sequence})")

        # 6. Channel settings, then every peer answers.
        actions += self._ensure_settings(saved)
        warnings += self._check_settings()
        self._wait_callable()
        return DeployReport(name, version, sequence, actions, time.monotonic() - t0, warnings)

    # ------------------------------------------------------------------ pieces
    def _connection(self, org: Organization) -> dict[str, Any]:
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

    def _ensure_tls(self, org: Organization) -> bool:
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

    def _start_server(self, org: Organization, binary: Path, ccid: str) -> bool:
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

    def server_health(self, org: Organization) -> tuple[bool, str]:
        """A mutual-TLS handshake with the org's chaincode server, as its peers do it."""
        assert org.chaincode_server is not None
        client = self.layout.chaincode_client_tls(org)
        ctx = tls_context(client.ca, client.cert, client.key)
        ep = org.chaincode_server
        failure = tls_handshake(ep.host, ep.port, ctx)
        return (True, "TLS handshake OK") if failure is None else (False, failure)

    def _wait_servers(self) -> None:
        checks = {server_name(self.topo, o): (lambda o=o: self.server_health(o)) for o in self.topo.application_orgs}
        try:
            wait_healthy(self.supervisor, checks, self.health_timeout, "chaincode server")
        except ProcessFailedError as exc:
            raise NodeFailedError(exc.node, exc.log_path, exc.reason) from exc

    def _ensure_settings(self, record: DeploymentRecord) -> list[str]:
        """Puts every application organisation in the approval set, each through its own admin.

        The chaincode lets an admin add only its own organisation, from the first
        ``SetSettings`` on; so the first organisation's admin sets the settings
        naming itself, then each other organisation's admin joins. The last
        change made here is kept in the deployment record: a later deployment
        completes an interrupted bootstrap (or joins an organisation added to the
        topology), but settings that anyone changed since belong to the
        organisations' admins and are left alone (see ``settings_joins``).

        Returns:
            What it did, as action lines.
        """
        first = self.topo.application_orgs[0]
        current = self._retry_query(lambda: self.cli.query(first, "admin", "GetSettings", []))
        settings = json.loads(current) if current else {}
        joining = settings_joins(settings, [o.msp_id for o in self.topo.application_orgs], record.settings_tx_id)
        actions = []
        for org in self.topo.application_orgs:
            if org.msp_id not in joining:
                continue
            orgs = sorted({*(settings.get("approvalOrgs") or []), org.msp_id})
            body = {"approvalOrgs": orgs, "strictDatasets": bool(settings.get("strictDatasets"))}
            result = self.cli.invoke(org, "admin", "SetSettings", [json.dumps(body, sort_keys=True)])
            settings = json.loads(result.payload)
            record.settings_tx_id = settings["lastChange"]["txId"]
            record.save(self.layout.chaincode_record)
            actions.append(f"{org.msp_id} joined the approval set (its admin's SetSettings)")
        return actions

    def _check_settings(self) -> list[str]:
        """Warns when the stored approval set differs from the topology's organisations."""
        org = self.topo.application_orgs[0]
        settings = json.loads(self._retry_query(lambda: self.cli.query(org, "auditor", "GetSettings", [])) or "{}")
        have = sorted(settings.get("approvalOrgs") or [])
        want = sorted(o.msp_id for o in self.topo.application_orgs)
        if have == want:
            return []
        who = (settings.get("lastChange") or {}).get("actor", {}).get("mspId", "?")
        return [f"the approval set on the ledger is {have} (last set by an admin of {who}); the topology has {want}"]

    def _retry_query(self, call: Callable[[], str]) -> str:
        """Runs a query until the peer reaches the chaincode (the first call launches it)."""
        deadline = time.monotonic() + self.health_timeout
        while True:
            try:
                return call()
            except CommandError as exc:
                if "NOT_FOUND" in exc.output:
                    return ""
                if time.monotonic() > deadline:
                    raise ChaincodeError(f"the chaincode does not answer: {exc}") from exc
                time.sleep(0.5)

    def _wait_callable(self) -> None:
        """Every peer answers a query through its organisation's chaincode server."""
        for org in self.topo.application_orgs:
            for node in org.peers:
                self._retry_query(lambda org=org, node=node: self.cli.query(org, "admin", "GetSettings", [], node))

    # ------------------------------------------------------------------ run-time
    def start_servers(self) -> list[str]:
        """Starts the servers of the recorded deployment if they are down (used by ``up``).

        Only when the record matches the committed definition: otherwise (a deployment
        interrupted before its commit) it starts nothing and says to run ``deploy``.
        Returns what it did, as action lines.
        """
        record = DeploymentRecord.load(self.layout.chaincode_record)
        if record is None:
            return []
        names = [server_name(self.topo, org) for org in self.topo.application_orgs]
        if all(self.supervisor.running(n) for n in names):
            return []
        committed = self.cli.committed(record.name)
        if committed is None or int(committed["sequence"]) != record.sequence:
            seq = committed["sequence"] if committed else "nothing"
            return [
                f"did not start the chaincode servers: the local record (sequence {record.sequence}) "
                f"does not match the committed definition ({seq}); run `make deploy-chaincode`"
            ]
        started = []
        for org in self.topo.application_orgs:
            ccid = record.package_ids.get(org.name)
            if ccid and self._start_server(org, Path(record.binary), ccid):
                started.append(server_name(self.topo, org))
        if started:
            self._wait_servers()
        return [f"started {n}" for n in started]

    def stop_servers(self) -> list[str]:
        """Stops every chaincode server; returns the names stopped."""
        return [
            server_name(self.topo, org)
            for org in self.topo.application_orgs
            if self.supervisor.stop(server_name(self.topo, org))
        ]

    def status(self) -> dict[str, Any]:
        """The recorded deployment, the committed definition and every server's health."""
        record = DeploymentRecord.load(self.layout.chaincode_record)
        servers = []
        for org in self.topo.application_orgs:
            assert org.chaincode_server is not None
            health = functools.partial(self.server_health, org)
            name, address = server_name(self.topo, org), org.chaincode_server.address
            servers.append(ServerStatus.observe(self.supervisor, name, address, health, {"org": org.name}))
        committed = None
        try:
            committed = self.cli.committed(self.topo.chaincode)
        except CommandError as exc:
            committed = {"error": str(exc).splitlines()[0]}
        stale = record is not None and record.source_digest != source_digest(self.source)
        return {
            "name": self.topo.chaincode,
            "deployed": asdict(record) if record else None,
            "committed": committed,
            "source_changed_since_deploy": stale,
            "servers": [s.to_dict() for s in servers],
        }


def _same_approval(approved: dict[str, Any], definition: Definition, package: str) -> bool:
    """Whether a ``queryapproved`` answer matches the definition and package we want."""
    source = json.dumps(approved.get("source", {}))
    return (
        str(approved.get("version")) == definition.version
        and int(approved.get("sequence", -1)) == definition.sequence
        and package in source
    )

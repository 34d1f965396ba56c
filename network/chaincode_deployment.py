"""Deploying the registry chaincode as a service (ccaas): the lifecycle steps, in order.

:class:`ChaincodeDeployment` is what a network exposes as its chaincode. Its
``deploy`` is idempotent: it builds the server binary and the ccaas packages
(:mod:`~modelledger.network.chaincode_build`), installs them on every peer,
approves per organisation, starts the servers
(:mod:`~modelledger.network.chaincode_servers`), commits, puts every
organisation in the approval set of the chaincode's settings, then checks
that every peer can call the chaincode; each step only does what is missing.
The target definition and the record kept in the state folder come from
:mod:`~modelledger.network.chaincode_plan`; the ``peer`` commands from
:mod:`~modelledger.network.chaincode_lifecycle`.

``upgrade`` does the same for the next sequence with a version that names the
source digest. The ccaas packages do not change between versions, so an
upgrade restarts the servers on the new binary and commits the new
definition; the world state lives in the peers and is untouched.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from modelledger.network.binaries import FabricBinaries
from modelledger.network.chaincode_build import CHAINCODE_SOURCE, build_binary, ccaas_package, package_id, source_digest
from modelledger.network.chaincode_lifecycle import Definition, PeerCLI, endorsement_policy
from modelledger.network.chaincode_plan import DeploymentRecord, plan_deployment, settings_joins
from modelledger.network.chaincode_servers import ChaincodeServers, server_name
from modelledger.network.errors import ChaincodeError, CommandError
from modelledger.network.layout import NetworkLayout
from modelledger.network.topology import Organization, Topology
from modelledger.runtime.private_files import write_private_file
from modelledger.runtime.processes import ProcessSupervisor

Progress = Callable[[str], None]


@dataclass
class DeployReport:
    """What ``deploy`` or ``upgrade`` did; no actions means nothing changed."""

    name: str
    version: str
    sequence: int
    actions: list[str]
    seconds: float
    warnings: list[str] = field(default_factory=list)


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
        self.servers = ChaincodeServers(topo, layout, supervisor, health_timeout)

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
            if self.servers.ensure_tls(org):
                actions.append(f"enrolled chaincode TLS certificates of {org.name}")
            pkg_path = self.layout.chaincode_package(org, name)
            data = ccaas_package(name, self.servers.connection(org))
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
            if self.servers.start(org, binary, package_ids[org.name]):
                actions.append(f"started {server_name(self.topo, org)}")
        self.servers.wait_healthy()

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
    def server_health(self, org: Organization) -> tuple[bool, str]:
        """A mutual-TLS handshake with the org's chaincode server, as its peers do it."""
        return self.servers.health(org)

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
        if self.servers.all_running():
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
            if ccid and self.servers.start(org, Path(record.binary), ccid):
                started.append(server_name(self.topo, org))
        if started:
            self.servers.wait_healthy()
        return [f"started {n}" for n in started]

    def stop_servers(self) -> list[str]:
        """Stops every chaincode server; returns the names stopped."""
        return self.servers.stop()

    def status(self) -> dict[str, Any]:
        """The recorded deployment, the committed definition and every server's health."""
        record = DeploymentRecord.load(self.layout.chaincode_record)
        servers = self.servers.statuses()
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

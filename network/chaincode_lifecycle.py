"""The ``peer`` CLI side of chaincode: lifecycle commands, invoke and query.

Each function runs one ``peer`` command as an identity of one organisation
(its admin by default) against that organisation's peers, with TLS to the
peers and the orderer. They are thin on purpose: deployment logic lives in
:mod:`modelledger.network.chaincode_deployment`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelledger.network.binaries import FabricBinaries
from modelledger.network.channel import _orderer_flags
from modelledger.network.errors import CommandError
from modelledger.network.layout import NetworkLayout
from modelledger.network.nodes import peer_admin_env
from modelledger.network.topology import Node, Organization, Topology


@dataclass(frozen=True)
class Definition:
    """A chaincode definition: what each organisation approves and the channel commits."""

    name: str
    version: str
    sequence: int
    signature_policy: str

    def flags(self, channel: str) -> list[str]:
        """The ``peer lifecycle`` flags naming this definition."""
        return [
            "--channelID",
            channel,
            "--name",
            self.name,
            "--version",
            self.version,
            "--sequence",
            str(self.sequence),
            "--signature-policy",
            self.signature_policy,
        ]


@dataclass(frozen=True)
class InvokeResult:
    """A committed transaction as the ``peer`` CLI reported it."""

    tx_id: str
    statuses: dict[str, str]
    payload: str


class ChaincodeCallError(CommandError):
    """A chaincode call through the ``peer`` CLI failed.

    Attributes:
        message: The chaincode's own error message (e.g. ``NOT_FOUND: model ...``), decoded;
            empty when the failure was not a chaincode refusal.
        validation_code: The commit's validation code when the transaction was
            ordered but invalidated (e.g. ``ENDORSEMENT_POLICY_FAILURE``), else empty.
    """

    def __init__(self, cause: CommandError) -> None:
        super().__init__(cause.argv, cause.returncode, cause.output)
        m = _MESSAGE_RE.search(cause.output)
        self.message = _unescape_text_format(m.group(1)).decode("utf-8", errors="replace") if m else ""
        v = _INVALIDATED_RE.search(cause.output)
        self.validation_code = v.group(1) if v else ""


def endorsement_policy(topo: Topology) -> str:
    """Every application organisation must endorse: ``AND('Org1MSP.peer','Org2MSP.peer')``."""
    members = ",".join(f"'{o.msp_id}.peer'" for o in topo.application_orgs)
    return f"AND({members})"


class PeerCLI:
    """Runs ``peer`` commands for one network."""

    def __init__(self, topo: Topology, layout: NetworkLayout, bins: FabricBinaries) -> None:
        self.topo = topo
        self.layout = layout
        self.bins = bins

    def _env(self, node: Node, role: str = "admin") -> dict[str, str]:
        return peer_admin_env(self.topo, node, self.layout, role)

    def _peer_flags(self, orgs: list[Organization]) -> list[str]:
        flags: list[str] = []
        for org in orgs:
            node = org.peers[0]
            flags += ["--peerAddresses", node.address, "--tlsRootCertFiles", str(self.layout.ca_cert(org.ca))]
        return flags

    # ------------------------------------------------------------------ lifecycle
    def installed(self, node: Node) -> dict[str, str]:
        """Package id -> label of every chaincode package installed on ``node``."""
        out = self.bins.run("peer", ["lifecycle", "chaincode", "queryinstalled", "--output", "json"], self._env(node))
        doc = _json_or_empty(out)
        return {c["package_id"]: c.get("label", "") for c in doc.get("installed_chaincodes", []) or []}

    def install(self, node: Node, package: Path) -> None:
        """Installs a package on ``node``."""
        self.bins.run("peer", ["lifecycle", "chaincode", "install", str(package)], self._env(node), timeout=300)

    def committed(self, name: str) -> dict[str, Any] | None:
        """The committed definition of ``name`` on the channel, or None if there is none."""
        node = self.topo.peers[0]
        try:
            out = self.bins.run(
                "peer",
                [
                    "lifecycle",
                    "chaincode",
                    "querycommitted",
                    "--channelID",
                    self.topo.channel,
                    "--name",
                    name,
                    "--output",
                    "json",
                ],
                self._env(node),
            )
        except CommandError as exc:
            if "not found" in exc.output or "404" in exc.output:
                return None
            raise
        return _json_or_empty(out)

    def approved(self, org: Organization, name: str, sequence: int) -> dict[str, Any] | None:
        """What ``org`` approved for ``name`` at ``sequence``, or None."""
        try:
            out = self.bins.run(
                "peer",
                [
                    "lifecycle",
                    "chaincode",
                    "queryapproved",
                    "--channelID",
                    self.topo.channel,
                    "--name",
                    name,
                    "--sequence",
                    str(sequence),
                    "--output",
                    "json",
                ],
                self._env(org.peers[0]),
            )
        except CommandError as exc:
            if "could not fetch approved chaincode definition" in exc.output:
                return None
            raise
        return _json_or_empty(out)

    def approve(self, org: Organization, definition: Definition, package_id: str) -> None:
        """Approves ``definition`` for ``org`` with its own package, and waits for the commit."""
        self.bins.run(
            "peer",
            [
                "lifecycle",
                "chaincode",
                "approveformyorg",
                *_orderer_flags(self.topo, self.layout),
                *definition.flags(self.topo.channel),
                "--package-id",
                package_id,
                "--waitForEventTimeout",
                "60s",
            ],
            self._env(org.peers[0]),
        )

    def commit_readiness(self, definition: Definition) -> dict[str, bool]:
        """MSP id -> whether that organisation approved exactly ``definition``."""
        out = self.bins.run(
            "peer",
            [
                "lifecycle",
                "chaincode",
                "checkcommitreadiness",
                *definition.flags(self.topo.channel),
                "--output",
                "json",
            ],
            self._env(self.topo.peers[0]),
        )
        return dict(_json_or_empty(out).get("approvals", {}))

    def commit(self, definition: Definition) -> None:
        """Commits ``definition``, endorsed by a peer of every application organisation."""
        orgs = list(self.topo.application_orgs)
        self.bins.run(
            "peer",
            [
                "lifecycle",
                "chaincode",
                "commit",
                *_orderer_flags(self.topo, self.layout),
                *definition.flags(self.topo.channel),
                *self._peer_flags(orgs),
                "--waitForEventTimeout",
                "60s",
            ],
            self._env(orgs[0].peers[0]),
        )

    # ------------------------------------------------------------------ calls
    def _call(self, tool: str, args: list[str], env: dict[str, str]) -> str:
        try:
            return self.bins.run(tool, args, env)
        except CommandError as exc:
            raise ChaincodeCallError(exc) from exc

    def invoke(
        self,
        org: Organization,
        role: str,
        function: str,
        args: list[str],
        endorsers: list[Organization] | None = None,
        chaincode: str | None = None,
    ) -> InvokeResult:
        """Submits a transaction as ``role`` of ``org`` and waits until it commits.

        Args:
            org: The caller's organisation.
            role: The caller's role user (``admin``, ``registrar``, ...).
            function: The contract function.
            args: Its string arguments.
            endorsers: Organisations whose first peer endorses (default: every application org).
            chaincode: The chaincode name (default: the topology's).

        Returns:
            The transaction id, the validation code each endorsing peer saw at commit
            (always VALID: anything else raises) and the contract's return value.

        Raises:
            ChaincodeCallError: On a refusal at endorsement (``message`` holds the
                chaincode's), or a commit that is not VALID (``validation_code``).
        """
        orgs = list(endorsers if endorsers is not None else self.topo.application_orgs)
        out = self._call(
            "peer",
            [
                "chaincode",
                "invoke",
                *_orderer_flags(self.topo, self.layout),
                "--channelID",
                self.topo.channel,
                "--name",
                chaincode or self.topo.chaincode,
                *self._peer_flags(orgs),
                "--ctor",
                json.dumps({"function": function, "Args": args}),
                "--waitForEvent",
                "--waitForEventTimeout",
                "60s",
            ],
            {**self._env(org.peers[0], role), "FABRIC_LOGGING_SPEC": "chaincodeCmd=info:warning"},
        )
        commits = _COMMIT_RE.findall(out)
        return InvokeResult(
            tx_id=commits[0][0] if commits else "",
            statuses={addr: status for _tx, status, addr in commits},
            payload=_invoke_payload(out),
        )

    def query(self, org: Organization, role: str, function: str, args: list[str], node: Node | None = None) -> str:
        """Evaluates a function as ``role`` of ``org`` on one of its peers; returns the raw result."""
        out = self._call(
            "peer",
            [
                "chaincode",
                "query",
                "--channelID",
                self.topo.channel,
                "--name",
                self.topo.chaincode,
                "--ctor",
                json.dumps({"function": function, "Args": args}),
            ],
            self._env(node or org.peers[0], role),
        )
        return out.strip()


def _json_or_empty(text: str) -> dict[str, Any]:
    text = text.strip()
    if not text:
        return {}
    doc = json.loads(text)
    return doc if isinstance(doc, dict) else {}


_COMMIT_RE = re.compile(r"txid \[([0-9a-f]+)\] committed with status \(([A-Z_]+)\) at (\S+)")
_MESSAGE_RE = re.compile(r'message:"((?:[^"\\]|\\.)*)"')
_INVALIDATED_RE = re.compile(r"transaction invalidated with status \(([A-Z_]+)\)")
_PAYLOAD_RE = re.compile(r'payload:"((?:[^"\\]|\\.)*)"')
_ESCAPE_RE = re.compile(r"\\([0-7]{3}|x[0-9a-fA-F]{2}|.)")
_SIMPLE_ESCAPES = {"n": 10, "r": 13, "t": 9, '"': 34, "'": 39, "\\": 92, "a": 7, "b": 8, "f": 12, "v": 11}


def _unescape_text_format(text: str) -> bytes:
    """Decodes a protobuf text-format bytes literal (octal, hex and C escapes)."""
    out = bytearray()
    pos = 0
    for m in _ESCAPE_RE.finditer(text):
        out += text[pos : m.start()].encode()
        esc = m.group(1)
        if esc[0] in "01234567":
            out.append(int(esc, 8))
        elif esc[0] == "x":
            out.append(int(esc[1:], 16))
        else:
            out.append(_SIMPLE_ESCAPES.get(esc, ord(esc)))
        pos = m.end()
    out += text[pos:].encode()
    return bytes(out)


def _invoke_payload(output: str) -> str:
    """Extracts the result payload from ``peer chaincode invoke`` output (protobuf text format)."""
    m = _PAYLOAD_RE.search(output)
    if not m:
        return ""
    return _unescape_text_format(m.group(1)).decode("utf-8")

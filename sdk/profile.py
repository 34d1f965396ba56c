"""Connection settings from one place: the connection profile the network writes.

``modelledger network up`` generates ``connection-profile.yaml`` from the
topology (channel, organisations, peers with their TLS roots, and each role
user's MSP folder). :class:`ConnectionProfile` reads it and builds TLS gRPC
channels and Gateway connections for any organisation and role.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import yaml

from modelledger.sdk.gateway.errors import ConnectionSettingsError
from modelledger.sdk.gateway.gateway import Gateway, connect
from modelledger.sdk.gateway.identity import load_msp
from modelledger.sdk.gateway.transaction import CallOptions

# Keep-alive and message sizes suited to a Gateway client (blocks can be large).
_CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.max_receive_message_length", 100 * 1024 * 1024),
    ("grpc.max_send_message_length", 100 * 1024 * 1024),
)


@dataclass(frozen=True)
class PeerEndpoint:
    """A peer as clients see it."""

    name: str
    msp_id: str
    address: str
    ssl_target_name: str
    tls_root: Path


@dataclass(frozen=True)
class ConnectionProfile:
    """The parsed connection profile."""

    path: Path
    channel: str
    chaincode: str
    organizations: dict[str, dict[str, Any]]

    @classmethod
    def load(cls, path: str | Path) -> ConnectionProfile:
        """Reads a connection profile.

        Raises:
            ConnectionSettingsError: The file is missing or malformed; the message says which.
        """
        p = Path(path)
        try:
            doc = yaml.safe_load(p.read_text())
        except OSError as exc:
            raise ConnectionSettingsError(
                f"cannot read connection profile {p}: {exc.strerror} (is the network up? `make up` writes it)"
            ) from exc
        except yaml.YAMLError as exc:
            raise ConnectionSettingsError(f"connection profile {p} is not valid YAML: {exc}") from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("organizations"), dict) or not doc.get("channel"):
            raise ConnectionSettingsError(f"connection profile {p}: needs 'channel' and 'organizations'")
        return cls(p, str(doc["channel"]), str(doc.get("chaincode", "registry")), doc["organizations"])

    def _org(self, msp_id: str) -> dict[str, Any]:
        org = self.organizations.get(msp_id)
        if org is None:
            known = ", ".join(sorted(self.organizations))
            raise ConnectionSettingsError(f"no organisation {msp_id!r} in {self.path} (known: {known})")
        return org

    def peers(self, msp_id: str) -> list[PeerEndpoint]:
        """The peers of one organisation."""
        org = self._org(msp_id)
        return [
            PeerEndpoint(p["name"], msp_id, p["address"], p.get("ssl_target_name", ""), Path(org["tls_root"]))
            for p in org.get("peers", [])
        ]

    def application_msp_ids(self) -> list[str]:
        """MSP ids of the organisations that have peers."""
        return [m for m, o in self.organizations.items() if o.get("peers")]

    def user_msp(self, msp_id: str, role: str) -> Path:
        """The MSP folder of a role user."""
        users = self._org(msp_id).get("users", {})
        if role not in users:
            raise ConnectionSettingsError(f"{msp_id} has no user with role {role!r} (known: {', '.join(users)})")
        return Path(users[role]["msp"])

    def grpc_channel(self, peer: PeerEndpoint) -> grpc.Channel:
        """A TLS gRPC channel to ``peer``, trusting its organisation's TLS root."""
        try:
            root = peer.tls_root.read_bytes()
        except OSError as exc:
            raise ConnectionSettingsError(f"cannot read TLS root {peer.tls_root}: {exc.strerror}") from exc
        options = list(_CHANNEL_OPTIONS)
        if peer.ssl_target_name:
            options.append(("grpc.ssl_target_name_override", peer.ssl_target_name))
        return grpc.secure_channel(peer.address, grpc.ssl_channel_credentials(root_certificates=root), options)

    def gateway(
        self,
        msp_id: str,
        role: str,
        peer: str | PeerEndpoint | None = None,
        options: CallOptions | None = None,
    ) -> Gateway:
        """Connects as ``role`` of ``msp_id`` to one of its peers (the first unless named), or to ``peer``
        given as an endpoint of any organisation (e.g. to read another organisation's copy of the blocks)."""
        if isinstance(peer, PeerEndpoint):
            chosen: PeerEndpoint | None = peer
        else:
            peers = self.peers(msp_id)
            if not peers:
                raise ConnectionSettingsError(f"{msp_id} has no peers in {self.path}")
            chosen = next((p for p in peers if p.name == peer), None) if peer else peers[0]
            if chosen is None:
                raise ConnectionSettingsError(f"{msp_id} has no peer named {peer!r}")
        identity, signer = load_msp(msp_id, self.user_msp(msp_id, role))
        gateway = connect(identity, signer, self.grpc_channel(chosen), options)
        gateway.owns_channel = True
        return gateway

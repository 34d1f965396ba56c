"""Connection options shared by the CLI commands that talk to the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelledger.runtime.settings import connection_profile_path
from modelledger.sdk.gateway.errors import GatewayError
from modelledger.sdk.gateway.gateway import Gateway
from modelledger.sdk.profile import ConnectionProfile

OrgOpt = Annotated[str, typer.Option("--org", help="MSP id of the organisation to act for.")]
RoleOpt = Annotated[str, typer.Option("--role", help="Role user to act as (its certificate carries the role).")]
ProfileOpt = Annotated[
    Path | None,
    typer.Option("--profile", help="Connection profile (default: the one `make up` writes in the state folder)."),
]


def default_profile_path() -> Path:
    """Where ``network up`` writes the connection profile."""
    return connection_profile_path()


def open_gateway(org: str, role: str, profile: Path | None) -> tuple[ConnectionProfile, Gateway]:
    """Loads the profile and connects as ``role`` of ``org``.

    Raises:
        GatewayError: The profile, identity or peer is not usable; the message says which.
    """
    prof = ConnectionProfile.load(profile or default_profile_path())
    return prof, prof.gateway(org, role)


__all__ = ["GatewayError", "OrgOpt", "ProfileOpt", "RoleOpt", "default_profile_path", "open_gateway"]

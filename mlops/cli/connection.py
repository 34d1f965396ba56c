"""Connection options shared by the CLI commands that talk to the ledger, and the one way they call the registry:
a refusal or failure is reported as one plain line (:func:`refusal_text`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from modelledger.mlops.cli.output import fail
from modelledger.runtime.settings import connection_profile_path
from modelledger.sdk.gateway.errors import GatewayError, TransactionError
from modelledger.sdk.gateway.gateway import Gateway
from modelledger.sdk.profile import ConnectionProfile
from modelledger.sdk.registry.client import Conflict, Invalid, NotAuthorized, NotFound, RegistryClient, RegistryError

T = TypeVar("T")

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


# The chaincode's refusal classes (sdk/registry/client.py) in the words the CLI prints before its reason.
_REFUSALS: tuple[tuple[type[RegistryError], str], ...] = (
    (Conflict, "refused"),
    (Invalid, "invalid"),
    (NotAuthorized, "not authorized"),
    (NotFound, "not found"),
)


def refusal_text(error: GatewayError) -> str:
    """One line saying why a call failed: the chaincode's own reason when it refused, without transport noise.

    A refusal (``CONFLICT: model "m" version "1" is already revoked``) reads ``refused: model "m" version "1"
    is already revoked``; a failure before the chaincode answered keeps its step, gRPC code and the first
    peer's message; anything else is the error's text on one line.
    """
    if isinstance(error, RegistryError):
        for cls, word in _REFUSALS:
            if isinstance(error, cls):
                return f"{word}: {error.message.removeprefix(cls.prefix).strip()}"
        return f"refused: {error.message}"
    if isinstance(error, TransactionError):
        text = f"{error.step} failed: {error.code.name}: {error.status_message}"
        peer = next((d.message for d in error.details if d.message), "")
        return " ".join(f"{text} ({peer})".split()) if peer else " ".join(text.split())
    return " ".join(str(error).split())


def call_registry(org: str, role: str, profile: Path | None, as_json: bool, call: Callable[[RegistryClient], T]) -> T:
    """Runs ``call`` on the registry as ``role`` of ``org``; a refusal or failure is one line (exit 1)."""
    try:
        prof, gw = open_gateway(org, role, profile)
        with gw:
            return call(RegistryClient(gw.network(prof.channel), prof.chaincode))
    except GatewayError as exc:
        fail(refusal_text(exc), as_json)


__all__ = [
    "GatewayError",
    "OrgOpt",
    "ProfileOpt",
    "RoleOpt",
    "call_registry",
    "default_profile_path",
    "open_gateway",
    "refusal_text",
]

"""``modelledger model approve|reject|revoke|deploy|grant|revoke-access``: decisions recorded on the ledger.

Each command submits one transaction of the registry chaincode as one role of
one organisation (``--org``, ``--role``; the identity comes from the state
folder through the connection profile). The default role of each is the one
the chaincode lets call it (``begin(...)`` in ``chaincode/registry/*.go``,
chaincode/CONTRACT.md "Functions"):

- ``approve``, ``reject``: ``approver`` (the only role allowed);
- ``revoke``: ``approver`` (``approver`` or ``admin`` of the owner organisation may);
- ``deploy``: ``operator`` (the only role allowed);
- ``grant``, ``revoke-access``: ``admin`` (the only role allowed).

On success a command prints one line saying what happened and the version's
status in the vocabulary's words (``--json``: the resulting record). When the
chaincode refuses, its own reason is printed on one line (``--json``:
``{"error": ...}``) and the command exits 1; bad input (a blank reason) is
refused before any call, with exit 2.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import typer
from rich.markup import escape

from modelledger.mlops.cli.connection import OrgOpt, ProfileOpt, call_registry
from modelledger.mlops.cli.output import JsonOpt, console, emit_json
from modelledger.sdk.registry.records import Model, ModelVersion, to_json
from modelledger.sdk.registry.statuses import status_meaning, status_word

T = TypeVar("T")

NameArg = Annotated[str, typer.Argument(help="Registered model name.")]
VersionArg = Annotated[str, typer.Argument(help="Model version.")]
MspArg = Annotated[str, typer.Argument(help="MSP id of the organisation whose read access changes.")]


def _role_opt(default_help: str) -> object:
    return typer.Option("--role", help=f"Role user to act as (its certificate carries the role). {default_help}")


def _required_text(what: str) -> Callable[[str], str]:
    """A typer callback refusing a blank value (before any call to the ledger)."""

    def check(value: str) -> str:
        if not value.strip():
            raise typer.BadParameter(f"the {what} must not be blank")
        return value

    return check


ReasonOpt = Annotated[
    str, typer.Option("--reason", help="Why (required, recorded on the ledger).", callback=_required_text("reason"))
]
ApproverRole = Annotated[str, _role_opt("The chaincode lets only approvers decide.")]
RevokerRole = Annotated[str, _role_opt("The chaincode lets approvers and admins of the owner revoke.")]
OperatorRole = Annotated[str, _role_opt("The chaincode lets only operators of the owner record deployments.")]
AdminRole = Annotated[str, _role_opt("The chaincode lets only admins of the owner change read access.")]


def _report_version(mv: ModelVersion, what: str, as_json: bool) -> None:
    """``--json``: the record; else ``name/version <what>: now <status> (<meaning>)``."""
    if as_json:
        emit_json(to_json(mv))
        return
    console.print(
        f"{escape(mv.name)}/{escape(mv.version)} {escape(what)}: "
        f"now {escape(status_word(mv.status))} ({escape(status_meaning(mv.status))})",
        highlight=False,
    )


def _report_model(model: Model, what: str, as_json: bool) -> None:
    """``--json``: the model record; else ``<what>; read access granted to: <granted organisations>``."""
    if as_json:
        emit_json(to_json(model))
        return
    readers = ", ".join(model.grants) or "none"
    console.print(f"{escape(what)}; read access granted to: {escape(readers)}", highlight=False)


def approve(
    name: NameArg,
    version: VersionArg,
    comment: Annotated[str, typer.Option("--comment", help="Recorded with the approval.")] = "",
    org: OrgOpt = "Org1MSP",
    role: ApproverRole = "approver",
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Approve a version for your organisation (it becomes approved once every organisation of its set did)."""
    mv = call_registry(org, role, profile, as_json, lambda c: c.approve(name, version, comment))
    _report_version(mv, f"approved by {org}", as_json)


def reject(
    name: NameArg,
    version: VersionArg,
    reason: ReasonOpt,
    org: OrgOpt = "Org1MSP",
    role: ApproverRole = "approver",
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Reject a version for your organisation: it can then be neither approved nor deployed."""
    mv = call_registry(org, role, profile, as_json, lambda c: c.reject(name, version, reason))
    _report_version(mv, f"rejected by {org}", as_json)


def revoke(
    name: NameArg,
    version: VersionArg,
    reason: ReasonOpt,
    org: OrgOpt = "Org1MSP",
    role: RevokerRole = "approver",
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Revoke a version your organisation owns, for good: it can no longer be deployed and fails verification."""
    mv = call_registry(org, role, profile, as_json, lambda c: c.revoke(name, version, reason))
    _report_version(mv, f"revoked by {org}", as_json)


def deploy(
    name: NameArg,
    version: VersionArg,
    environment: Annotated[
        str,
        typer.Option("--environment", help="Environment that now runs it.", callback=_required_text("environment")),
    ],
    endpoint: Annotated[
        str, typer.Option("--endpoint", help="Where it is served (URL).", callback=_required_text("endpoint"))
    ],
    org: OrgOpt = "Org1MSP",
    role: OperatorRole = "operator",
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record that an environment now runs an approved version of your organisation's model."""
    mv = call_registry(org, role, profile, as_json, lambda c: c.record_deployment(name, version, environment, endpoint))
    _report_version(mv, f"deployed to {environment} at {endpoint} by {org}", as_json)


def grant(
    name: NameArg,
    msp_id: MspArg,
    org: OrgOpt = "Org1MSP",
    role: AdminRole = "admin",
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Let another organisation read every version of your organisation's model."""
    model = call_registry(org, role, profile, as_json, lambda c: c.grant_access(name, msp_id))
    _report_model(model, f"{msp_id} may now read every version of {name} (granted by {org})", as_json)


def revoke_access(
    name: NameArg,
    msp_id: MspArg,
    org: OrgOpt = "Org1MSP",
    role: AdminRole = "admin",
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Withdraw the read access `grant` gave another organisation."""
    model = call_registry(org, role, profile, as_json, lambda c: c.revoke_access(name, msp_id))
    _report_model(model, f"{msp_id} may no longer read {name} (withdrawn by {org})", as_json)


def register(app: typer.Typer) -> None:
    """Adds the governance commands to the ``model`` group."""
    for command, name in (
        (approve, "approve"),
        (reject, "reject"),
        (revoke, "revoke"),
        (deploy, "deploy"),
        (grant, "grant"),
        (revoke_access, "revoke-access"),
    ):
        app.command(name)(command)

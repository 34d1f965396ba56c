"""``modelledger model approve|reject|revoke|deploy|grant|revoke-access|policy``: decisions recorded on the ledger.

Each command submits one transaction of the registry chaincode as one role of
one organisation (``--org``, ``--role``; the identity comes from the state
folder through the connection profile). The default role of each is the one
the chaincode lets call it (``begin(...)`` in ``chaincode/registry/*.go``,
chaincode/CONTRACT.md "Functions"):

- ``approve``, ``reject``: ``approver`` (the only role allowed);
- ``revoke``: ``approver`` (``approver`` or ``admin`` of the owner organisation may);
- ``deploy``: ``operator`` (the only role allowed);
- ``grant``, ``revoke-access``: ``admin`` (the only role allowed);
- ``policy NAME --min/--max ...`` (setting the evaluation policy): ``admin`` (the only role allowed); the
  thresholds given replace the current ones, the passes required and the evaluator rule are kept from the
  current policy unless ``--passes``/``--independent``/``--any-evaluator`` are given; it prints what changed.
  ``policy NAME`` alone only reads it, as ``auditor`` like the other queries.

On success a command prints one line saying what happened and the version's
status in the vocabulary's words (``--json``: the resulting record). When the
chaincode refuses, its own reason is printed on one line (``--json``:
``{"error": ...}``) and the command exits 1; bad input (a blank reason) is
refused before any call, with exit 2: a blank reason; for ``policy``, a bound that is not
``METRIC=NUMBER``, a minimum above its maximum, a metric bounded twice.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer
from rich.markup import escape

from modelledger.mlops.cli.connection import OrgOpt, ProfileOpt, call_registry
from modelledger.mlops.cli.gate_view import evaluator_rule, policy_changes, policy_fields, policy_line
from modelledger.mlops.cli.gate_view import passes as passes_text
from modelledger.mlops.cli.output import JsonOpt, console, emit_json, show_fields
from modelledger.sdk.registry.client import NotFound, RegistryClient
from modelledger.sdk.registry.gate import format_number
from modelledger.sdk.registry.limits import LIMITS
from modelledger.sdk.registry.names import mlflow_key_rule_broken
from modelledger.sdk.registry.records import (
    MetricThreshold,
    Model,
    ModelPolicy,
    ModelPolicyInput,
    ModelVersion,
    to_json,
)
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


def _bounds(option: str, given: list[str]) -> dict[str, float]:
    """``--min``/``--max`` values (``METRIC=NUMBER``) by metric.

    Raises:
        typer.BadParameter: A value is not ``METRIC=NUMBER`` with a finite number, or names a metric twice.
    """
    out: dict[str, float] = {}
    for value in given:
        metric, sep, number = value.partition("=")
        metric = metric.strip()
        if not sep or not metric:
            raise typer.BadParameter(f"{value!r} is not METRIC=NUMBER (e.g. accuracy_score=0.9)", param_hint=option)
        try:
            bound = float(number)
        except ValueError as exc:
            raise typer.BadParameter(f"{value!r}: {number.strip()!r} is not a number", param_hint=option) from exc
        if not math.isfinite(bound) or (bound != 0 and abs(bound) < sys.float_info.min):
            raise typer.BadParameter(
                f"{value!r}: the bound must be a finite number, not subnormal (the ledger refuses those)",
                param_hint=option,
            )
        broken = mlflow_key_rule_broken(metric)
        if broken:
            raise typer.BadParameter(f"{value!r}: the metric name {broken}", param_hint=option)
        if metric in out:
            raise typer.BadParameter(f"metric {metric!r} is given twice", param_hint=option)
        out[metric] = bound
    return out


def _thresholds(minimum: list[str], maximum: list[str]) -> list[MetricThreshold]:
    """The thresholds the options describe, sorted by metric (as the chaincode stores them).

    Raises:
        typer.BadParameter: A bound is malformed, a minimum is above its maximum, or there are too many thresholds.
    """
    low, high = _bounds("--min", minimum), _bounds("--max", maximum)
    for metric in sorted(set(low) & set(high)):
        if low[metric] > high[metric]:
            raise typer.BadParameter(
                f"metric {metric!r}: the minimum {format_number(low[metric])} is above the maximum "
                f"{format_number(high[metric])}",
                param_hint="--min/--max",
            )
    metrics = sorted(set(low) | set(high))
    if len(metrics) > LIMITS.thresholds:
        raise typer.BadParameter(
            f"{len(metrics)} metrics are bounded; a policy holds at most {LIMITS.thresholds}", param_hint="--min/--max"
        )
    return [MetricThreshold(m, min=low.get(m), max=high.get(m)) for m in metrics]


def _policy_input(
    thresholds: list[MetricThreshold], passes: int | None, independent: bool | None, current: ModelPolicy | None
) -> ModelPolicyInput:
    """The policy to set: ``thresholds``; the passes required and the evaluator rule as given, else the current
    policy's (else 1 pass, any evaluator)."""
    return ModelPolicyInput(
        thresholds=thresholds,
        required_passes=passes if passes is not None else current.required_passes if current else 1,
        independent_evaluator=(
            independent if independent is not None else current.independent_evaluator if current else False
        ),
    )


def _set_policy(
    client: RegistryClient,
    name: str,
    thresholds: list[MetricThreshold],
    passes: int | None,
    independent: bool | None,
) -> tuple[ModelPolicy | None, Model]:
    """Sets the policy, keeping what the options do not give from the current one; returns (before, model after).

    A model the caller may not read is set as given (the chaincode then refuses it, with its own reason).
    """
    try:
        current = client.get_model(name).policy
    except NotFound:
        current = None
    return current, client.set_model_policy(name, _policy_input(thresholds, passes, independent, current))


def policy(
    name: NameArg,
    minimum: Annotated[
        list[str] | None,
        typer.Option(
            "--min",
            metavar="METRIC=NUMBER",
            help="Sets the policy: an evaluation passes only if METRIC >= NUMBER. The --min and --max given "
            "replace every threshold of the current policy (one not given again is dropped).",
        ),
    ] = None,
    maximum: Annotated[
        list[str] | None,
        typer.Option(
            "--max",
            metavar="METRIC=NUMBER",
            help="Sets the policy: an evaluation passes only if METRIC <= NUMBER (replaces the thresholds, as --min).",
        ),
    ] = None,
    passes: Annotated[
        int | None,
        typer.Option(
            "--passes",
            min=1,
            max=LIMITS.required_passes,
            help="Passing evaluations a version needs before it can be approved or deployed "
            "(default: the current policy's, else 1).",
        ),
    ] = None,
    independent: Annotated[
        bool | None,
        typer.Option(
            "--independent/--any-evaluator",
            help="Whether the evaluator must belong to another organisation than the registrant "
            "(default: as the current policy says, else any).",
        ),
    ] = None,
    org: OrgOpt = "Org1MSP",
    role: Annotated[
        str | None,
        _role_opt("Default: admin when setting (the only role the chaincode lets set it), auditor when showing."),
    ] = None,
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a model's evaluation policy; with --min/--max, set it (as an admin of the owner organisation).

    The thresholds given replace the current ones (a threshold not given again is dropped); the passes
    required and whether the evaluator must be independent are kept unless given. Prints what changed.
    Only evaluations under the new policy version count.
    """
    minimum, maximum = minimum or [], maximum or []
    if not minimum and not maximum:
        if passes is not None or independent is not None:
            raise typer.BadParameter(
                "a policy needs at least one threshold: give --min or --max too (they replace the current thresholds)",
                param_hint="--passes/--independent",
            )
        model = call_registry(org, role or "auditor", profile, as_json, lambda c: c.get_model(name))
        if as_json:
            emit_json(to_json(model))
            return
        show_fields(f"evaluation policy of {model.name}", policy_fields(model.name, model.owner, model.policy))
        return
    thresholds = _thresholds(minimum, maximum)
    before, model = call_registry(
        org, role or "admin", profile, as_json, lambda c: _set_policy(c, name, thresholds, passes, independent)
    )
    if as_json:
        emit_json(to_json(model))
        return
    console.print(
        f"{escape(model.name)} policy set by {escape(org)}: {escape(policy_line(model.policy))}", highlight=False
    )
    after = model.policy
    lines = policy_changes(before, after)
    if before is not None and after is not None and before.version != after.version:
        kept = [passes_text(after.required_passes) + " required"] if passes is None else []
        kept += [f"evaluator {evaluator_rule(after)}"] if independent is None else []
        lines += [f"kept from version {before.version}: {'; '.join(kept)}"] if kept else []
    for line in lines:
        console.print(f"  {escape(line)}", highlight=False)


def register(app: typer.Typer) -> None:
    """Adds the governance commands to the ``model`` group."""
    for command, name in (
        (approve, "approve"),
        (reject, "reject"),
        (revoke, "revoke"),
        (deploy, "deploy"),
        (grant, "grant"),
        (revoke_access, "revoke-access"),
        (policy, "policy"),
    ):
        app.command(name)(command)

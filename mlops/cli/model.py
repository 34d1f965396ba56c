"""``modelledger model``: registered model versions as the ledger holds them (the governance commands that record
decisions on them are in :mod:`modelledger.mlops.cli.governance`, registered on the same group)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape

from modelledger.mlops.cli import evaluation, governance
from modelledger.mlops.cli.connection import OrgOpt, ProfileOpt, RoleOpt, call_registry, refusal_text
from modelledger.mlops.cli.gate_view import approval_fields, approval_set, evaluation_line, gate_line, policy_line
from modelledger.mlops.cli.output import Cell, JsonOpt, console, emit_json, show_fields, show_note, show_table
from modelledger.mlops.store import ledger_pointer
from modelledger.sdk.registry.client import NotAuthorized, NotFound, RegistryClient
from modelledger.sdk.registry.gate import Gate, evaluation_gate
from modelledger.sdk.registry.limits import LIMITS
from modelledger.sdk.registry.records import ModelPolicy, ModelVersion, to_json
from modelledger.sdk.registry.statuses import status_meaning, status_word

app = typer.Typer(
    help="Model versions on the ledger: query them; approve, reject, revoke, deploy; grant read access; set the "
    "evaluation policy.",
    no_args_is_help=True,
)

T = TypeVar("T")
NameArg = Annotated[str, typer.Argument(help="Registered model name.")]
VersionArg = Annotated[str, typer.Argument(help="Model version.")]


@dataclass(frozen=True)
class VersionView:
    """What ``model show`` prints: the version, and what its model and the channel say about its gate.

    Attributes:
        version: The version as the ledger holds it.
        policy: The model's current evaluation policy (None: no policy, or the model could not be read).
        policy_error: Why the model could not be read as the caller ("" when it was).
        current_set: The channel's approval set now (with the version's recorded one, it says whose decisions count).
    """

    version: ModelVersion
    policy: ModelPolicy | None
    policy_error: str = ""
    current_set: tuple[str, ...] = ()

    @property
    def gate(self) -> Gate | None:
        """The version against the model's current policy; None when the model could not be read."""
        return None if self.policy_error else evaluation_gate(self.policy, self.version)

    def to_json(self) -> dict[str, Any]:
        """The version record as stored, and ``modelPolicy``, ``gate`` and ``approvalSet`` beside its fields."""
        gate = self.gate
        decided = {a.msp_id: a.decision for a in self.version.approvals}
        return {
            **to_json(self.version),
            "modelPolicy": to_json(self.policy),
            **({"modelPolicyError": self.policy_error} if self.policy_error else {}),
            "gate": None
            if gate is None
            else {
                "policyVersion": gate.policy_version,
                "required": gate.required,
                "passing": gate.passing,
                "met": gate.met,
                "latestFailure": gate.latest_failure,
            },
            "approvalSet": [
                {"mspId": org, "decision": decided.get(org, "")}
                for org in approval_set(self.version, list(self.current_set))
            ],
        }


def read_version_view(client: RegistryClient, name: str, version: str) -> VersionView:
    """The version, its model's policy and the channel's current approval set.

    A model the caller may not read (``NotFound``/``NotAuthorized``) leaves the policy unknown, said why.
    """
    mv = client.get_model_version(name, version)
    current = tuple(client.get_settings().approval_orgs)
    try:
        return VersionView(mv, client.get_model(name).policy, current_set=current)
    except (NotFound, NotAuthorized) as exc:
        return VersionView(mv, None, policy_error=refusal_text(exc), current_set=current)


@app.command()
def show(
    name: NameArg,
    version: VersionArg,
    org: OrgOpt = "Org1MSP",
    role: RoleOpt = "auditor",
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One model version: digests, storage, status; the policy, evaluations and gate; decisions; deployments."""
    view = call_registry(org, role, profile, as_json, lambda c: read_version_view(c, name, version))
    if as_json:
        emit_json(view.to_json())
        return
    mv, gate = view.version, view.gate
    pointer = ledger_pointer(record=mv)
    rows: list[tuple[str, Cell]] = [
        ("name", mv.name),
        ("version", mv.version),
        ("status", status_word(mv.status)),
        ("meaning", status_meaning(mv.status)),
        ("owner", mv.owner),
        ("model digest", mv.model_digest),
        ("manifest digest", f"{mv.manifest_digest} ({len(mv.manifest.files)} files)"),
        ("storage", pointer.uri),
        ("storage version", pointer.version_id),
        ("mlflow", f"run {mv.mlflow.run_id or '-'}, source {mv.mlflow.source}"),
        ("framework", f"{mv.framework.name} {mv.framework.version}"),
        ("registrant", f"{mv.registrant.role}@{mv.registrant.msp_id} ({mv.registrant.cert_fingerprint})"),
        ("registered", f"{mv.registered_at} tx {mv.registered_tx_id}"),
    ]
    rows += [(f"dataset {d.name}", f"{d.sha256}{'' if d.registered else ' (not registered)'}") for d in mv.datasets]
    if view.policy_error:
        rows.append(("policy", f"unknown: the model could not be read ({view.policy_error})"))
    else:
        rows.append(("policy", policy_line(view.policy)))
    if gate is not None:
        rows.append(("gate", gate_line(gate)))
    rows += [(f"evaluation {n}", evaluation_line(e, view.policy)) for n, e in enumerate(mv.evaluations, 1)]
    if not mv.evaluations:
        rows.append(("evaluations", "none"))
    rows += approval_fields(mv, list(view.current_set))
    rows += [
        (f"deployed {d.environment}", f"{d.endpoint} by {d.actor.role}@{d.actor.msp_id} {d.time} tx {d.tx_id}")
        for d in mv.deployments
    ]
    if mv.revocation:
        rows.append(("revoked", f"{mv.revocation.reason} ({mv.revocation.actor.msp_id}, {mv.revocation.time})"))
    show_fields(f"{mv.name} version {mv.version}", rows)


@app.command("list")
def list_versions(
    name: Annotated[str, typer.Argument(help="Only this model (default: every model you may read).")] = "",
    page_size: Annotated[int, typer.Option("--page-size", min=1, max=LIMITS.page_size)] = 100,
    bookmark: Annotated[str, typer.Option("--bookmark", help="Continue after a previous page.")] = "",
    org: OrgOpt = "Org1MSP",
    role: RoleOpt = "auditor",
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Model versions you may read, one page at a time."""
    page = call_registry(org, role, profile, as_json, lambda c: c.list_model_versions(name, page_size, bookmark))
    if as_json:
        emit_json(to_json(page))
        return
    show_table(
        "model versions",
        ("name", "version", "status", "owner", "model digest", "registered"),
        [
            (mv.name, mv.version, status_word(mv.status), mv.owner, mv.model_digest, mv.registered_at)
            for mv in page.records
        ],
    )
    if page.bookmark:
        show_note(f"more: --bookmark {escape(repr(page.bookmark))}")


@app.command()
def history(
    name: NameArg,
    version: VersionArg,
    org: OrgOpt = "Org1MSP",
    role: RoleOpt = "auditor",
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every change of a version: transaction, time, action, who, resulting status."""
    entries = call_registry(org, role, profile, as_json, lambda c: c.get_history(name, version))
    if as_json:
        emit_json(to_json(entries))
        return
    show_table(
        f"history of {name} version {version}",
        ("time", "action", "actor", "status", "tx id"),
        [
            (e.time, e.action, f"{e.actor.role}@{e.actor.msp_id}" if e.actor else "-", status_word(e.status), e.tx_id)
            for e in entries
        ],
    )


@app.command("find-digest")
def find_digest(
    digest: Annotated[str, typer.Argument(help="Model digest (64 hex).")],
    org: OrgOpt = "Org1MSP",
    role: RoleOpt = "auditor",
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Which versions on the ledger have this model digest."""
    refs = call_registry(org, role, profile, as_json, lambda c: c.find_by_digest(digest))
    if as_json:
        emit_json(to_json(refs))
        return
    if not refs:
        console.print("no version on the ledger that you may read has this digest")
    for r in refs:
        console.print(f"{escape(r.name)} version {r.version}")


governance.register(app)
evaluation.register(app)

"""``modelledger model``: registered model versions as the ledger holds them (the governance commands that record
decisions on them are in :mod:`modelledger.mlops.cli.governance`, registered on the same group)."""

from __future__ import annotations

from typing import Annotated, TypeVar

import typer
from rich.markup import escape

from modelledger.mlops.cli import evaluation, governance
from modelledger.mlops.cli.connection import OrgOpt, ProfileOpt, RoleOpt, call_registry
from modelledger.mlops.cli.output import Cell, JsonOpt, console, emit_json, show_fields, show_note, show_table
from modelledger.mlops.store import ledger_pointer
from modelledger.sdk.registry.limits import LIMITS
from modelledger.sdk.registry.records import to_json
from modelledger.sdk.registry.statuses import decision_word, status_meaning, status_word

app = typer.Typer(
    help="Model versions on the ledger: query them; approve, reject, revoke, deploy; grant read access.",
    no_args_is_help=True,
)

T = TypeVar("T")
NameArg = Annotated[str, typer.Argument(help="Registered model name.")]
VersionArg = Annotated[str, typer.Argument(help="Model version.")]


@app.command()
def show(
    name: NameArg,
    version: VersionArg,
    org: OrgOpt = "Org1MSP",
    role: RoleOpt = "auditor",
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One model version: digests, storage, registrant, approvals, deployments, status."""
    mv = call_registry(org, role, profile, as_json, lambda c: c.get_model_version(name, version))
    if as_json:
        emit_json(to_json(mv))
        return
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
    rows += [(f"{decision_word(a.decision)} {a.msp_id}", f"{a.actor.role} {a.time} {a.comment}") for a in mv.approvals]
    rows += [(f"deployed {d.environment}", f"{d.endpoint} {d.time}") for d in mv.deployments]
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

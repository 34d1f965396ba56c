"""``modelledger store``: digest model folders, copy them to write-once S3, and verify them against the ledger."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from modelledger.mlops.cli.connection import OrgOpt, ProfileOpt, RoleOpt, open_gateway, refusal_text
from modelledger.mlops.cli.output import JsonOpt, console, emit_json, fail, show_checks
from modelledger.mlops.store import (
    Manifest,
    ModelTreeError,
    ModelUploader,
    SourceError,
    UploadError,
    VerifyReport,
    digest_folder,
    is_artifact_uri,
    local_folder,
    verify_folder,
    verify_s3,
)
from modelledger.mlops.store.s3_access import S3AccessError, s3_client
from modelledger.runtime.settings import S3Settings, S3User
from modelledger.sdk.gateway.errors import GatewayError

if TYPE_CHECKING:
    from modelledger.mlops.store import LedgerEvidence, Verification

# The ledger checks (store.verification, store.fetch) import model-signing's signature code (~0.3 s):
# the commands that need them import them when they run, so other commands do not pay for it.

app = typer.Typer(
    help="Digest model folders, copy them to write-once S3 (the anchored bucket), verify them against the ledger.",
    no_args_is_help=True,
)

FolderArg = Annotated[Path, typer.Argument(help="Model folder.", exists=True, file_okay=False)]


def _s3(user: S3User, as_json: bool, settings: S3Settings | None = None) -> Any:
    """A boto3 client as ``user``; a missing or damaged credential file is a one-line error (exit 1)."""
    try:
        return s3_client(settings or S3Settings.from_env(), user=user)
    except S3AccessError as exc:
        fail(str(exc), as_json)


@app.command()
def digest(
    folder: FolderArg,
    manifest_out: Annotated[Path | None, typer.Option("--manifest-out", help="Write the manifest (JSON) here.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Model digest (model-signing root), manifest digest and per-file SHA-256 of a folder."""
    try:
        m = digest_folder(folder)
    except (ModelTreeError, OSError) as exc:
        fail(str(exc), as_json)
        return
    if manifest_out is not None:
        manifest_out.write_text(json.dumps(m.to_json(), indent=2, sort_keys=True) + "\n")
    doc = {
        "model_digest": m.model_digest,
        "manifest_digest": m.manifest_digest,
        "files": len(m.files),
        "bytes": m.total_size,
    }
    if as_json:
        emit_json({**doc, "manifest": m.to_json()})
        return
    console.print(f"model digest    {m.model_digest}\nmanifest digest {m.manifest_digest}")
    console.print(f"{len(m.files)} files, {m.total_size} bytes")


@app.command()
def upload(
    source: Annotated[
        str, typer.Argument(help="Model folder, or an MLflow artifact URI (runs:/, models:/, s3://...).")
    ],
    bundle: Annotated[Path | None, typer.Option("--bundle", help="Signature bundle to store beside the files.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Copy a model into the anchored bucket (one read, locked content-addressed chunks); print the pointer."""
    settings = S3Settings.from_env()
    # Writing anchored copies is the bridge's work: its S3 user (no delete) is the one that may.
    uploader = ModelUploader(
        _s3(S3User.BRIDGE, as_json, settings), settings.bucket, retention=dt.timedelta(days=settings.retention_days)
    )
    try:
        if not is_artifact_uri(source) and not Path(source).is_dir():
            raise ModelTreeError(f"{source}: not a folder (give a model folder or an MLflow artifact URI)")
        with local_folder(source) as folder:
            result = uploader.upload(folder, bundle=bundle)
    except (ModelTreeError, UploadError, SourceError, OSError) as exc:
        fail(str(exc), as_json)
    doc = {
        "created": result.created,
        "pointer": result.pointer.to_json(),
        "model_digest": result.manifest.model_digest,
        "manifest_digest": result.manifest.manifest_digest,
    }
    if as_json:
        emit_json(doc)
        return
    p = result.pointer
    # "anchored" is the bridge's word for a version registered on the ledger; this command only copies.
    state = "copied, locked" if result.created else "already copied (nothing written)"
    copy = f"{escape(p.uri)} version {escape(p.version_id)}"
    console.print(f"{state}: {copy} (a write-once copy; nothing is registered on the ledger)")


def _evidence(ledger: tuple[str, str], org: str, role: str, profile: Path | None, as_json: bool) -> LedgerEvidence:
    """The ledger record of NAME VERSION and the registrant organisation's MSP, read as ``role`` of ``org``."""
    from modelledger.mlops.store.verification import ledger_evidence

    try:
        prof, gw = open_gateway(org, role, profile)
        with gw:
            return ledger_evidence(gw.network(prof.channel), prof.chaincode, *ledger)
    except GatewayError as exc:
        fail(refusal_text(exc), as_json)


def _report(report: VerifyReport, what: str, as_json: bool) -> None:
    if as_json:
        emit_json({"target": what, "scope": "bytes-only", **report.to_json()})
    elif report.ok:
        console.print(
            f"[green]ok[/]: {escape(what)} matches the manifest: {escape(report.covered())}; {escape(report.lock())} "
            "(bytes only: no signer or ledger check)"
        )
    else:
        console.print(f"[red]mismatch[/]: {escape(what)}")
        if report.error:
            console.print(f"  error: {escape(report.error)}")
        labelled = (
            ("changed", report.changed),
            ("missing", report.missing),
            ("extra", report.extra),
            ("unprotected", report.unprotected),
        )
        for label, paths in labelled:
            for p in paths:
                console.print(f"  {label}: {escape(p)}")
    if not report.ok:
        raise SystemExit(1)


def _warnings(warnings: list[str]) -> None:
    """One line per warning: something a reader should know that does not fail the verification."""
    for w in warnings:
        console.print(f"  [yellow]warning[/]: {escape(w)}")


def _verified(result: Verification, as_json: bool) -> None:
    """Prints a verification against the ledger (what it covered, every check, warnings); exits 1 unless it holds."""
    if as_json:
        emit_json(result.to_json())
    else:
        verdict = "[green]verified[/]" if result.ok else "[red]NOT verified[/]"
        record = escape(f"{result.name}/{result.version}")
        console.print(f"{verdict}: {escape(result.target)} against the ledger record of {record}")
        console.print(f"  {escape(result.covered())}")
        show_checks(result.checks)
        _warnings(result.warnings)
    if not result.ok:
        raise SystemExit(1)


@app.command()
def verify(
    folder: Annotated[Path | None, typer.Argument(help="Model folder (default: the anchored copy in S3).")] = None,
    manifest: Annotated[Path | None, typer.Option("--manifest", help="Expected manifest (JSON): bytes only.")] = None,
    ledger: Annotated[
        tuple[str, str] | None, typer.Option("--ledger", help="NAME VERSION: verify against the ledger record.")
    ] = None,
    bundle: Annotated[
        Path | None,
        typer.Option("--bundle", help="With --ledger and a folder: this signature bundle, not the anchored copy's."),
    ] = None,
    org: OrgOpt = "Org1MSP",
    role: RoleOpt = "auditor",
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify a folder, or the anchored S3 copy, against the ledger (or only its bytes against a manifest).

    With --ledger, "verified" means every check holds: the bytes are the
    ledger's manifest, the signature bundle verifies, its signer is the
    registrant the ledger names (certificate fingerprint and role) and an
    identity of the registrant's organisation as the channel configuration
    defines it, it signs the ledger's model digest, and the version is
    neither revoked nor rejected. A line says what was covered (files, size,
    signer, lock, ledger status), each check is listed, then any warnings (a
    delete marker or newer version over the anchored index or bundle key: not
    a failure); exit 1 if any check fails. With --manifest, only the bytes are
    compared.
    """
    if (manifest is None) == (ledger is None):
        fail("give exactly one of --manifest FILE or --ledger NAME VERSION", as_json, code=2)
    if manifest is not None:
        if folder is None:
            fail("without --ledger, give the model folder to verify", as_json, code=2)
        try:
            expected = Manifest.from_json(json.loads(manifest.read_text()))
        except (ModelTreeError, OSError, ValueError) as exc:
            fail(f"{manifest}: {exc}", as_json)
        _report(verify_folder(folder, expected), str(folder), as_json)
        return
    if bundle is not None and folder is None:
        fail("--bundle needs a model folder (the anchored copy is verified with its own bundle)", as_json, code=2)
    assert ledger is not None
    from modelledger.mlops.store.verification import anchored_bundle, verify_version

    evidence = _evidence(ledger, org, role, profile, as_json)
    pointer = evidence.pointer
    client = _s3(S3User.AUDITOR, as_json)
    if bundle is not None:
        try:
            signature, why = bundle.read_bytes(), ""
        except OSError as exc:
            fail(f"cannot read the signature bundle {bundle}: {exc.strerror}", as_json)
    else:
        signature, why = anchored_bundle(client, pointer)
    if folder is not None:
        result = verify_version(evidence, signature, lambda m: verify_folder(folder, m), str(folder), why)
    else:
        result = verify_version(evidence, signature, lambda m: verify_s3(client, pointer, m), pointer.uri, why)
    _verified(result, as_json)


@app.command()
def fetch(
    dest: Annotated[Path, typer.Argument(help="Folder to create and fill (must not exist).")],
    ledger: Annotated[tuple[str, str], typer.Option("--ledger", help="NAME VERSION: fetch what the ledger recorded.")],
    org: OrgOpt = "Org1MSP",
    role: RoleOpt = "auditor",
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fetch the anchored copy of a model version into DEST, only if it verifies against the ledger in full.

    The same checks as `store verify --ledger`; DEST appears only if all hold.
    """
    from modelledger.mlops.store.fetch import fetch_verified

    evidence = _evidence(ledger, org, role, profile, as_json)
    try:
        result = fetch_verified(_s3(S3User.AUDITOR, as_json), evidence, dest)
    except OSError as exc:
        fail(str(exc), as_json)
    if as_json:
        emit_json({"dest": str(dest), **result.to_json()})
        if not result.ok:
            raise SystemExit(1)
    elif result.ok:
        console.print(f"fetched into {escape(str(dest))}: verified against the ledger: {escape(result.covered())}")
        _warnings(result.warnings)
    else:
        console.print(f"[red]not fetched[/]: {escape(str(dest))} was not created")
        _verified(result, as_json)

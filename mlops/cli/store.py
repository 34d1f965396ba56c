"""``modelledger store``: digest, anchor and verify model artifacts."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from modelledger.mlops.cli.connection import OrgOpt, ProfileOpt, RoleOpt, open_gateway
from modelledger.mlops.cli.network import JsonOpt
from modelledger.mlops.cli.output import console, emit_json, fail
from modelledger.mlops.store.digest import Manifest, ModelTreeError, digest_folder
from modelledger.mlops.store.fetch import fetch_model
from modelledger.mlops.store.index import StoragePointer, StoreError
from modelledger.mlops.store.s3server import S3Settings, S3User, s3_client
from modelledger.mlops.store.source import SourceError, is_artifact_uri, local_folder
from modelledger.mlops.store.upload import ModelUploader, UploadError
from modelledger.mlops.store.verify import VerifyReport, verify_folder, verify_s3
from modelledger.sdk.gateway.errors import GatewayError
from modelledger.sdk.registry.client import RegistryClient

app = typer.Typer(help="Digest, anchor (write-once S3) and verify model artifacts.", no_args_is_help=True)

FolderArg = Annotated[Path, typer.Argument(help="Model folder.", exists=True, file_okay=False)]


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
        s3_client(settings, user=S3User.BRIDGE), settings.bucket, retention=dt.timedelta(days=settings.retention_days)
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
    state = "anchored" if result.created else "already anchored (nothing written)"
    console.print(f"{state}: {p.uri} version {p.version_id}")


def _expected(
    manifest: Path | None, ledger: tuple[str, str] | None, org: str, role: str, profile: Path | None, as_json: bool
) -> tuple[Manifest, StoragePointer | None]:
    """The expected manifest (from a file or the ledger) and, from the ledger, the S3 pointer."""
    if (manifest is None) == (ledger is None):
        fail("give exactly one of --manifest FILE or --ledger NAME VERSION", as_json, code=2)
    try:
        if manifest is not None:
            return Manifest.from_json(json.loads(manifest.read_text())), None
        assert ledger is not None
        prof, gw = open_gateway(org, role, profile)
        with gw:
            mv = RegistryClient(gw.network(prof.channel), prof.chaincode).get_model_version(*ledger)
        s = mv.storage
        expected = Manifest.from_json({"files": [f.__dict__ for f in mv.manifest.files]})
        return expected, StoragePointer(s.bucket, s.key, s.version_id, s.sha256)
    except (GatewayError, ModelTreeError, OSError, ValueError) as exc:
        fail(str(exc), as_json)


def _report(report: VerifyReport, what: str, as_json: bool) -> None:
    if as_json:
        emit_json({"target": what, **report.to_json()})
    elif report.ok:
        console.print(f"[green]ok[/]: {escape(what)} matches")
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


@app.command()
def verify(
    folder: Annotated[Path | None, typer.Argument(help="Model folder (default: the anchored copy in S3).")] = None,
    manifest: Annotated[Path | None, typer.Option("--manifest", help="Expected manifest (JSON).")] = None,
    ledger: Annotated[
        tuple[str, str] | None, typer.Option("--ledger", help="NAME VERSION: expect what the ledger recorded.")
    ] = None,
    org: OrgOpt = "Org1MSP",
    role: RoleOpt = "auditor",
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a folder, or the anchored S3 copy, against a manifest; exit 1 on any difference.

    With --ledger, the expected manifest and the S3 pointer come from the ledger.
    """
    expected, pointer = _expected(manifest, ledger, org, role, profile, as_json)
    if folder is not None:
        _report(verify_folder(folder, expected), str(folder), as_json)
    elif pointer is not None:
        _report(
            verify_s3(s3_client(S3Settings.from_env(), user=S3User.AUDITOR), pointer, expected),
            f"s3://{pointer.bucket}/{pointer.key}",
            as_json,
        )
    else:
        fail("without --ledger, give the model folder to verify", as_json, code=2)


@app.command()
def fetch(
    dest: Annotated[Path, typer.Argument(help="Folder to create and fill (must not exist).")],
    ledger: Annotated[tuple[str, str], typer.Option("--ledger", help="NAME VERSION: fetch what the ledger recorded.")],
    org: OrgOpt = "Org1MSP",
    role: RoleOpt = "auditor",
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fetch the anchored copy of a model version into DEST, checking every byte against the ledger."""
    expected, pointer = _expected(None, ledger, org, role, profile, as_json)
    assert pointer is not None
    try:
        m = fetch_model(s3_client(S3Settings.from_env(), user=S3User.AUDITOR), pointer, dest, expected)
    except (StoreError, OSError) as exc:
        fail(str(exc), as_json)
        return
    if as_json:
        emit_json(
            {"dest": str(dest), "files": len(m.files), "bytes": m.total_size, "manifest_digest": m.manifest_digest}
        )
        return
    console.print(f"fetched {len(m.files)} files ({m.total_size} bytes) into {escape(str(dest))}: matches the ledger")

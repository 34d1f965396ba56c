"""``store fetch`` leaves nothing under the destination's name unverified, and cleans what a killed fetch left."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from typer.testing import CliRunner

from modelledger.mlops.cli.app import app
from modelledger.mlops.store import fetch
from modelledger.mlops.store.digest import digest_folder
from modelledger.mlops.store.index import StoragePointer
from modelledger.mlops.store.ledger_records import to_ledger_manifest, to_ledger_storage
from modelledger.mlops.store.verification import LedgerEvidence
from modelledger.runtime.processes import process_start_time
from modelledger.sdk.registry.records import Actor, ModelVersion


class Unreachable:
    """An S3 client whose every read fails."""

    def get_object(self, **kw: Any) -> Any:
        raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "GetObject")


def evidence(model: Path) -> LedgerEvidence:
    m = digest_folder(model)
    record = ModelVersion(
        name="m",
        version="1",
        status="REGISTERED",
        model_digest=m.model_digest,
        manifest=to_ledger_manifest(manifest=m),
        manifest_digest=m.manifest_digest,
        storage=to_ledger_storage(
            pointer=StoragePointer(bucket="anchored", key="models/x/index.json", version_id="v1", sha256="0" * 64)
        ),
        registrant=Actor("0" * 64, "Org1MSP", "registrar"),
    )
    return LedgerEvidence(record, None, "not needed here")


def staging(parent: Path, dest: str, kind: str, pid: int, start: int, host: str = "") -> Path:
    path = parent / f".{dest}.{kind}-{pid}-{start}-{host or fetch._host_tag()}-abcd_123"
    (path / "model").mkdir(parents=True)
    (path / "model" / "weights.bin").write_bytes(b"half")
    return path


def test_a_fetch_removes_the_staging_folders_that_killed_fetches_into_the_same_folder_left(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "MLmodel").write_text("flavors: {}\n")
    me, started = os.getpid(), process_start_time(os.getpid())
    assert started is not None
    killed = staging(tmp_path, "out", "verify", me, started + 1)  # this pid, another process (reused pid)
    killed_partial = staging(tmp_path, "out", "partial", 2**22 + 7, 5)  # no such process
    running = staging(tmp_path, "out", "verify", me, started)  # a fetch still running: this process
    elsewhere = staging(tmp_path, "out", "verify", 2**22 + 7, 5, host="0123abcd")  # another host's
    other_dest = staging(tmp_path, "out2", "verify", 2**22 + 7, 5)  # another destination's
    result = fetch.fetch_verified(Unreachable(), evidence(model), tmp_path / "out")
    assert not result.ok and not (tmp_path / "out").exists()
    assert not killed.exists() and not killed_partial.exists()
    assert running.exists() and elsewhere.exists() and other_dest.exists()
    # The failed fetch removed its own staging folder.
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out."))
    assert left == sorted(p.name for p in (running, elsewhere))


def test_store_verify_with_a_manifest_says_it_checked_bytes_only(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "MLmodel").write_text("flavors: {}\n")
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps(digest_folder(model).to_json()))
    result = CliRunner().invoke(app, ["store", "verify", str(model), "--manifest", str(manifest), "--json"])
    doc = json.loads(result.stdout)
    assert result.exit_code == 0 and doc["ok"] is True and doc["scope"] == "bytes-only"
    text = CliRunner().invoke(app, ["store", "verify", str(model), "--manifest", str(manifest)])
    assert text.exit_code == 0 and "bytes only: no signer or ledger check" in text.stdout

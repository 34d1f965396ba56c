"""The anchoring worker's decisions, with fakes for MLflow and the ledger (the real ones: tests/integration)."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import hashlib
import io
import json
import logging
import threading
import time
from pathlib import Path
from types import SimpleNamespace as NS
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from modelledger.mlops.bridge import ledger_comparison
from modelledger.mlops.bridge.anchor import Anchorer
from modelledger.mlops.bridge.anchor_parts import AnchorParts
from modelledger.mlops.bridge.artifacts import ArtifactAllowlist
from modelledger.mlops.bridge.dataset_claims import register_dataset
from modelledger.mlops.bridge.outbox import Outbox
from modelledger.mlops.bridge.provenance import Provenance, logged_model_id, provenance_doc
from modelledger.mlops.store.copy_checks import VerifyReport
from modelledger.mlops.store.digest import FileEntry, Manifest
from modelledger.mlops.store.index import StoragePointer
from modelledger.mlops.store.upload import ModelUploader
from modelledger.sdk.registry.client import Conflict, Invalid, NotFound
from modelledger.sdk.registry.records import DatasetRef, Framework, Library, Metric, MLflowSource, Param
from tests.unit.s3_fakes import ConditionalBucket


class FakeMlflow:
    def __init__(self, source: str = "models:/m-abc", run_id: str = "r1", fail_tags: bool = False) -> None:
        self.mv = NS(name="m", version="1", source=source, run_id=run_id, status="READY", tags={}, user_id="u")
        self.calls: list[tuple[str, str]] = []
        self.fail_tags = fail_tags
        self.located = False

    def get_model_version(self, name: str, version: str) -> Any:
        return self.mv

    def get_model_version_download_uri(self, name: str, version: str) -> str:
        self.located = True
        return "mlflow-artifacts:/1/r1/artifacts/model"  # in FilesBucket (MLflow's artifacts bucket)

    def get_run(self, run_id: str) -> Any:
        return NS(
            data=NS(params={"C": "0.5"}, metrics={"accuracy": 0.9}),
            info=NS(run_id=run_id, user_id="u"),
            inputs=NS(dataset_inputs=[DATASET_INPUT]),
        )

    def get_logged_model(self, model_id: str) -> Any:
        return NS(model_id=model_id, params={}, metrics=[], source_run_id="r1")

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        if self.fail_tags:
            raise ConnectionError("MLflow is down")
        self.calls.append((key, value))
        self.mv.tags[key] = value

    def delete_model_version_tag(self, name: str, version: str, key: str) -> None:
        self.calls.append((key, "<deleted>"))
        self.mv.tags.pop(key, None)


class FakeRegistry:
    def __init__(self, record: Any | None) -> None:
        self.record = record

    def get_model_version(self, name: str, version: str) -> Any:
        if self.record is None:
            raise NotFound("NOT_FOUND: model version m/1")
        return self.record


# The version's files as MLflow holds them (in FilesBucket).
MODEL_FILES = {"MLmodel": b"flavors: {}\n", "model.bin": b"weights" * 1000, "data/a-b.txt": b"x"}


def manifest_of(files: dict[str, bytes]) -> Manifest:
    return Manifest(tuple(FileEntry(p, len(b), hashlib.sha256(b).hexdigest()) for p, b in files.items()))


# A training dataset the run logged with modelledger.mlflow.log_dataset (full-content SHA-256 in its input tags).
DATASET_INPUT = NS(
    dataset=NS(name="train", source="s3://data/train.csv"),
    tags=[NS(key="modelledger.sha256", value="c" * 64), NS(key="modelledger.source", value="s3://data/train.csv")],
)


def record(
    source: str,
    run_id: str,
    files: dict[str, bytes] | None = None,
    registrant: tuple[str, str] = ("Org1MSP", "registrar"),
    model_digest: str | None = None,
    **provenance: Any,
) -> Any:
    """A ledger record of m/1, by default of exactly the files and provenance MLflow holds (FakeMlflow's run)."""
    manifest = manifest_of(MODEL_FILES if files is None else files)
    fields = {
        "mlflow": MLflowSource(model_id=logged_model_id(source), run_id=run_id, source=source, user="u"),
        "framework": Framework("unknown", "unknown"),  # MODEL_FILES' MLmodel names no flavor
        "libraries": [],
        "params": [Param("C", "0.5")],
        "metrics": [Metric("accuracy", 0.9)],
        "datasets": [DatasetRef(name="train", sha256="c" * 64, source="s3://data/train.csv", registered=True)],
    } | provenance
    return NS(
        status="REGISTERED",
        approvals=[],
        deployments=[],
        registered_tx_id="tx-1",
        model_digest=model_digest or manifest.model_digest,
        manifest_digest=manifest.manifest_digest,
        manifest=NS(files=[NS(path=f.path, sha256=f.sha256, size=f.size) for f in manifest.files]),
        storage=NS(bucket="anchored", key="models/x/index.json", version_id="v1", sha256="s" * 64),
        registrant=NS(msp_id=registrant[0], role=registrant[1], cert_fingerprint="f" * 64),
        **fields,
    )


@pytest.fixture(autouse=True)
def anchored_copies(monkeypatch: pytest.MonkeyPatch) -> dict[str, VerifyReport]:
    """verify_s3 of the anchored copy a record points at (real S3: tests/integration): sound unless a test says."""
    reports: dict[str, VerifyReport] = {}
    monkeypatch.setattr(ledger_comparison, "verify_s3", lambda client, pointer, manifest: reports.get(pointer.key, VerifyReport()))
    return reports


class FilesBucket:
    """MLflow's artifacts bucket (``s3://modelledger-mlflow/artifacts``) holding the version's files."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.gets = 0

    def get_paginator(self, name: str) -> Any:
        files = self.files

        class Pages:
            def paginate(self, Bucket: str, Prefix: str) -> list[dict[str, Any]]:
                return [{"Contents": [{"Key": Prefix + rel, "Size": len(b), "ETag": '"e"'} for rel, b in files.items()]}]

        return Pages()

    def get_object(self, Bucket: str, Key: str, **kw: Any) -> dict[str, Any]:
        self.gets += 1
        return {"Body": io.BytesIO(self.files[Key.split("/artifacts/model/", 1)[1]])}


class AnchoredBucket:
    """The anchored bucket as the reachability probe sees it (its copies: the ``anchored_copies`` fixture)."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    def head_object(self, **kw: Any) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        return {}


def anchorer(
    tmp_path: Path, mlflow: FakeMlflow, registry: FakeRegistry, files: dict[str, bytes] = MODEL_FILES
) -> tuple[Anchorer, Outbox]:
    outbox = Outbox(tmp_path / "outbox.db", max_attempts=2)
    parts = AnchorParts(
        mlflow=mlflow,
        registry=registry,  # type: ignore[arg-type]
        network=None,  # type: ignore[arg-type]
        uploader=NS(bucket="anchored", client=AnchoredBucket()),  # type: ignore[arg-type]
        signing=None,  # type: ignore[arg-type]
        allowlist=ArtifactAllowlist.of("http://127.0.0.1:7950", ["modelledger-mlflow"]),
        tracking_uri="http://127.0.0.1:7950",
        artifacts_destination="s3://modelledger-mlflow/artifacts",
        artifacts_s3=FilesBucket(files),
    )
    return Anchorer(parts, outbox, 60), outbox


def webhook_job_of_block_9(outbox: Outbox) -> Any:
    """A leased webhook job whose checkpoint already knows the block of tx-1 (no network to ask here)."""
    outbox.enqueue("m", "1", "webhook")
    return outbox.checkpoint(outbox.lease("w", 60), 60, tx_id="tx-1", block=9)


def test_a_version_already_on_the_ledger_is_tagged_with_the_detail_tags_before_the_status(tmp_path: Path) -> None:
    mlflow = FakeMlflow()
    mlflow.mv.tags["ledger.error"] = "peer down"
    a, outbox = anchorer(tmp_path, mlflow, FakeRegistry(record("models:/m-abc", "r1")))
    job = webhook_job_of_block_9(outbox)
    assert a.process(job) == "done"
    keys = [k for k, _ in mlflow.calls]
    # The details (and removing the stale error) go in parallel, in any order; the status strictly last.
    assert keys[-1] == "ledger.status" and mlflow.mv.tags["ledger.status"] == "anchored"
    assert sorted(keys[:-1]) == ["ledger.block", "ledger.error", "ledger.tx_id", "model.digest", "storage.uri"]
    assert ("ledger.error", "<deleted>") in mlflow.calls
    assert mlflow.mv.tags["ledger.block"] == "9" and "ledger.error" not in mlflow.mv.tags
    assert mlflow.mv.tags["storage.uri"] == "s3://anchored/models/x/index.json?versionId=v1"
    assert outbox.get("m", "1").state == "done"


def test_a_namesake_on_the_ledger_is_a_conflict(tmp_path: Path) -> None:
    mlflow = FakeMlflow(source="models:/m-new", run_id="r2")
    a, outbox = anchorer(tmp_path, mlflow, FakeRegistry(record("models:/m-old", "r1")))
    outbox.enqueue("m", "1", "reconciler")
    assert a.process(outbox.lease("w", 60)) == "conflict"
    job = outbox.get("m", "1")
    assert job.state == "conflict" and "it names another MLflow source (models:/m-old, run r1)" in job.reason
    assert mlflow.mv.tags["ledger.status"] == "conflict" and "another MLflow source" in mlflow.mv.tags["ledger.error"]


def anchored_tags(mlflow: FakeMlflow) -> set[str]:
    return set(mlflow.mv.tags) & {"ledger.tx_id", "ledger.block", "model.digest", "storage.uri"}


def test_a_record_of_other_bytes_is_a_conflict_naming_the_files_and_its_registrant(tmp_path: Path) -> None:
    # A data scientist registered m/1 directly, with MLflow's source but a harmless copy of other bytes.
    planted = {**MODEL_FILES, "model.bin": b"harmless", "extra.txt": b"e"}
    del planted["data/a-b.txt"]
    mlflow = FakeMlflow()
    mlflow.mv.tags["ledger.tx_id"] = "tx-old"  # left from an earlier attempt: must not stay
    a, outbox = anchorer(tmp_path, mlflow, FakeRegistry(record("models:/m-abc", "r1", planted, ("Org1MSP", "data_scientist"))))
    assert a.process(webhook_job_of_block_9(outbox)) == "conflict"
    job = outbox.get("m", "1")
    assert job.state == "conflict" and not job.transient
    for part in (
        "registered by Org1MSP data_scientist, certificate " + "f" * 64,
        "files that differ: model.bin",
        "files only on the ledger: extra.txt",
        "files only in MLflow: data/a-b.txt",
    ):
        assert part in job.reason
    assert mlflow.mv.tags["ledger.status"] == "conflict" and mlflow.mv.tags["ledger.error"] == job.reason
    assert anchored_tags(mlflow) == set()  # nothing names the record as this version's anchor


def test_a_record_listing_no_files_is_a_conflict(tmp_path: Path) -> None:
    mlflow = FakeMlflow()
    a, outbox = anchorer(tmp_path, mlflow, FakeRegistry(record("models:/m-abc", "r1", files={})))
    assert a.process(webhook_job_of_block_9(outbox)) == "conflict"
    assert "it lists no files" in outbox.get("m", "1").reason and mlflow.mv.tags["ledger.status"] == "conflict"


def test_a_record_with_the_right_files_but_another_model_digest_is_a_conflict(tmp_path: Path) -> None:
    mlflow = FakeMlflow()
    a, outbox = anchorer(tmp_path, mlflow, FakeRegistry(record("models:/m-abc", "r1", model_digest="d" * 64)))
    assert a.process(webhook_job_of_block_9(outbox)) == "conflict"
    assert "its modelDigest " + "d" * 64 + " is not " in outbox.get("m", "1").reason


def test_a_record_of_the_same_bytes_by_another_registrant_is_anchored(tmp_path: Path) -> None:
    mlflow = FakeMlflow()
    a, outbox = anchorer(tmp_path, mlflow, FakeRegistry(record("models:/m-abc", "r1", registrant=("Org1MSP", "data_scientist"))))
    outbox.enqueue("m", "1", "reconciler")  # not a webhook's: no copy goes ahead of the reads
    assert a.process(outbox.checkpoint(outbox.lease("w", 60), 60, tx_id="tx-1", block=9)) == "done"
    assert mlflow.mv.tags["ledger.status"] == "anchored" and mlflow.mv.tags["model.digest"] == manifest_of(MODEL_FILES).model_digest
    # MLflow's bytes were read and digested by this job, each file once (MLmodel's provenance copied from that read).
    assert a.parts.artifacts_s3.gets == len(MODEL_FILES)


def own_checkpoint(rec: Any) -> dict[str, Any]:
    """What a job that copied MODEL_FILES itself checkpointed: their manifest and the provenance it read."""
    fields = ("mlflow", "framework", "libraries", "params", "metrics", "datasets")
    prov = Provenance(**{k: getattr(record("models:/m-abc", "r1"), k) for k in fields})
    return {"manifest": manifest_of(MODEL_FILES).to_json(), "provenance": provenance_doc(prov)}


def test_a_job_that_copied_the_files_itself_compares_the_record_with_its_own_checkpoint(tmp_path: Path) -> None:
    # After a crash between the copy and the tags: the checkpoint holds what this job read and stored.
    mlflow = FakeMlflow()
    a, outbox = anchorer(tmp_path, mlflow, FakeRegistry(record("models:/m-abc", "r1")), files={})
    job = outbox.checkpoint(webhook_job_of_block_9(outbox), 60, **own_checkpoint(record("models:/m-abc", "r1")))
    assert a.process(job) == "done" and a.parts.artifacts_s3.gets == 0  # nothing read again
    outbox.requeue("m", "1", "again")
    a2, _ = anchorer(tmp_path, mlflow, FakeRegistry(record("models:/m-abc", "r1", files={"model.bin": b"other"})))
    job = outbox.checkpoint(outbox.lease("w", 60), 60, **own_checkpoint(record("models:/m-abc", "r1")), block=9, tx_id="tx-1")
    assert a2.process(job) == "conflict"


@pytest.mark.parametrize("stale", ["revived", "other-transaction"])
def test_a_revived_job_or_one_of_another_transaction_reads_mlflows_bytes_again(tmp_path: Path, stale: str) -> None:
    # The checkpoint says the files were MODEL_FILES, but MLflow now holds other bytes: they are what counts.
    mlflow = FakeMlflow()
    a, outbox = anchorer(tmp_path, mlflow, FakeRegistry(record("models:/m-abc", "r1")), files={"model.bin": b"now"})
    outbox.enqueue("m", "1", "reconciler")
    job = outbox.checkpoint(outbox.lease("w", 60), 60, **own_checkpoint(record("models:/m-abc", "r1")), block=9)
    if stale == "revived":
        outbox.complete(job, tx_id="tx-1")
        assert outbox.revive("m", "1", "tags lost")
        job = outbox.lease("w", 60)
    else:
        job = outbox.checkpoint(job, 60, tx_id="tx-0")
    assert a.process(job) == "conflict" and a.parts.artifacts_s3.gets > 0
    assert "files only in MLflow: model.bin" not in outbox.get("m", "1").reason  # model.bin is in both
    assert "files that differ: model.bin" in outbox.get("m", "1").reason


@pytest.mark.parametrize(
    ("planted", "named"),
    [
        ({"datasets": []}, "its datasets differ from MLflow's (" + "c" * 64 + ")"),
        ({"metrics": [Metric("accuracy", 0.99)]}, "its metrics differ from MLflow's (accuracy)"),
        ({"params": [Param("C", "0.5"), Param("extra", "1")]}, "its params differ from MLflow's (extra)"),
        ({"framework": Framework("sklearn", "1.5")}, "its framework sklearn 1.5 is not unknown unknown"),
        ({"libraries": [Library("torch", "2")]}, "its libraries differ from MLflow's (torch)"),
        (
            {"mlflow": MLflowSource(model_id="m-abc", run_id="", source="models:/m-abc", user="u")},
            "it names another MLflow source (models:/m-abc, run -)",
        ),
        (
            {"mlflow": MLflowSource(model_id="m-zzz", run_id="r1", source="models:/m-abc", user="u")},
            "its MLflow logged model and user (m-zzz, u) are not m-abc, u",
        ),
    ],
)
def test_a_record_of_the_right_bytes_with_made_up_provenance_is_a_conflict(
    tmp_path: Path, planted: dict[str, Any], named: str
) -> None:
    mlflow = FakeMlflow()
    a, outbox = anchorer(tmp_path, mlflow, FakeRegistry(record("models:/m-abc", "r1", **planted)))
    assert a.process(webhook_job_of_block_9(outbox)) == "conflict"
    assert named in outbox.get("m", "1").reason and mlflow.mv.tags["ledger.status"] == "conflict"


def test_a_record_whose_storage_is_not_a_sound_anchored_copy_is_a_conflict(
    tmp_path: Path, anchored_copies: dict[str, VerifyReport]
) -> None:
    foreign = record("models:/m-abc", "r1")
    foreign.storage = NS(bucket="planted-bucket", key="k", version_id="v", sha256="s" * 64)
    a, outbox = anchorer(tmp_path, FakeMlflow(), FakeRegistry(foreign))
    assert a.process(webhook_job_of_block_9(outbox)) == "conflict"
    assert "its storage is in bucket 'planted-bucket', not the anchored bucket 'anchored'" in outbox.get("m", "1").reason
    anchored_copies["models/x/index.json"] = VerifyReport(missing=["model.bin"], unprotected=["blobs/sha256/ab"])
    a, outbox = anchorer(tmp_path / "2", FakeMlflow(), FakeRegistry(record("models:/m-abc", "r1")))
    assert a.process(webhook_job_of_block_9(outbox)) == "conflict"
    assert (
        "its storage s3://anchored/models/x/index.json is not a sound write-once copy of the files "
        "(missing: model.bin; not locked: blobs/sha256/ab)"
    ) in outbox.get("m", "1").reason


def test_a_record_registered_by_someone_else_between_the_reads_and_the_submit_is_compared(tmp_path: Path) -> None:
    class FrontRun(FakeRegistry):
        """NotFound when the job reads; CONFLICT at its submit: a data scientist registered m/1 in between."""

        def __init__(self, planted: Any) -> None:
            super().__init__(None)
            self.planted = planted

        def register_model_version_async(self, record_in: Any) -> Any:
            self.record = self.planted
            raise Conflict("CONFLICT: model version m/1 is already registered with other content")

    mlflow = FakeMlflow()
    a, outbox = anchorer(tmp_path, mlflow, FrontRun(record("models:/m-abc", "r1", files={"x": b"planted"})))
    outbox.enqueue("m", "1", "reconciler")
    # The job resumes after its copy (pointer checkpointed): it submits, and the CONFLICT leads to the comparison.
    pointer = StoragePointer("anchored", "models/x/index.json", "v1", "s" * 64).to_json()
    job = outbox.checkpoint(outbox.lease("w", 60), 60, **own_checkpoint(record("models:/m-abc", "r1")), pointer=pointer)
    state = a.process(job)
    assert state == "conflict", outbox.get("m", "1").reason
    assert "files only on the ledger: x" in outbox.get("m", "1").reason


def test_a_missing_version_is_dead_and_an_unreachable_mlflow_is_retried(tmp_path: Path) -> None:
    class Missing(Exception):
        error_code = "RESOURCE_DOES_NOT_EXIST"

    class Gone(FakeMlflow):
        def get_model_version(self, name: str, version: str) -> Any:
            raise Missing("RESOURCE_DOES_NOT_EXIST: no such version")

    a, outbox = anchorer(tmp_path, Gone(), FakeRegistry(None))
    outbox.enqueue("m", "1", "webhook")
    assert a.process(outbox.lease("w", 60)) == "dead"
    assert outbox.get("m", "1").reason == "model version m/1 is not in the MLflow registry"

    class Down(FakeMlflow):
        def get_model_version(self, name: str, version: str) -> Any:
            raise ConnectionError("connection refused")

    a, outbox = anchorer(tmp_path / "2", Down(fail_tags=True), FakeRegistry(None))
    outbox.enqueue("m", "1", "webhook")
    assert a.process(outbox.lease("w", 60)) == "pending"
    job = outbox.get("m", "1")
    assert job.reason == "ConnectionError: connection refused" and job.state == "pending"


@pytest.mark.parametrize(
    ("source", "model_id"),
    [("models:/m-1a2b", "m-1a2b"), ("models:/fraud/3", ""), ("runs:/r/model", ""), (None, ""), ("models:/m-x/y", "")],
)
def test_the_logged_model_id_is_read_from_a_models_source(source: str | None, model_id: str) -> None:
    assert logged_model_id(source) == model_id


def test_a_failed_tag_write_waits_for_the_others_before_the_outcome_is_tagged(tmp_path: Path) -> None:
    class Flaky(FakeMlflow):
        def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
            if key == "ledger.tx_id":
                raise ConnectionError("MLflow 503")
            if key in ("model.digest", "storage.uri", "ledger.block"):
                time.sleep(0.2)  # slow requests still running when the failure is known
            super().set_model_version_tag(name, version, key, value)

        def delete_model_version_tag(self, name: str, version: str, key: str) -> None:
            time.sleep(0.05)
            super().delete_model_version_tag(name, version, key)

    mlflow = Flaky()
    mlflow.mv.tags["ledger.error"] = "old"
    a, outbox = anchorer(tmp_path, mlflow, FakeRegistry(record("models:/m-abc", "r1")))
    job = webhook_job_of_block_9(outbox)
    assert a.process(job) == "pending"
    calls = list(mlflow.calls)
    time.sleep(0.5)
    assert mlflow.calls == calls  # nothing of the failed attempt landed after its outcome
    assert calls[-2:] == [("ledger.error", "ConnectionError: MLflow 503"), ("ledger.status", "pending")]
    assert mlflow.mv.tags["ledger.error"] == "ConnectionError: MLflow 503" and "ledger.status" in mlflow.mv.tags


def test_a_failed_version_keeps_no_tags_of_a_registration_in_flight(tmp_path: Path) -> None:
    mlflow = FakeMlflow(source="models:/m-new", run_id="r2")
    mlflow.mv.tags.update({"ledger.tx_id": "tx-9", "model.digest": "d" * 64, "storage.uri": "s3://b/k?versionId=v"})
    a, outbox = anchorer(tmp_path, mlflow, FakeRegistry(record("models:/m-old", "r1")))
    outbox.enqueue("m", "1", "reconciler")
    assert a.process(outbox.lease("w", 60)) == "conflict"
    assert sorted(mlflow.mv.tags) == ["ledger.error", "ledger.status"] and mlflow.mv.tags["ledger.status"] == "conflict"


def test_a_prompt_version_is_refused_permanently(tmp_path: Path) -> None:
    mlflow = FakeMlflow()
    mlflow.mv.tags["mlflow.prompt.is_prompt"] = "true"
    a, outbox = anchorer(tmp_path, mlflow, FakeRegistry(None))
    outbox.enqueue("m", "1", "reconciler")
    assert a.process(outbox.lease("w", 60)) == "dead"
    assert outbox.get("m", "1").reason == "m/1 is a version of an MLflow prompt, not a model: prompts are not anchored"
    assert mlflow.calls == []  # no ledger tag written on a prompt


def test_a_name_the_ledger_refuses_is_dead_before_anything_is_fetched(tmp_path: Path) -> None:
    mlflow = FakeMlflow()
    mlflow.mv.name = "team/fraud"
    a, outbox = anchorer(tmp_path, mlflow, FakeRegistry(None))
    outbox.enqueue("team/fraud", "1", "reconciler")
    assert a.process(outbox.lease("w", 60)) == "dead"
    job = outbox.get("team/fraud", "1")
    want = "team/fraud/1 cannot be anchored: the ledger refuses its name: must not contain '/' or ':'"
    assert not job.transient and job.reason == want
    assert mlflow.mv.tags == {"ledger.status": "failed", "ledger.error": want}


def test_a_webhook_job_goes_ahead_of_its_reads_but_a_version_on_the_ledger_is_only_tagged(tmp_path: Path) -> None:
    mlflow = FakeMlflow()
    a, outbox = anchorer(tmp_path, mlflow, FakeRegistry(record("models:/m-abc", "r1")))
    job = webhook_job_of_block_9(outbox)
    assert a.process(job) == "done"
    # The files were located before the reads were in (the copy would have gone ahead), yet no
    # pending tag and no refusal of the source: the ledger's answer decided.
    assert mlflow.located and "pending" not in [v for _, v in mlflow.calls]
    assert mlflow.mv.tags["ledger.status"] == "anchored" and outbox.get("m", "1").state == "done"


def test_a_refusal_by_the_reads_wins_over_the_copy_that_went_ahead_of_them(tmp_path: Path) -> None:
    mlflow = FakeMlflow()
    mlflow.mv.tags["mlflow.prompt.is_prompt"] = "true"
    a, outbox = anchorer(tmp_path, mlflow, FakeRegistry(None))
    outbox.enqueue("m", "1", "webhook")
    assert a.process(outbox.lease("w", 60)) == "dead"
    # Not "file:///etc/model is not an allowed artifact store" from the locate that ran ahead.
    assert outbox.get("m", "1").reason.endswith("is a version of an MLflow prompt, not a model: prompts are not anchored")
    assert mlflow.calls == []


class ArtifactBucket:
    """MLflow's artifact bucket holding one model file; ``read`` is set once the copy starts reading it.

    Past its first MiB the file is served only once ``go_on`` is set (and a moment later).
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.read = threading.Event()
        self.go_on = threading.Event()

    def get_paginator(self, name: str) -> Any:
        data = self.data

        class Pages:
            def paginate(self, Bucket: str, Prefix: str) -> list[dict[str, Any]]:
                return [{"Contents": [{"Key": f"{Prefix}model.bin", "Size": len(data), "ETag": '"e1"'}]}]

        return Pages()

    def get_object(self, **kw: Any) -> dict[str, Any]:
        self.read.set()
        bucket = self

        class Body(io.BytesIO):
            def readinto(self, buffer: Any) -> int:
                if self.tell() >= 1024 * 1024 and not bucket.go_on.is_set():
                    bucket.go_on.wait(5)
                    time.sleep(0.05)  # the reads' verdict lands meanwhile
                return super().readinto(buffer)

        return {"Body": Body(self.data)}


def test_a_copy_that_went_ahead_of_the_reads_stops_when_they_find_the_version_on_the_ledger(tmp_path: Path) -> None:
    data = b"".join(bytes([i]) * 1024 * 1024 for i in range(8))  # eight distinct chunks
    artifacts = ArtifactBucket(data)

    class Slow(FakeMlflow):
        def get_model_version(self, name: str, version: str) -> Any:
            assert artifacts.read.wait(5), "the copy did not start before the version was read"
            artifacts.go_on.set()
            return self.mv

        def get_model_version_download_uri(self, name: str, version: str) -> str:
            return "mlflow-artifacts:/1/r1/artifacts/model"

    mlflow = Slow()
    anchored = ConditionalBucket()
    a, outbox = anchorer(tmp_path, mlflow, FakeRegistry(record("models:/m-abc", "r1", {"model.bin": data})))
    a.parts = dataclasses.replace(
        a.parts,
        uploader=ModelUploader(anchored, "anchored", dt.timedelta(days=1), workers=2, chunk_size=1024 * 1024),
        allowlist=ArtifactAllowlist.of("http://127.0.0.1:7950", ["modelledger-mlflow"]),
        artifacts_destination="s3://modelledger-mlflow/artifacts",
        artifacts_s3=artifacts,
        scratch=tmp_path,
    )
    job = webhook_job_of_block_9(outbox)
    assert a.process(job) == "done"
    assert mlflow.mv.tags["ledger.status"] == "anchored" and "pending" not in [v for _, v in mlflow.calls]
    # The copy stopped at its next read: a chunk or two of the eight went out, no bundle, no index.
    assert anchored.objects and all(k.startswith("blobs/sha256/") for k in anchored.objects)
    assert len(anchored.objects) < 8


class ClaimingRegistry(FakeRegistry):
    """Answers ``RegisterDataset`` as chaincode 1.3.0 does for the bridge's organisation (Org1MSP)."""

    def __init__(self) -> None:
        super().__init__(None)
        self.claims: dict[str, tuple[str, str]] = {}

    def register_dataset(self, name: str, sha256: str, source: str, schema_summary: str = "") -> Any:
        claim = self.claims.setdefault(sha256, (name, source))
        if claim != (name, source):
            raise Conflict(
                f"CONFLICT: dataset {sha256} is already registered by Org1MSP with other content (differs in name)"
            )
        return NS(name=claim[0], sha256=sha256, source=claim[1], owner="Org1MSP")


def test_a_dataset_claimed_before_with_another_description_is_a_warning_not_a_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    a, _ = anchorer(tmp_path, FakeMlflow(), ClaimingRegistry())  # type: ignore[arg-type]
    ds = DatasetRef(name="transactions", sha256="a" * 64, source="s3://data/tx.parquet")
    with caplog.at_level(logging.WARNING, logger="modelledger.bridge.anchor"):
        assert register_dataset(a.parts.registry, ds) == ""
        assert register_dataset(a.parts.registry, ds) == ""  # the same claim again: idempotent, nothing to say
        assert caplog.records == []
        note = register_dataset(a.parts.registry, dataclasses.replace(ds, name="tx-renamed"))
    # The note goes to the version's ledger.note tag, so the data scientist sees it too.
    assert note.startswith(f"dataset tx-renamed (sha256 {'a' * 64}) was claimed before with another description: CONFLICT")
    (warning,) = caplog.records
    assert warning.getMessage() == "dataset claimed before with another description"
    assert warning.__dict__["reason"] == (
        f"CONFLICT: dataset {'a' * 64} is already registered by Org1MSP with other content (differs in name)"
    )
    assert (warning.__dict__["sha256"], warning.__dict__["dataset"]) == ("a" * 64, "tx-renamed")


def test_any_other_refusal_of_a_dataset_is_raised(tmp_path: Path) -> None:
    class Refusing(FakeRegistry):
        def register_dataset(self, name: str, sha256: str, source: str, schema_summary: str = "") -> Any:
            raise Invalid("INVALID: source: must not be blank")

    a, _ = anchorer(tmp_path, FakeMlflow(), Refusing(None))
    with pytest.raises(Invalid):
        register_dataset(a.parts.registry, DatasetRef(name="d", sha256="a" * 64, source=" "))


@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url="https://127.0.0.1:7900"),
        ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "HeadObject"),
        ClientError({"Error": {"Code": "SlowDown", "Message": "busy"}}, "HeadObject"),
    ],
)
def test_an_anchored_copy_s3_cannot_read_now_is_retried_not_a_conflict(
    tmp_path: Path, anchored_copies: dict[str, VerifyReport], error: Exception
) -> None:
    anchored_copies["models/x/index.json"] = VerifyReport(error="cannot read the index: could not connect")
    a, outbox = anchorer(tmp_path, FakeMlflow(), FakeRegistry(record("models:/m-abc", "r1")))
    a.parts = dataclasses.replace(a.parts, uploader=NS(bucket="anchored", client=AnchoredBucket(error)))
    assert a.process(webhook_job_of_block_9(outbox)) == "pending"
    assert outbox.get("m", "1").reason.startswith("RuntimeError: cannot")


def test_an_anchored_copy_that_reads_differently_twice_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reports = iter([VerifyReport(changed=["model.bin"]), VerifyReport()])
    monkeypatch.setattr(ledger_comparison, "verify_s3", lambda client, pointer, manifest: next(reports))
    a, outbox = anchorer(tmp_path, FakeMlflow(), FakeRegistry(record("models:/m-abc", "r1")))
    assert a.process(webhook_job_of_block_9(outbox)) == "pending"
    assert "read differently twice" in outbox.get("m", "1").reason


def test_a_revived_job_keeps_the_provenance_this_bridge_registered(tmp_path: Path) -> None:
    # Evaluation metrics were logged to the run after the version was anchored; the tags were then lost.
    class LaterMetrics(FakeMlflow):
        def get_run(self, run_id: str) -> Any:
            run = super().get_run(run_id)
            run.data.metrics["eval_f1"] = 0.8
            return run

    mlflow = LaterMetrics()
    a, outbox = anchorer(tmp_path, mlflow, FakeRegistry(record("models:/m-abc", "r1")))
    outbox.enqueue("m", "1", "webhook")
    job = outbox.checkpoint(outbox.lease("w", 60), 60, **own_checkpoint(record("models:/m-abc", "r1")), block=9)
    outbox.complete(job, tx_id="tx-1")
    assert outbox.revive("m", "1", "tags lost")
    job = outbox.lease("w", 60)
    assert "manifest" not in job.checkpoint and "pointer" not in job.checkpoint  # the bytes are read again
    assert a.process(job) == "done" and a.parts.artifacts_s3.gets > 0
    # Registered by someone else, the same drift is a conflict: the record's metrics are not the run's.
    a2, outbox2 = anchorer(tmp_path / "2", mlflow, FakeRegistry(record("models:/m-abc", "r1")))
    assert a2.process(webhook_job_of_block_9(outbox2)) == "conflict"
    assert "its metrics differ from MLflow's (eval_f1)" in outbox2.get("m", "1").reason


def test_a_conflict_at_submit_whose_record_is_not_readable_yet_is_retried(tmp_path: Path) -> None:
    class Lagging(FakeRegistry):
        def register_model_version_async(self, record_in: Any) -> Any:
            raise Conflict("CONFLICT: model version m/1 is already registered with other content")

    a, outbox = anchorer(tmp_path, FakeMlflow(), Lagging(None))
    outbox.enqueue("m", "1", "reconciler")
    pointer = StoragePointer("anchored", "models/x/index.json", "v1", "s" * 64).to_json()
    job = outbox.checkpoint(outbox.lease("w", 60), 60, **own_checkpoint(record("models:/m-abc", "r1")), pointer=pointer)
    assert a.process(job) == "pending"
    assert "its record is not readable yet" in outbox.get("m", "1").reason


def test_a_job_reads_its_run_once_and_its_provenance_from_the_bytes_it_read(tmp_path: Path) -> None:
    # A runs:/ version: locating its files reads the run (its artifact location), and so does the provenance.
    class RunsSource(FakeMlflow):
        def __init__(self) -> None:
            super().__init__(source="runs:/r1/model")
            self.runs_read = 0

        def get_model_version_download_uri(self, name: str, version: str) -> str:
            self.located = True
            return "runs:/r1/model"

        def get_run(self, run_id: str) -> Any:
            self.runs_read += 1
            run = super().get_run(run_id)
            run.info.artifact_uri = "mlflow-artifacts:/1/r1/artifacts"
            return run

    files = {**MODEL_FILES, "MLmodel": b"flavors:\n  sklearn: {sklearn_version: 1.5.2}\n", "requirements.txt": b"numpy==2.1\n"}
    mlflow = RunsSource()
    rec = record("runs:/r1/model", "r1", files=files, registrant=("Org1MSP", "data_scientist"),
                 framework=Framework("sklearn", "1.5.2"), libraries=[Library("numpy", "2.1")])
    a, outbox = anchorer(tmp_path, mlflow, FakeRegistry(rec), files=files)
    outbox.enqueue("m", "1", "reconciler")
    assert a.process(outbox.checkpoint(outbox.lease("w", 60), 60, tx_id="tx-1", block=9)) == "done", outbox.get("m", "1").reason
    assert mlflow.runs_read == 1  # one request for both
    assert a.parts.artifacts_s3.gets == len(files)  # MLmodel and requirements.txt read once, for the digest and the provenance


def test_the_pending_tag_is_written_once_the_files_are_located(tmp_path: Path) -> None:
    # MLflow runs one worker process: the tag must not compete with the reads that locate the files.
    from concurrent.futures import Future

    mlflow = FakeMlflow()
    a, outbox = anchorer(tmp_path, mlflow, FakeRegistry(None))
    outbox.enqueue("m", "1", "webhook")
    job = outbox.lease("w", 60)
    due: Future[Any] = Future()
    located: Future[Any] = Future()
    due.set_result(mlflow.mv)
    writer = threading.Thread(target=a._pending, args=(job, due, located))
    writer.start()
    writer.join(0.3)
    assert writer.is_alive() and mlflow.calls == []
    located.set_result(("s3://modelledger-mlflow/artifacts/1/r1/artifacts/model", None))
    writer.join(5)
    assert mlflow.calls == [("ledger.status", "pending")]


def test_a_fault_point_must_be_one_a_crash_test_can_name() -> None:
    from modelledger.mlops.bridge.concurrency import FAULT_POINTS, fault_point

    for point in FAULT_POINTS:
        fault_point(point)  # no fault asked for: returns
    with pytest.raises(ValueError, match="unknown fault point 'after-uplaod'"):
        fault_point("after-uplaod")


def test_a_version_anchored_again_keeps_the_later_status_the_ledger_holds(tmp_path: Path) -> None:
    # Re-anchored (the reconciler revived it, say) after it was approved: the status comes from the ledger.
    mlflow = FakeMlflow()
    mlflow.mv.tags["ledger.status"] = "approved"
    rec = record("models:/m-abc", "r1")
    rec.status = "APPROVED"
    a, outbox = anchorer(tmp_path, mlflow, FakeRegistry(rec))
    assert a.process(webhook_job_of_block_9(outbox)) == "done"
    assert mlflow.mv.tags["ledger.status"] == "approved" and ("ledger.status", "anchored") not in mlflow.calls


def test_the_anchoring_status_is_read_from_the_ledger_after_the_follower_releases_the_version(tmp_path: Path) -> None:
    # The race: the follower mirrors an approval while the worker finishes anchoring the same version. The
    # worker reads the ledger only once it holds the version's lock, so it never writes "anchored" after
    # the follower wrote "approved" from a newer record.
    class Snapshots(FakeRegistry):  # each read is the record as it is then, as the peer answers
        def get_model_version(self, name: str, version: str) -> Any:
            return copy.copy(super().get_model_version(name, version))

    mlflow = FakeMlflow()
    rec = record("models:/m-abc", "r1")
    registry = Snapshots(rec)
    a, outbox = anchorer(tmp_path, mlflow, registry)
    job = webhook_job_of_block_9(outbox)
    follower_in, approved = threading.Event(), threading.Event()

    def follower() -> None:
        with a.parts.locks.hold("m", "1"):
            follower_in.set()
            approved.wait(5)
            rec.status = "APPROVED"  # committed meanwhile; the follower mirrors it
            mlflow.set_model_version_tag("m", "1", "ledger.status", "approved")

    t = threading.Thread(target=follower)
    t.start()
    follower_in.wait(5)
    worker = threading.Thread(target=lambda: a.process(job))
    worker.start()
    worker.join(0.5)
    assert worker.is_alive()  # waiting for the version's lock, its status not written yet
    approved.set()
    t.join(5)
    worker.join(10)
    assert mlflow.mv.tags["ledger.status"] == "approved"
    assert [v for k, v in mlflow.calls if k == "ledger.status"] == ["approved", "approved"]


def test_a_version_the_ledger_approved_before_it_was_anchored_gets_the_records_tags_then_its_status(
    tmp_path: Path,
) -> None:
    # The follower left it to anchoring (it was pending when the approvals came): anchoring writes them.
    mlflow = FakeMlflow()
    mlflow.mv.tags["ledger.status"] = "pending"
    rec = record("models:/m-abc", "r1")
    rec.status = "APPROVED"
    rec.approvals = [NS(msp_id=org, decision="APPROVED", time="t", tx_id=f"tx-{org}") for org in ("Org2MSP", "Org1MSP")]
    a, outbox = anchorer(tmp_path, mlflow, FakeRegistry(rec))
    assert a.process(webhook_job_of_block_9(outbox)) == "done"
    assert [k for k, _ in mlflow.calls][-2:] == ["ledger.approvals", "ledger.status"]
    assert mlflow.mv.tags["ledger.status"] == "approved"
    assert [a["org"] for a in json.loads(mlflow.mv.tags["ledger.approvals"])] == ["Org1MSP", "Org2MSP"]

"""The MLflow bridge end to end: real Fabric network, MinIO, MLflow server and bridge process.

One stack per module in the session network's state folder: MinIO, the MLflow
tracking server (SQLite, artifacts on MinIO, webhooks deliverable), the webhook
installed with a fresh secret, and ``modelledger bridge serve`` as a supervised
process, restarted by the crash tests with a fault-injection point.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelledger.mlops.bridge.mlflow_credentials import MlflowUser, acting_as, read_user, user_env
from modelledger.mlops.bridge.outbox import Job, Outbox
from modelledger.mlops.bridge.tags import TAG_BLOCK, TAG_DIGEST, TAG_ERROR, TAG_STATUS, TAG_STORAGE, TAG_TX
from modelledger.mlops.bridge.webhook_install import WEBHOOK_NAME
from modelledger.mlops.bridge.webhooks import sign
from modelledger.mlops.servers.bridge_server import BridgeProcess
from modelledger.mlops.servers.minio import S3Server
from modelledger.mlops.servers.stack import MlflowStack
from modelledger.mlops.servers.tracking import MlflowServer
from modelledger.mlops.store.copy_checks import verify_folder, verify_s3
from modelledger.mlops.store.digest import digest_folder
from modelledger.mlops.store.index import StoragePointer
from modelledger.mlops.store.ledger_records import ledger_pointer, version_input
from modelledger.mlops.store.s3_access import s3_client
from modelledger.mlops.store.verification import anchored_bundle, ledger_evidence, verify_version
from modelledger.network import FabricNetwork
from modelledger.runtime.settings import BRIDGE_FAULT_ENV, S3User
from modelledger.sdk.profile import ConnectionProfile
from modelledger.sdk.registry.client import NotFound, RegistryClient
from modelledger.sdk.registry.records import Framework, MLflowSource
from tests.integration.conftest import free_port_pair

pytestmark = pytest.mark.integration


@dataclass
class Stack:
    network: FabricNetwork
    s3: S3Server
    mlflow: MlflowServer
    bridge: BridgeProcess
    env: pytest.MonkeyPatch
    client: Any  # MlflowClient
    profile: ConnectionProfile

    def registry(self, role: str = "auditor") -> RegistryClient:
        gw = self.profile.gateway("Org1MSP", role)
        return RegistryClient(gw.network(self.profile.channel), self.profile.chaincode)

    def outbox(self) -> Outbox:
        return Outbox(self.bridge.settings.outbox_file)

    def restart_bridge(self, fault: str | None = None) -> None:
        self.bridge.down()
        if fault:
            self.env.setenv(BRIDGE_FAULT_ENV, fault)
        else:
            self.env.delenv(BRIDGE_FAULT_ENV, raising=False)
        self.bridge.up()


@pytest.fixture(scope="module")
def stack(network: FabricNetwork) -> Iterator[Stack]:
    import mlflow

    network.chaincode.deploy()
    env = pytest.MonkeyPatch()
    state = network.settings.state_dir
    env.setenv("MODELLEDGER_STATE_DIR", str(state))
    env.setenv("MODELLEDGER_S3_PORT", str(free_port_pair()))
    env.setenv("MODELLEDGER_S3_RETENTION_DAYS", "1")  # short, explicitly: the default is 10 years
    env.setenv("MODELLEDGER_MLFLOW_PORT", str(free_port_pair()))
    env.setenv("MODELLEDGER_BRIDGE_PORT", str(free_port_pair()))
    env.setenv("MODELLEDGER_BRIDGE_RECONCILE_SECONDS", "3")
    env.setenv("MODELLEDGER_BRIDGE_WORKERS", "2")
    parts = MlflowStack.from_env()
    previous_uri = mlflow.get_tracking_uri()
    try:
        client = parts.up()
        for key, value in user_env(parts.mlflow.settings, MlflowUser.SCIENTIST).items():
            env.setenv(key, value)  # this process is the stack's data scientist (MLflow's authentication is on)
        mlflow.set_tracking_uri(parts.mlflow.settings.tracking_uri)
        profile = ConnectionProfile.load(network.layout.connection_profile)
        yield Stack(network, parts.s3, parts.mlflow, parts.bridge, env, client, profile)
    finally:
        for failure in parts.down():
            print(f"teardown: {failure}")
        mlflow.set_tracking_uri(previous_uri)  # MLflow's setting is process-wide: do not leave it on a stopped server
        env.undo()


@pytest.fixture(scope="module")
def model_uri(stack: Stack) -> str:
    """One small scikit-learn model, logged once; tests register versions of it."""
    import mlflow
    import mlflow.sklearn
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from modelledger.mlflow import log_dataset

    x = np.random.default_rng(7).random((40, 3))
    y = (x[:, 0] > 0.5).astype(int)
    mlflow.set_experiment("bridge-tests")
    with mlflow.start_run():
        mlflow.log_params({"C": 0.5, "solver": "lbfgs"})
        mlflow.log_metric("train_accuracy", 0.9)
        import pandas as pd

        log_dataset(pd.DataFrame(x, columns=["a", "b", "c"]).assign(y=y), name="tiny-train", source="tests:rng(7)")
        info = mlflow.sklearn.log_model(LogisticRegression(C=0.5).fit(x, y), name="model")
    return info.model_uri


def register(stack: Stack, name: str, model_uri: str) -> str:
    import mlflow

    return str(mlflow.register_model(model_uri, name).version)


def wait_tags(stack: Stack, name: str, version: str, status: str = "anchored", timeout: float = 120) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    tags: dict[str, str] = {}
    while time.monotonic() < deadline:
        tags = stack.client.get_model_version(name, version).tags
        if tags.get(TAG_STATUS) == status:
            return tags
        if tags.get(TAG_STATUS) == "failed" and status != "failed":
            pytest.fail(f"{name}/{version} failed: {tags.get(TAG_ERROR)}")
        time.sleep(0.25)
    job = stack.outbox().get(name, version)
    pytest.fail(f"{name}/{version} not {status} after {timeout}s: tags {tags}, job {job}; log {stack.bridge.log_path}")


def wait_job(stack: Stack, name: str, version: str, state: str, timeout: float = 30) -> Job:
    deadline = time.monotonic() + timeout
    job = stack.outbox().get(name, version)
    while (job is None or job.state != state) and time.monotonic() < deadline:
        time.sleep(0.1)
        job = stack.outbox().get(name, version)
    assert job is not None and job.state == state, job
    return job


def ledger_count(stack: Stack, name: str) -> int:
    return len([r for r in stack.registry().list_model_versions(name, 1000).records if r.name == name])


def test_a_registered_version_is_anchored_tagged_signed_and_verifiable(stack: Stack, model_uri: str) -> None:
    import mlflow.artifacts

    version = register(stack, "e2e", model_uri)
    tags = wait_tags(stack, "e2e", version)
    record = stack.registry().get_model_version("e2e", version)
    # The manifest the test computes itself from MLflow's copy equals the ledger's.
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=stack.client.get_model_version_download_uri("e2e", version),
                dst_path=tmp,
                tracking_uri=stack.mlflow.settings.tracking_uri,
            )
        )
        mine = digest_folder(folder)
        assert [(f.path, f.size, f.sha256) for f in mine.files] == [
            (f.path, f.size, f.sha256) for f in record.manifest.files
        ]
        assert record.model_digest == mine.model_digest and record.manifest_digest == mine.manifest_digest
        # The whole verification (status, bytes, bundle, signer = registrant) holds for both copies.
        s3 = s3_client(stack.s3.settings, user=S3User.AUDITOR)
        pointer = ledger_pointer(record=record)
        gw = stack.profile.gateway("Org1MSP", "auditor")
        evidence = ledger_evidence(gw.network(stack.profile.channel), stack.profile.chaincode, "e2e", version)
        bundle, no_bundle = anchored_bundle(s3, pointer)
        for result in (
            verify_version(evidence, bundle, lambda m: verify_folder(folder, m), "MLflow's copy", no_bundle),
            verify_version(evidence, bundle, lambda m: verify_s3(s3, pointer, m), "anchored copy", no_bundle),
        ):
            assert result.ok, result.summary()
    assert tags[TAG_TX] == record.registered_tx_id and tags[TAG_DIGEST] == record.model_digest
    assert int(tags[TAG_BLOCK]) > 0 and tags[TAG_STORAGE] == f"{pointer.uri}?versionId={pointer.version_id}"
    assert TAG_ERROR not in tags
    # Provenance: run params and metrics, the logged dataset with its full SHA-256, framework, registrant.
    assert {(p.key, p.value) for p in record.params} >= {("C", "0.5"), ("solver", "lbfgs")}
    assert [(d.name, d.registered) for d in record.datasets] == [("tiny-train", True)]
    assert record.framework.name == "sklearn" and record.registrant.role == "registrar"
    assert record.mlflow.source.startswith("models:/m-") and record.mlflow.model_id


def test_a_version_registered_from_a_run_path_is_anchored(stack: Stack, tmp_path: Path) -> None:
    import mlflow

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors:\n  python_function: {loader_module: plain}\n")
    (folder / "weights.bin").write_bytes(os.urandom(2048))
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(folder), "model")
    stack.client.create_registered_model("from-run")
    mv = stack.client.create_model_version("from-run", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    wait_tags(stack, "from-run", mv.version)
    record = stack.registry().get_model_version("from-run", mv.version)
    assert record.manifest_digest == digest_folder(folder).manifest_digest
    assert record.mlflow.source == f"runs:/{run.info.run_id}/model" and record.mlflow.run_id == run.info.run_id


def logged_folder(tmp_path: Path, name: str, weights: bytes) -> tuple[Path, str]:
    """A model folder logged as a run's artifacts; returns the folder and the run id."""
    import mlflow

    folder = tmp_path / name
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors:\n  python_function: {loader_module: plain}\n")
    (folder / "weights.bin").write_bytes(weights)
    mlflow.set_experiment("planted-records")  # the data scientist's own (MLflow's default one is read-only)
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(folder), "model")
    return folder, run.info.run_id


def plant(stack: Stack, name: str, source: str, folder: Path) -> None:
    """A data scientist of the owner org registers name/1 straight on the ledger, with the files of ``folder``."""
    manifest = digest_folder(folder)
    ds = stack.registry("data_scientist")
    ds.register_model_version(
        version_input(
            name=name,
            version="1",
            manifest=manifest,
            pointer=StoragePointer(bucket="planted-bucket", key="planted/index.json", version_id="v1", sha256="a" * 64),
            mlflow=MLflowSource(source=source),
            framework=Framework(name="python_function", version="1"),
        )
    )


def test_a_record_planted_with_other_bytes_is_tagged_conflict_never_anchored(stack: Stack, tmp_path: Path) -> None:
    folder, run_id = logged_folder(tmp_path, "served", os.urandom(4096))
    harmless = tmp_path / "harmless"
    harmless.mkdir()
    (harmless / "MLmodel").write_bytes((folder / "MLmodel").read_bytes())
    (harmless / "weights.bin").write_bytes(b"the copy the approvers would review")
    source = f"runs:/{run_id}/model"
    plant(stack, "planted", source, harmless)
    stack.client.create_registered_model("planted")
    stack.client.create_model_version("planted", source, run_id=run_id)
    tags = wait_tags(stack, "planted", "1", status="conflict")
    reason = tags[TAG_ERROR]
    assert "files that differ: weights.bin" in reason and "registered by Org1MSP data_scientist" in reason
    assert not {TAG_TX, TAG_BLOCK, TAG_DIGEST, TAG_STORAGE} & set(tags)
    job = wait_job(stack, "planted", "1", "conflict")  # (recorded just after its tags)
    assert job.reason == reason
    # The operator's view lists it as a conflict, with the reason whole.
    env = {"PATH": os.environ["PATH"], "MODELLEDGER_STATE_DIR": os.environ["MODELLEDGER_STATE_DIR"], "COLUMNS": "80"}
    cli = Path(sys.executable).with_name("modelledger")
    out = subprocess.run([cli, "bridge", "jobs", "--state", "conflict", "--json"], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert [(j["key"], j["state"], j["reason"]) for j in json.loads(out.stdout)] == [("planted/1", "conflict", reason)]
    text = subprocess.run([cli, "bridge", "jobs"], env=env, capture_output=True, text=True).stdout
    assert "1 version(s) in conflict" in text and "weights.bin" in text
    # The reconciler keeps reporting it and never tags it anchored.
    time.sleep(4)  # one reconcile period (3 s) and more
    assert stack.client.get_model_version("planted", "1").tags[TAG_STATUS] == "conflict"
    assert '"conflicts": 1' in stack.bridge.log_path.read_text()


def test_a_record_of_the_right_bytes_with_a_made_up_copy_and_provenance_is_a_conflict(
    stack: Stack, tmp_path: Path
) -> None:
    folder, run_id = logged_folder(tmp_path, "same", os.urandom(4096))
    source = f"runs:/{run_id}/model"
    plant(stack, "planted-same", source, folder)  # no run id, a storage pointer outside the anchored bucket
    stack.client.create_registered_model("planted-same")
    stack.client.create_model_version("planted-same", source, run_id=run_id)
    reason = wait_tags(stack, "planted-same", "1", status="conflict")[TAG_ERROR]
    assert "files that differ" not in reason and "registered by Org1MSP data_scientist" in reason
    assert f"it names another MLflow source ({source}, run -)" in reason
    assert "its storage is in bucket 'planted-bucket', not the anchored bucket" in reason


def test_the_bridges_own_record_checked_again_from_scratch_stays_anchored(stack: Stack, model_uri: str) -> None:
    # bridge retry clears the job's checkpoint: the worker reads MLflow's bytes, run, logged model and
    # datasets again and compares every field of the ledger's record, and the anchored copy in full.
    version = register(stack, "recheck", model_uri)
    wait_tags(stack, "recheck", version)
    before = stack.outbox().get("recheck", version)
    assert before is not None and stack.outbox().requeue("recheck", version, "checked again by the test")
    deadline = time.monotonic() + 120
    job = stack.outbox().get("recheck", version)
    while time.monotonic() < deadline and (job.state != "done" or job.updated_at == before.updated_at):
        assert job.state not in ("dead", "conflict"), job.reason
        time.sleep(0.25)
        job = stack.outbox().get("recheck", version)
    assert job.state == "done" and job.checkpoint["tx_id"] == before.checkpoint["tx_id"]
    assert stack.client.get_model_version("recheck", version).tags[TAG_STATUS] == "anchored"
    assert ledger_count(stack, "recheck") == 1


def test_a_burst_of_50_versions_gives_exactly_50_records(stack: Stack, model_uri: str) -> None:
    versions = [register(stack, "burst", model_uri) for _ in range(50)]
    assert len(set(versions)) == 50
    tags = {v: wait_tags(stack, "burst", v, timeout=300) for v in versions}
    assert ledger_count(stack, "burst") == 50
    registry = stack.registry()
    for v in versions:  # each tag names the transaction that registered its version, and only one did
        record = registry.get_model_version("burst", v)
        assert tags[v][TAG_TX] == record.registered_tx_id
        assert [h.tx_id for h in registry.get_history("burst", v)] == [record.registered_tx_id]
    jobs = [j for j in stack.outbox().jobs() if j.name == "burst"]
    assert len(jobs) == 50 and {j.state for j in jobs} == {"done"}


@pytest.mark.parametrize("fault", ["after-upload", "after-submit", "before-commit-status"])
def test_a_bridge_killed_mid_job_resumes_with_exactly_one_record(stack: Stack, model_uri: str, fault: str) -> None:
    name = f"crash-{fault}"
    stack.restart_bridge(fault)
    version = register(stack, name, model_uri)
    deadline = time.monotonic() + 60
    while stack.bridge.supervisor.running("bridge") is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stack.bridge.supervisor.running("bridge") is None, f"the bridge did not stop at {fault}"
    job = stack.outbox().get(name, version)
    assert job is not None and job.state == "leased"  # acknowledged and then interrupted: not lost
    assert ("pointer" in job.checkpoint) and (("tx_id" in job.checkpoint) == (fault == "before-commit-status"))
    stack.restart_bridge()
    tags = wait_tags(stack, name, version)
    assert ledger_count(stack, name) == 1
    job = stack.outbox().get(name, version)
    registry = stack.registry()
    record = registry.get_model_version(name, version)
    assert job.state == "done" and job.checkpoint["pointer"]["versionId"] == record.storage.version_id
    # One registration: the history has one change, and the tags name that transaction.
    assert [h.tx_id for h in registry.get_history(name, version)] == [record.registered_tx_id]
    assert tags[TAG_TX] == record.registered_tx_id


def test_versions_whose_webhooks_were_lost_are_anchored_by_the_reconciler(stack: Stack, model_uri: str) -> None:
    stack.bridge.down()
    versions = [register(stack, "lost", model_uri) for _ in range(2)]
    time.sleep(
        14
    )  # MLflow's retries (1 + 3, backoff 1-4 s plus up to 1 s jitter each) are over: the deliveries are gone
    stack.restart_bridge()
    for v in versions:
        wait_tags(stack, "lost", v)
    assert {stack.outbox().get("lost", v).origin for v in versions} == {"reconciler"}
    assert ledger_count(stack, "lost") == 2


def test_a_version_written_straight_into_mlflows_database_is_anchored_too(stack: Stack, model_uri: str) -> None:
    from mlflow import MlflowClient

    # A client on the SQLite file itself, not the server: MLflow fires no webhook for it.
    db = f"sqlite:///{stack.mlflow.settings.mlflow_dir / 'mlflow.db'}"
    direct = MlflowClient(tracking_uri=db, registry_uri=db)
    direct.create_registered_model("direct-sql")
    mv = direct.create_model_version("direct-sql", model_uri)
    wait_tags(stack, "direct-sql", str(mv.version))
    assert stack.outbox().get("direct-sql", str(mv.version)).origin == "reconciler"
    assert ledger_count(stack, "direct-sql") == 1


def test_while_org2s_peer_is_down_versions_stay_pending_with_a_reason(stack: Stack, model_uri: str) -> None:
    stack.network.supervisor.stop("peer0-Org2")
    try:
        version = register(stack, "peer-down", model_uri)
        deadline = time.monotonic() + 60
        tags: dict[str, str] = {}
        job = None
        # The worker tags the version before it records the retry in the outbox: wait for both.
        while time.monotonic() < deadline:
            tags = stack.client.get_model_version("peer-down", version).tags
            job = stack.outbox().get("peer-down", version)
            if tags.get(TAG_STATUS) == "pending" and tags.get(TAG_ERROR) and job is not None and job.reason:
                break
            time.sleep(0.25)
        assert tags.get(TAG_STATUS) == "pending" and tags.get(TAG_ERROR), tags
        assert job is not None and job.state in ("pending", "leased") and job.reason, job
        with pytest.raises(NotFound):
            stack.registry().get_model_version("peer-down", version)
    finally:
        stack.network.up()
    wait_tags(stack, "peer-down", version, timeout=150)
    assert ledger_count(stack, "peer-down") == 1


def _post(stack: Stack, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    s = stack.bridge.settings
    conn = http.client.HTTPConnection(s.host, s.port, timeout=10)
    conn.request("POST", "/webhooks/mlflow", body=body, headers=headers)
    resp = conn.getresponse()
    return resp.status, json.loads(resp.read() or b"{}")


def _delivery(secret: str, name: str, version: str, delivery_id: str, ts: int | None = None) -> tuple[bytes, dict]:
    body = json.dumps(
        {"entity": "model_version", "action": "created", "data": {"name": name, "version": version}}
    ).encode()
    stamp = str(int(time.time()) if ts is None else ts)
    return body, {
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": sign(secret, delivery_id, stamp, body),
        "Content-Type": "application/json",
    }


def test_bad_deliveries_and_mlflows_test_payload_change_nothing(stack: Stack, model_uri: str) -> None:
    secret = stack.bridge.settings.secret_file.read_text().strip()
    version = register(stack, "deliveries", model_uri)
    wait_tags(stack, "deliveries", version)
    before = [(j.key, j.state, j.attempts) for j in stack.outbox().jobs()]
    forged = _delivery("not-the-secret", "deliveries", version, "forged-1")
    assert _post(stack, *forged)[0] == 401
    stale = _delivery(secret, "deliveries", version, "stale-1", ts=int(time.time()) - 3600)
    assert _post(stack, *stale)[0] == 400
    body, headers = _delivery(secret, "deliveries", version, "replay-1")
    assert _post(stack, body, headers)[0] == 202  # a valid delivery for an anchored version: accepted, a no-op job
    assert _post(stack, body, headers) == (
        409,
        {"error": "duplicate delivery id (replay or retry of an accepted delivery)"},
    )
    big = body + b" " * (stack.bridge.settings.max_body + 1)
    assert _post(stack, big, _delivery(secret, "deliveries", version, "big-1")[1])[0] == 413
    junk = b"{not json"
    stamp = str(int(time.time()))
    signed_junk = {"X-MLflow-Delivery-Id": "junk-1", "X-MLflow-Timestamp": stamp}
    signed_junk["X-MLflow-Signature"] = sign(secret, "junk-1", stamp, junk)
    assert _post(stack, junk, signed_junk)[0] == 400
    # MLflow's own test endpoint sends a signed example payload for a version that does not exist.
    with acting_as(stack.mlflow.settings, MlflowUser.ADMIN):  # MLflow 3.17: webhooks are admin-only
        hook = next(w for w in stack.client.list_webhooks() if w.name == WEBHOOK_NAME)
        result = stack.client.test_webhook(hook.webhook_id)
    assert not result.success and result.response_status == 422
    after = [(j.key, j.state, j.attempts) for j in stack.outbox().jobs()]
    assert [a for a in after if a[0] != f"deliveries/{version}"] == [
        b for b in before if b[0] != f"deliveries/{version}"
    ]
    assert stack.outbox().get("example_model", "1") is None
    with pytest.raises(NotFound):
        stack.registry().get_model_version("example_model", "1")
    assert ledger_count(stack, "deliveries") == 1
    assert os.environ.get(BRIDGE_FAULT_ENV) is None


# A data scientist's script: stock MLflow, nothing from this project, run in its own process.
STOCK_CLIENT = """
import json, os, sys
sys.modules["modelledger"] = None  # as on a data scientist's machine: this project cannot be imported
import mlflow
from mlflow.store.artifact.artifact_repository_registry import _artifact_repository_registry as registry
# Nor can its artifact repository serve this client (MLflow registers entry points it can load only).
assert "modelledger-s3" not in registry._registry, sorted(registry._registry)
from mlflow.artifacts import download_artifacts

name, version, run_uri, out = sys.argv[1:5]
result = {
    "models": download_artifacts(f"models:/{name}/{version}", dst_path=os.path.join(out, "models")),
    "runs": download_artifacts(run_uri, dst_path=os.path.join(out, "runs")),
}
big = os.path.join(out, "big.bin")
with open(big, "wb") as f:
    f.write(os.urandom(3 * 1024 * 1024))
mlflow.set_experiment("stock-client")
with mlflow.start_run() as run:
    mlflow.log_artifact(big)
result["run_id"] = run.info.run_id
print(json.dumps(result))
"""


def stock_client_env(stack: Stack, home: Path, **settings: str) -> dict[str, str]:
    """Only what a data scientist sets: MLflow's standard tracking URI, username and password as the stack
    keeps them for its data scientist (and what is given); not this process's environment."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        **user_env(stack.mlflow.settings, MlflowUser.SCIENTIST),
        **settings,
    }


def test_a_stock_mlflow_client_downloads_and_uploads_through_the_tracking_server(stack: Stack, tmp_path: Path) -> None:
    import mlflow

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors:\n  python_function: {loader_module: plain}\n")
    (folder / "weights.bin").write_bytes(os.urandom(2 * 1024 * 1024))
    mlflow.set_experiment("stock-client-source")  # the data scientist's own (MLflow's default one is read-only)
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(folder), "model")
    run_uri = f"runs:/{run.info.run_id}/model"
    stack.client.create_registered_model("stock-client")
    mv = stack.client.create_model_version("stock-client", run_uri, run_id=run.info.run_id)
    tags = wait_tags(stack, "stock-client", mv.version)
    record = stack.registry().get_model_version("stock-client", mv.version)
    # What the server tells clients: no presigned S3 transfers (MLflow 3.17 decides from this alone).
    with urllib.request.urlopen(f"{stack.mlflow.settings.tracking_uri}/api/3.0/mlflow/server-info", timeout=10) as r:
        info = json.load(r)
    assert (info["multipart_downloads_enabled"], info["multipart_uploads_enabled"]) == (False, False)

    script, home, out = tmp_path / "client.py", tmp_path / "home", tmp_path / "out"
    script.write_text(STOCK_CLIENT)
    home.mkdir()
    # The 3 MiB upload is above the lowered multipart threshold (the default is 500 MiB).
    env = stock_client_env(stack, home, MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE=str(1024 * 1024))
    argv = [sys.executable, str(script), "stock-client", mv.version, run_uri, str(out)]
    # Generous: it takes seconds; a client that cannot reach its presigned URLs retries for minutes.
    proc = subprocess.run(argv, env=env, cwd=home, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    # MLflow's client writes a `registered_model_meta` file (name and version) into a models:/ download.
    (Path(result["models"]) / "registered_model_meta").unlink()
    for uri in ("models", "runs"):  # the bytes the client got are the ones the ledger vouches for
        got = digest_folder(Path(result[uri]))
        assert [(f.path, f.size, f.sha256) for f in got.files] == [
            (f.path, f.size, f.sha256) for f in record.manifest.files
        ], uri
        assert (got.model_digest, got.manifest_digest) == (record.model_digest, record.manifest_digest), uri
    assert tags[TAG_DIGEST] == record.model_digest
    back = mlflow.artifacts.download_artifacts(f"runs:/{result['run_id']}/big.bin", dst_path=str(tmp_path / "back"))
    assert Path(back).read_bytes() == (out / "big.bin").read_bytes()


def _rest(
    stack: Stack, method: str, path: str, body: dict | None = None, user: MlflowUser | None = None
) -> tuple[int, str]:
    """One raw request to the tracking server, anonymous or as one of the stack's MLflow users: (status, body)."""
    headers = {"Content-Type": "application/json"}
    if user is not None:
        headers["Authorization"] = read_user(stack.mlflow.settings, user).header()
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{stack.mlflow.settings.tracking_uri}{path}", data, headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def test_mlflow_refuses_anonymous_clients_and_serves_the_stacks_data_scientist(stack: Stack, tmp_path: Path) -> None:
    search = "/api/2.0/mlflow/experiments/search?max_results=1"
    assert _rest(stack, "GET", search)[0] == 401
    assert _rest(stack, "GET", search, user=MlflowUser.SCIENTIST)[0] == 200
    # A stock client with the tracking URI alone is refused; with the stack's data scientist it works.
    script = "import mlflow; print(len(mlflow.search_experiments()))"
    home = tmp_path / "home"
    home.mkdir()
    anonymous = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "MLFLOW_TRACKING_URI": stack.mlflow.settings.tracking_uri,
    }
    proc = subprocess.run([sys.executable, "-c", script], env=anonymous, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "401" in proc.stderr, proc.stderr[-2000:]
    proc = subprocess.run(
        [sys.executable, "-c", script], env=stock_client_env(stack, home), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and int(proc.stdout.strip()) >= 1, proc.stderr[-2000:]


def test_only_the_bridges_url_can_be_a_webhook_target(stack: Stack) -> None:
    bridge_url = stack.bridge.settings.webhook_url
    with acting_as(stack.mlflow.settings, MlflowUser.ADMIN):
        hook = next(w for w in stack.client.list_webhooks() if w.name == WEBHOOK_NAME)
    hooks, one = "/api/2.0/mlflow/webhooks", f"/api/2.0/mlflow/webhooks/{hook.webhook_id}"
    elsewhere = "http://127.0.0.1:9/collect"
    create = {"name": "elsewhere", "url": elsewhere, "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}]}
    # Anonymous clients can neither create, repoint, disable nor delete a webhook.
    for method, path, body in (
        ("POST", hooks, create),
        ("PATCH", one, {"url": elsewhere}),
        ("PATCH", one, {"status": "DISABLED"}),
        ("DELETE", one, None),
    ):
        assert _rest(stack, method, path, body)[0] == 401, (method, path, body)
    # A data scientist is no MLflow admin: MLflow 3.17 lets only admins manage webhooks.
    assert _rest(stack, "POST", hooks, create, MlflowUser.SCIENTIST)[0] == 403
    assert _rest(stack, "PATCH", one, {"url": elsewhere}, MlflowUser.SCIENTIST)[0] == 403
    # MLflow's admin may not name another URL either: this stack's rule.
    for method, path, body in (("POST", hooks, create), ("PATCH", one, {"url": elsewhere, "secret": "s" * 32})):
        status, text = _rest(stack, method, path, body, MlflowUser.ADMIN)
        assert status == 403 and "webhooks may only point at the ModelLedger bridge" in text, (method, text)
    # The bridge's URL itself is accepted.
    with acting_as(stack.mlflow.settings, MlflowUser.ADMIN):
        second = stack.client.create_webhook(name="second", url=bridge_url, events=["model_version.created"])
        stack.client.delete_webhook(second.webhook_id)
        after = [(w.name, w.url, w.status.is_active()) for w in stack.client.list_webhooks()]
    assert after == [(WEBHOOK_NAME, bridge_url, True)]


def test_mlflow_lets_a_data_scientist_rewrite_ledger_tags_on_their_own_versions(stack: Stack, model_uri: str) -> None:
    """Measured limit of MLflow 3.17 (docs/guarantees.md): tags are a mirror; the ledger is what counts."""
    version = register(stack, "own-tags", model_uri)
    wait_tags(stack, "own-tags", version)
    record = stack.registry().get_model_version("own-tags", version)
    # The creator of a registered model holds MANAGE on it, and MLflow cannot reserve tag keys.
    stack.client.set_model_version_tag("own-tags", version, TAG_DIGEST, "0" * 64)
    assert stack.client.get_model_version("own-tags", version).tags[TAG_DIGEST] == "0" * 64
    assert stack.registry().get_model_version("own-tags", version).model_digest == record.model_digest
    # Another user's version is read-only to them (default permission READ).
    with acting_as(stack.mlflow.settings, MlflowUser.ADMIN):
        stack.client.create_registered_model("admins-model")
    status, _ = _rest(
        stack,
        "POST",
        "/api/2.0/mlflow/registered-models/set-tag",
        {"name": "admins-model", "key": TAG_STATUS, "value": "anchored"},
        MlflowUser.SCIENTIST,
    )
    assert status == 403


def test_the_bridges_mlflow_user_is_no_admin_yet_tags_every_users_versions(stack: Stack, model_uri: str) -> None:
    """MLflow 3.17's roles: MANAGE on every registered model for aliases and tags, nothing an admin could do."""
    version = register(stack, "bridge-rights", model_uri)  # the data scientist's model and version
    wait_tags(stack, "bridge-rights", version)  # tagged by the bridge, which runs as its own user
    bridge = MlflowUser.BRIDGE
    creds = read_user(stack.mlflow.settings, bridge)
    assert _rest(stack, "GET", "/api/2.0/mlflow/users/current", user=bridge)[0] == 200
    new_user = {"username": "made-by-the-bridge", "password": "p" * 24}
    assert _rest(stack, "POST", "/api/2.0/mlflow/users/create", new_user, bridge)[0] == 403
    admin_flag = {"username": creds.username, "is_admin": True}
    assert _rest(stack, "PATCH", "/api/2.0/mlflow/users/update-admin", admin_flag, bridge)[0] == 403
    with acting_as(stack.mlflow.settings, MlflowUser.ADMIN):
        hook = next(w for w in stack.client.list_webhooks() if w.name == WEBHOOK_NAME)
    hooks, one = "/api/2.0/mlflow/webhooks", f"/api/2.0/mlflow/webhooks/{hook.webhook_id}"
    assert _rest(stack, "GET", hooks, user=bridge)[0] == 403
    assert _rest(stack, "PATCH", one, {"status": "DISABLED"}, bridge)[0] == 403
    assert _rest(stack, "DELETE", one, user=bridge)[0] == 403
    # It tags (and untags) another user's version, but cannot delete it or its model.
    tag = {"name": "bridge-rights", "version": version, "key": "probe", "value": "1"}
    assert _rest(stack, "POST", "/api/2.0/mlflow/model-versions/set-tag", tag, bridge)[0] == 200
    untag = {"name": "bridge-rights", "version": version, "key": "probe"}
    assert _rest(stack, "DELETE", "/api/2.0/mlflow/model-versions/delete-tag", untag, bridge)[0] == 200
    gone = {"name": "bridge-rights", "version": version}
    assert _rest(stack, "DELETE", "/api/2.0/mlflow/registered-models/delete", {"name": "bridge-rights"}, bridge)[0] == 403
    renamed = {"name": "bridge-rights", "new_name": "bridge-renamed"}
    assert _rest(stack, "POST", "/api/2.0/mlflow/registered-models/rename", renamed, bridge)[0] == 403
    status, text = _rest(stack, "DELETE", "/api/2.0/mlflow/model-versions/delete", gone, bridge)
    assert status == 403 and "deletes no model version" in text, text
    assert stack.client.get_model_version("bridge-rights", version).tags[TAG_STATUS] == "anchored"
    status, text = _rest(stack, "GET", "/api/2.0/mlflow/users/get?username=made-by-the-bridge", user=MlflowUser.ADMIN)
    assert status == 404, text


def test_no_client_gets_a_presigned_url_nor_names_an_artifact_location(stack: Stack) -> None:
    """MLflow 3.17 signs presigned URLs for any s3:// location an experiment names, with the server's S3 key."""
    scientist = MlflowUser.SCIENTIST
    for location in ("s3://modelledger-mlflow/artifacts/1", "modelledger-s3://modelledger-mlflow/artifacts/1"):
        for api in ("/api/2.0", "/ajax-api/2.0"):
            body = {"name": f"elsewhere {api} {location}", "artifact_location": location}
            status, text = _rest(stack, "POST", f"{api}/mlflow/experiments/create", body, scientist)
            assert status == 403 and "artifact_location may only be" in text, (api, location, text)
    assert _rest(stack, "GET", "/api/2.0/mlflow/experiments/get-by-name?experiment_name=elsewhere", user=scientist)[
        0
    ] in (403, 404)
    status, text = _rest(stack, "POST", "/api/2.0/mlflow/experiments/create", {"name": "proxied"}, scientist)
    assert status == 200, text
    experiment_id = json.loads(text)["experiment_id"]
    status, text = _rest(stack, "POST", "/api/2.0/mlflow/runs/create", {"experiment_id": experiment_id}, scientist)
    run_id = json.loads(text)["run"]["info"]["run_id"]
    for api in ("/api/2.0", "/ajax-api/2.0"):
        for path, body in (
            ("/mlflow/artifacts/presigned-upload-url", {"run_id": run_id, "path": "x.bin"}),
            ("/mlflow/artifacts/presigned-download-url", {"run_id": run_id, "path": "x.bin"}),
            (f"/mlflow-artifacts/mpu/create/{experiment_id}/{run_id}/artifacts/x.bin", {"path": "x.bin", "num_parts": 1}),
            (f"/mlflow-artifacts/mpu/complete/{experiment_id}/{run_id}/artifacts/x.bin", {"path": "x.bin"}),
            (f"/mlflow-artifacts/mpu/abort/{experiment_id}/{run_id}/artifacts/x.bin", {"path": "x.bin"}),
        ):
            for user in (scientist, MlflowUser.ADMIN):
                status, text = _rest(stack, "POST", api + path, body, user)
                assert status == 403 and "no presigned or multipart" in text, (api, path, user, text)
        got = f"{api}/mlflow-artifacts/presigned/{experiment_id}/{run_id}/artifacts/x.bin"
        status, text = _rest(stack, "GET", got, user=MlflowUser.ADMIN)
        assert status == 403 and "no presigned or multipart" in text, (got, text)


# ---------------------------------------------------------------------- issue 15: MLflow mirrors the ledger
# Approve / reject / revoke / deploy need only chaincode 1.3.0; the evaluation test needs 1.4.0.


def governance(stack: Stack, org: str, role: str) -> RegistryClient:
    gw = stack.profile.gateway(org, role)
    return RegistryClient(gw.network(stack.profile.channel), stack.profile.chaincode)


def wait_tag(stack: Stack, name: str, version: str, key: str, done: Any, timeout: float = 30) -> dict[str, str]:
    """Waits until ``done(tags.get(key))`` (the follower mirrors within seconds); the tags then."""
    deadline = time.monotonic() + timeout
    tags: dict[str, str] = {}
    while time.monotonic() < deadline:
        tags = stack.client.get_model_version(name, version).tags
        if done(tags.get(key)):
            return tags
        time.sleep(0.25)
    pytest.fail(f"{name}/{version}: {key} not as expected after {timeout}s: tags {tags}; log {stack.bridge.log_path}")


def follower_checkpoint(stack: Stack) -> tuple[int, str] | None:
    path = stack.bridge.settings.follower_checkpoint_file
    if not path.exists():
        return None
    doc = json.loads(path.read_text())
    return int(doc["blockNumber"]), str(doc.get("transactionId", ""))


def wait_checkpoint_past(stack: Stack, block: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cp = follower_checkpoint(stack)
        if cp is not None and cp[0] >= block:
            return
        time.sleep(0.2)
    pytest.fail(f"the follower's checkpoint {follower_checkpoint(stack)} did not reach block {block}")


def mirrored(stack: Stack) -> list[dict[str, Any]]:
    """The follower's "ledger event mirrored" log lines (both runs of a restarted bridge: one log file)."""
    out = []
    for line in stack.bridge.log_path.read_text(errors="replace").splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if doc.get("msg") == "ledger event mirrored":
            out.append(doc)
    return out


def mirrored_tx(stack: Stack, tx_id: str, timeout: float = 15) -> list[dict[str, Any]]:
    """The follower's log lines of one transaction, once there is one (logged just after its checkpoint)."""
    deadline = time.monotonic() + timeout
    lines = [d for d in mirrored(stack) if d.get("tx_id") == tx_id]
    while not lines and time.monotonic() < deadline:
        time.sleep(0.2)
        lines = [d for d in mirrored(stack) if d.get("tx_id") == tx_id]
    return lines


def test_tags_mirror_approvals_approval_and_deployment(stack: Stack, model_uri: str) -> None:
    from modelledger.mlops.bridge.tags import TAG_APPROVALS, TAG_DEPLOYMENTS

    name = "mirror-approve"
    version = register(stack, name, model_uri)
    wait_tags(stack, name, version)
    governance(stack, "Org1MSP", "approver").approve(name, version, "ok")
    tags = wait_tag(stack, name, version, TAG_APPROVALS, lambda v: v and len(json.loads(v)) == 1)
    assert tags[TAG_STATUS] == "anchored"  # one of two organisations: still registered on the ledger
    assert json.loads(tags[TAG_APPROVALS])[0] | {"time": "", "tx": ""} == {
        "org": "Org1MSP", "decision": "approved", "time": "", "tx": ""
    }
    governance(stack, "Org2MSP", "approver").approve(name, version, "agreed")
    tags = wait_tag(stack, name, version, TAG_STATUS, lambda v: v == "approved")
    assert [a["org"] for a in json.loads(tags[TAG_APPROVALS])] == ["Org1MSP", "Org2MSP"]
    record = governance(stack, "Org1MSP", "operator").record_deployment(name, version, "prod", "https://models/p")
    tags = wait_tag(stack, name, version, TAG_STATUS, lambda v: v == "deployed")
    assert json.loads(tags[TAG_DEPLOYMENTS]) == [
        {"environment": "prod", "endpoint": "https://models/p", "time": record.deployments[0].time,
         "tx": record.deployments[0].tx_id}
    ]
    assert tags[TAG_TX] == record.registered_tx_id  # anchoring's tags stay


def test_tags_mirror_a_rejection(stack: Stack, model_uri: str) -> None:
    from modelledger.mlops.bridge.tags import TAG_APPROVALS

    name = "mirror-reject"
    version = register(stack, name, model_uri)
    wait_tags(stack, name, version)
    governance(stack, "Org2MSP", "approver").reject(name, version, "fails the fairness review")
    tags = wait_tag(stack, name, version, TAG_STATUS, lambda v: v == "rejected")
    assert [(a["org"], a["decision"]) for a in json.loads(tags[TAG_APPROVALS])] == [("Org2MSP", "rejected")]


def test_a_revoked_version_is_tagged_revoked_and_keeps_no_alias(stack: Stack, model_uri: str) -> None:
    from modelledger.mlops.bridge.tags import TAG_ALIASES_REMOVED

    name = "mirror-revoke"
    v1, v2 = register(stack, name, model_uri), register(stack, name, model_uri)
    wait_tags(stack, name, v1)
    wait_tags(stack, name, v2)
    for alias, version in (("champion", v1), ("shadow", v1), ("challenger", v2)):
        stack.client.set_registered_model_alias(name, alias, version)
    governance(stack, "Org1MSP", "approver").revoke(name, v1, "training data leak")
    tags = wait_tag(stack, name, v1, TAG_STATUS, lambda v: v == "revoked")
    # The status is written last: the aliases are gone when it says revoked.
    assert stack.client.get_registered_model(name).aliases == {"challenger": v2}
    assert sorted(r["alias"] for r in json.loads(tags[TAG_ALIASES_REMOVED])) == ["champion", "shadow"]
    assert stack.client.get_model_version(name, v2).tags[TAG_STATUS] == "anchored"  # the other version untouched


SET_ALIAS = """
import sys
from mlflow import MlflowClient

name, alias, version = sys.argv[1:4]
MlflowClient().set_registered_model_alias(name, alias, version)
"""


def test_an_alias_set_on_a_revoked_version_afterwards_is_removed_and_named(
    stack: Stack, model_uri: str, tmp_path: Path
) -> None:
    from modelledger.mlops.bridge.tags import TAG_ALIASES_REMOVED

    name = "mirror-revoke-later"
    v1, v2 = register(stack, name, model_uri), register(stack, name, model_uri)
    wait_tags(stack, name, v1)
    wait_tags(stack, name, v2)
    governance(stack, "Org1MSP", "approver").revoke(name, v1, "training data leak")
    tags = wait_tag(stack, name, v1, TAG_STATUS, lambda v: v == "revoked")
    assert TAG_ALIASES_REMOVED not in tags  # no alias pointed at it then
    # The data scientist, with a stock MLflow client in a process of their own, sets aliases afterwards.
    script, home = tmp_path / "set_alias.py", tmp_path / "home"
    script.write_text(SET_ALIAS)
    home.mkdir()
    env = stock_client_env(stack, home)  # MLflow's own variables only: URI, username, password
    for alias, version in (("champion", v1), ("challenger", v2)):
        proc = subprocess.run(
            [sys.executable, str(script), name, alias, version], env=env, cwd=home, capture_output=True, text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr[-4000:]
    # Removed within seconds (the webhook; the reconciler's scan, every 3 s here, would do it otherwise).
    tags = wait_tag(
        stack, name, v1, TAG_ALIASES_REMOVED, lambda v: bool(v) and "champion" in [r["alias"] for r in json.loads(v)]
    )
    deadline = time.monotonic() + 30
    while "champion" in stack.client.get_registered_model(name).aliases and time.monotonic() < deadline:
        time.sleep(0.25)
    assert stack.client.get_registered_model(name).aliases == {"challenger": v2}  # the other version keeps its alias
    assert [r["alias"] for r in json.loads(tags[TAG_ALIASES_REMOVED])] == ["champion"]
    assert tags[TAG_STATUS] == "revoked"
    assert TAG_ALIASES_REMOVED not in stack.client.get_model_version(name, v2).tags


def test_tags_mirror_an_evaluation_without_and_then_under_a_policy(stack: Stack, model_uri: str) -> None:
    import hashlib

    from modelledger.mlops.bridge.tags import TAG_EVALUATION
    from modelledger.sdk.registry.records import EvaluationInput, Metric, MetricThreshold, ModelPolicyInput

    name = "mirror-evaluate"
    version = register(stack, name, model_uri)
    wait_tags(stack, name, version)
    holdout = hashlib.sha256(b"mirror-evaluate hold-out").hexdigest()
    governance(stack, "Org2MSP", "registrar").register_dataset("mirror-holdout", holdout, "tests:holdout")
    evaluator = governance(stack, "Org2MSP", "evaluator")

    def evaluate(run_id: str, accuracy: float) -> dict[str, Any]:
        evaluator.record_evaluation(
            name, version, EvaluationInput(holdout, run_id, "a" * 64, [Metric("accuracy", accuracy)])
        )
        tags = wait_tag(stack, name, version, TAG_EVALUATION, lambda v: bool(v) and json.loads(v)["run_id"] == run_id)
        assert tags[TAG_STATUS] == "anchored"  # evaluated, not approved
        return dict(json.loads(tags[TAG_EVALUATION]))

    doc = evaluate("mirror-eval-1", 0.97)
    assert doc["result"] == "no policy" and doc["policy_version"] is None  # the model has no policy yet
    assert doc["metrics"] == {"accuracy": 0.97} and doc["evaluator"] == "Org2MSP"
    assert doc["dataset_sha256"] == holdout and doc["failures"] == [] and doc["tx"]
    policy = ModelPolicyInput([MetricThreshold("accuracy", min=0.9)], required_passes=1, independent_evaluator=True)
    governance(stack, "Org1MSP", "admin").set_model_policy(name, policy)
    doc = evaluate("mirror-eval-2", 0.5)
    assert doc["result"] == "failed" and doc["policy_version"] == 1
    assert doc["failures"] == ["metric accuracy = 0.5 is below the minimum 0.9"]
    assert evaluate("mirror-eval-3", 0.95)["result"] == "passed"


def test_the_follower_resumes_from_its_checkpoint_after_a_kill_nothing_missed_nothing_applied_twice(
    stack: Stack, model_uri: str
) -> None:
    import signal

    from modelledger.mlops.bridge.tags import TAG_APPROVALS, TAG_DEPLOYMENTS

    name = "mirror-crash"
    version = register(stack, name, model_uri)
    tags = wait_tags(stack, name, version)
    wait_checkpoint_past(stack, int(tags[TAG_BLOCK]))  # the follower has read past the registration
    # 1. Killed between applying an event and checkpointing it (the fault point exits as kill -9 does).
    stack.restart_bridge("follower-after-apply")
    org1 = governance(stack, "Org1MSP", "approver")
    first = org1.approve(name, version, "ok")
    first_block = org1.last_status.block_number  # type: ignore[union-attr]
    first_tx = first.approvals[0].tx_id
    deadline = time.monotonic() + 60
    while stack.bridge.supervisor.running("bridge") is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stack.bridge.supervisor.running("bridge") is None, "the bridge did not stop after applying the event"
    assert len(json.loads(stack.client.get_model_version(name, version).tags[TAG_APPROVALS])) == 1  # applied
    cp = follower_checkpoint(stack)  # not checkpointed: still before the approval's transaction
    assert cp is not None and cp[0] <= first_block and cp != (first_block, first_tx)
    # 2. While the bridge is down, the ledger moves on: its events must not be missed.
    second = governance(stack, "Org2MSP", "approver").approve(name, version, "agreed")
    operator = governance(stack, "Org1MSP", "operator")
    deployed = operator.record_deployment(name, version, "prod", "https://models/p")
    deployed_block = operator.last_status.block_number  # type: ignore[union-attr]
    stack.restart_bridge()
    tags = wait_tag(stack, name, version, TAG_STATUS, lambda v: v == "deployed", timeout=60)
    assert len(json.loads(tags[TAG_APPROVALS])) == 2 and len(json.loads(tags[TAG_DEPLOYMENTS])) == 1
    wait_checkpoint_past(stack, deployed_block)
    # Nothing missed, nothing applied twice. The tags are written from the ledger's current record, not from the
    # event: the event the crashed run had applied comes again and brings the tags to the record as it is now
    # (both approvals and the deployment: one write), and the two later events then find nothing to change.
    lines = mirrored_tx(stack, first_tx)
    assert [d["outcome"] for d in lines] == ["applied"], lines  # the crashed run died before its log line
    org2_tx = next(a.tx_id for a in second.approvals if a.msp_id == "Org2MSP")
    for later in (org2_tx, deployed.deployments[0].tx_id):
        assert [d["outcome"] for d in mirrored_tx(stack, later)] == ["unchanged"], later
    # 3. A real kill -9 of an idle bridge, then another change: applied once after the restart.
    running = stack.bridge.supervisor.running("bridge")
    assert running is not None
    os.kill(running.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while stack.bridge.supervisor.running("bridge") is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    before = follower_checkpoint(stack)
    revoker = governance(stack, "Org1MSP", "approver")
    revoked = revoker.revoke(name, version, "withdrawn")
    revoked_block = revoker.last_status.block_number  # type: ignore[union-attr]
    stack.restart_bridge()
    wait_tag(stack, name, version, TAG_STATUS, lambda v: v == "revoked", timeout=60)
    # The tag may come first from the reconciler's scan of revoked versions (their aliases) at the bridge's start;
    # the follower still handles the event, once.
    wait_checkpoint_past(stack, revoked_block)
    after = follower_checkpoint(stack)
    assert before is not None and after is not None and after[0] > before[0]
    deadline = time.monotonic() + 10
    revocations = mirrored_tx(stack, revoked.revocation.tx_id)  # type: ignore[union-attr]
    while not revocations and time.monotonic() < deadline:  # its log line follows the checkpoint
        time.sleep(0.2)
        revocations = mirrored_tx(stack, revoked.revocation.tx_id)  # type: ignore[union-attr]
    assert len(revocations) == 1 and revocations[0]["outcome"] in ("applied", "unchanged"), revocations

"""``modelledger.mlflow.evaluate``: nothing runs before the model verifies, the hold-out data is registered by its
full SHA-256, the artefacts bundle is deterministic and stored write-once, the ledger's verdict is returned, and a
rerun never counts twice.

The ledger (registry client and record reads), the anchored copy's verification and S3 are fakes; MLflow is real,
with a SQLite tracking store in a temporary folder, and evaluates a small scikit-learn model.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

from modelledger.mlflow import TAG_DATASET_SHA256, hold_out
from modelledger.mlflow import evaluator as ev
from modelledger.mlflow.hold_out import (
    FRESH,
    RECORDED_BEFORE,
    RERUN_POLICY_CHANGED,
    RESUMED,
    EvaluationInputError,
    EvaluatorNotIndependent,
    HoldOutIsTrainingData,
    ModelNotVerified,
)
from modelledger.mlops.store import fetch as fetch_module
from modelledger.mlops.store.digest import dataframe_digest, dataset_digest
from modelledger.mlops.store.evaluation_artifacts import (
    EvaluationStoreError,
    bundle_digest,
    bundle_folder,
    bundle_key,
    store_bundle,
)
from modelledger.mlops.store.verification import LedgerEvidence, Verification
from modelledger.runtime.settings import S3Settings
from modelledger.sdk.ledger.checks import Check
from modelledger.sdk.registry.client import Conflict, NotFound
from modelledger.sdk.registry.records import (
    Actor,
    Dataset,
    DatasetRef,
    Evaluation,
    EvaluationInput,
    Model,
    ModelPolicy,
    ModelVersion,
)

TRAIN_SHA = hashlib.sha256(b"training data").hexdigest()
MODEL_DIGEST = hashlib.sha256(b"model").hexdigest()


# --------------------------------------------------------------------------- fakes
@dataclasses.dataclass
class FakeRegistry:
    """The registry as the evaluator of ``msp``: judges ``accuracy_score >= minimum`` as the chaincode would."""

    msp: str = "Org2MSP"
    minimum: float | None = 0.9
    calls: list[tuple[str, tuple[Any, ...]]] = dataclasses.field(default_factory=list)
    evaluations: list[Evaluation] = dataclasses.field(default_factory=list)
    claims: list[Dataset] = dataclasses.field(default_factory=list)
    lose_answer: bool = False  # the transaction commits, but the answer never arrives (the process "dies")
    policy_version: int = 2  # the version of the model's policy in force (when ``minimum`` is set)

    independent: bool = False  # the policy asks for an evaluator of another organisation than the registrant's

    def get_model(self, name: str) -> Model:
        self.calls.append(("get_model", (name,)))
        policy = ModelPolicy(version=self.policy_version, independent_evaluator=self.independent)
        return Model(name=name, owner="Org1MSP", policy=policy if self.minimum else None)

    def list_evaluations(self, name: str, version: str) -> list[Evaluation]:
        self.calls.append(("list_evaluations", (name, version)))
        return list(self.evaluations)

    def get_dataset_claims(self, sha256: str) -> list[Dataset]:
        self.calls.append(("get_dataset_claims", (sha256,)))
        found = [c for c in self.claims if c.sha256 == sha256]
        if not found:
            raise NotFound(f'NOT_FOUND: dataset "{sha256}"')
        return found

    def register_dataset(self, name: str, sha256: str, source: str) -> Dataset:
        self.calls.append(("register_dataset", (name, sha256, source)))
        claim = Dataset(name=name, sha256=sha256, source=source, owner=self.msp)
        self.claims.append(claim)
        return claim

    def record_evaluation(self, name: str, version: str, evaluation: EvaluationInput) -> ModelVersion:
        self.calls.append(("record_evaluation", (name, version, evaluation)))
        if any(e.run_id == evaluation.run_id and e.evaluator.msp_id == self.msp for e in self.evaluations):
            raise Conflict(f"CONFLICT: run {evaluation.run_id} is already recorded by {self.msp}")
        if not any(c.sha256 == evaluation.dataset_sha256 for c in self.claims):
            raise NotFound(f"NOT_FOUND: dataset {evaluation.dataset_sha256} is not registered")
        metrics = {m.key: m.value for m in evaluation.metrics}
        policy, failures, result = None, [], "NO_POLICY"
        if self.minimum is not None:
            policy = ModelPolicy(version=self.policy_version)
            value = metrics.get("accuracy_score")
            if value is None:
                failures = ["metric accuracy_score is missing"]
            elif value < self.minimum:
                failures = [f"metric accuracy_score = {value} is below the minimum {self.minimum}"]
            result = "FAILED" if failures else "PASSED"
        n = len(self.evaluations) + 1
        self.evaluations.append(
            Evaluation(
                result=result,
                metrics=sorted(evaluation.metrics, key=lambda m: m.key),
                failures=failures,
                policy=policy,
                dataset_sha256=evaluation.dataset_sha256,
                run_id=evaluation.run_id,
                artifacts_digest=evaluation.artifacts_digest,
                artifacts_location=evaluation.artifacts_location,
                evaluator=Actor(msp_id=self.msp, role="evaluator"),
                time="2026-12-08T01:00:00Z",
                tx_id=f"{n:064x}",
            )
        )
        if self.lose_answer:
            self.lose_answer = False
            raise KeyboardInterrupt  # the process is killed while waiting for the commit
        return ModelVersion(name=name, version=version, evaluations=list(self.evaluations))


@dataclasses.dataclass
class FakeLedger:
    registry: FakeRegistry
    status: str = "REGISTERED"
    msp_id: str = "Org2MSP"
    datasets: list[DatasetRef] = dataclasses.field(
        default_factory=lambda: [DatasetRef("train.csv", TRAIN_SHA, "/data/train.csv", True)]
    )

    def evidence(self, name: str, version: str) -> LedgerEvidence:
        record = ModelVersion(
            name=name,
            version=version,
            status=self.status,
            model_digest=MODEL_DIGEST,
            datasets=self.datasets,
            registrant=Actor(msp_id="Org1MSP", role="registrar"),
        )
        return LedgerEvidence(record, None)


class FakeS3:
    """The anchored bucket: conditional puts, versions, and its default COMPLIANCE retention on every new version.

    ``objects`` holds each key's current version, ``older`` the versions it replaced (newest first).
    """

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str, dict[str, Any]]] = {}
        self.older: dict[str, list[tuple[bytes, str, dict[str, Any]]]] = {}
        self.puts: list[dict[str, Any]] = []
        self.retention = "COMPLIANCE"  # the bucket's default retention mode ("": none)

    def put_object(self, **kw: Any) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        self.puts.append(kw)
        if kw.get("IfNoneMatch") == "*" and kw["Key"] in self.objects:
            raise ClientError({"Error": {"Code": "PreconditionFailed"}}, "PutObject")
        version = f"v{len(self.puts)}"
        if kw["Key"] in self.objects:
            self.older.setdefault(kw["Key"], []).insert(0, self.objects[kw["Key"]])
        self.objects[kw["Key"]] = (bytes(kw["Body"]), version, {"ObjectLockMode": self.retention, **kw})
        return {"VersionId": version}

    def _versions(self, key: str) -> list[tuple[bytes, str, dict[str, Any]]]:
        return [self.objects[key], *self.older.get(key, [])] if key in self.objects else []

    def _version(self, key: str, version_id: str) -> tuple[bytes, str, dict[str, Any]]:
        if not version_id:
            return self.objects[key]
        (found,) = [v for v in self._versions(key) if v[1] == version_id]
        return found

    def get_object(self, Bucket: str, Key: str, VersionId: str) -> dict[str, Any]:
        return {"Body": io.BytesIO(self._version(Key, VersionId)[0])}

    def head_object(self, Bucket: str, Key: str, VersionId: str = "", **_: Any) -> dict[str, Any]:
        body, version, kw = self._version(Key, VersionId)
        head = {
            "VersionId": version,
            "ContentLength": len(body),
            "ObjectLockMode": kw.get("ObjectLockMode", "COMPLIANCE"),
            "ObjectLockRetainUntilDate": kw.get("ObjectLockRetainUntilDate", dt.datetime(2036, 12, 8, tzinfo=dt.UTC)),
        }
        if "ChecksumSHA256" in kw:  # S3 keeps (and checks) a checksum only when the PUT sent one
            head["ChecksumSHA256"] = kw["ChecksumSHA256"]
        return head

    def list_object_versions(self, Bucket: str, Prefix: str, **_: Any) -> dict[str, Any]:
        versions = [
            {"Key": key, "VersionId": version, "Size": len(body), "IsLatest": i == 0}
            for key in sorted(k for k in self.objects if k.startswith(Prefix))
            for i, (body, version, _) in enumerate(self._versions(key))
        ]
        return {"Versions": versions, "IsTruncated": False}


def verification(ok: bool) -> Verification:
    checks = [Check("ledger-status", True, "registered"), Check("bytes", ok, "" if ok else "changed: model.pkl")]
    return Verification("s3://anchored/models/x/index.json", "m", "1", checks, ledger_status="REGISTERED")


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """An MLflow model folder of a scikit-learn classifier, and a hold-out DataFrame with its target column."""
    import mlflow.sklearn
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x[:400], y[:400])
    folder = tmp_path_factory.mktemp("anchored") / "model"
    mlflow.sklearn.save_model(model, str(folder))
    frame = x[400:].copy()
    frame["target"] = y[400:]
    return folder, frame.reset_index(drop=True)


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite tracking store, made once (migrating takes seconds): each test gets a copy."""
    import mlflow

    db = tmp_path_factory.mktemp("mlflow") / "empty.db"
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_store: Path) -> str:
    import mlflow

    shutil.copyfile(empty_store, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    # The Default experiment keeps its artefacts under ./mlruns: the runs go to one whose artefacts stay in tmp_path.
    where = (tmp_path / "artifacts").as_uri()
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("evaluations", artifact_location=where))
    yield uri
    mlflow.set_tracking_uri(None)


@dataclasses.dataclass
class World:
    ledger: FakeLedger
    s3: FakeS3
    settings: S3Settings
    fetched: list[Path]
    evaluated: list[str]
    verified: bool = True


@pytest.fixture
def world(trained: tuple[Path, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tracking: str) -> World:
    import mlflow.models

    folder, _ = trained
    w = World(FakeLedger(FakeRegistry()), FakeS3(), S3Settings(state_dir=tmp_path / "state"), [], [])

    def fake_fetch(client: Any, evidence: LedgerEvidence, dest: Path) -> Verification:
        w.fetched.append(Path(dest))
        if w.verified:
            shutil.copytree(folder, dest)
        return verification(w.verified)

    real = mlflow.models.evaluate

    def counted(*args: Any, **kw: Any) -> Any:
        w.evaluated.append(str(kw.get("model")))
        return real(*args, **kw)

    monkeypatch.setattr(fetch_module, "fetch_verified", fake_fetch)
    monkeypatch.setattr(mlflow.models, "evaluate", counted)
    return w


def run(w: World, data: Any, **kw: Any) -> Any:
    return ev.evaluate(
        "models:/m/1",
        data,
        targets="target",
        model_type="classifier",
        ledger=w.ledger,
        s3=w.s3,
        s3_settings=w.settings,
        **kw,
    )


RECORD = ev._record


def names(w: World) -> list[str]:
    return [c[0] for c in w.ledger.registry.calls]


# --------------------------------------------------------------------------- tests
def test_a_passing_evaluation_registers_the_data_stores_the_artefacts_and_returns_the_ledgers_verdict(
    world: World, trained: tuple[Path, Any], tmp_path: Path
) -> None:
    import mlflow

    _, frame = trained
    csv = tmp_path / "holdout.csv"
    frame.to_csv(csv, index=False)
    verdict = run(world, csv)
    sha = dataset_digest([csv])  # the file's bytes, as log_dataset digests a file
    assert verdict.result == "PASSED" and verdict.passed and verdict.failures == ()
    assert verdict.policy_version == 2 and verdict.how == FRESH
    assert verdict.dataset_sha256 == sha and verdict.tx_id == f"{1:064x}"
    assert verdict.metrics["accuracy_score"] > 0.9 and verdict.evaluator == "evaluator@Org2MSP"
    # The data was registered on the ledger before the evaluation was recorded.
    assert names(world).index("register_dataset") < names(world).index("record_evaluation")
    assert ("register_dataset", ("holdout.csv", sha, str(csv.resolve()))) in world.ledger.registry.calls
    # MLflow evaluated the verified copy, in a run that holds the metrics and the plots.
    assert world.evaluated == [str(world.fetched[0])]
    run_ = mlflow.get_run(verdict.run_id)
    logged = [i for i in run_.inputs.dataset_inputs if any(t.value == "evaluation" for t in i.tags)]
    assert [{t.key: t.value for t in i.tags}.get(TAG_DATASET_SHA256) for i in logged] == [sha]  # the ledger's sha
    assert run_.data.metrics["accuracy_score"] == verdict.metrics["accuracy_score"]
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(verdict.run_id)}
    assert "confusion_matrix.png" in artifacts
    # The bundle is stored write-once at its content address; the ledger has its digest and location.
    (put,) = world.s3.puts
    assert put["Key"] == bundle_key(verdict.artifacts_digest) and "ObjectLockMode" not in put  # the bucket's lock
    assert put["IfNoneMatch"] == "*" and bundle_digest(put["Body"]) == verdict.artifacts_digest
    assert verdict.artifacts_location == f"s3://{world.settings.bucket}/{put['Key']}?versionId=v1"
    with tarfile.open(fileobj=io.BytesIO(put["Body"])) as tar:
        assert {"confusion_matrix.png", ev.SUMMARY_FILE} <= set(tar.getnames())
    recorded = world.ledger.registry.calls[-1][1][2]
    assert recorded.run_id == verdict.run_id and recorded.dataset_sha256 == sha
    assert [m.key for m in recorded.metrics] == sorted(m.key for m in recorded.metrics)


def test_a_failing_evaluation_returns_the_failures(world: World, trained: tuple[Path, Any]) -> None:
    world.ledger.registry.minimum = 0.999
    verdict = run(world, trained[1])
    assert verdict.result == "FAILED" and not verdict.passed
    assert (
        verdict.failures[0].startswith("metric accuracy_score = ") and "below the minimum 0.999" in verdict.failures[0]
    )
    assert verdict.dataset_sha256 == dataframe_digest(trained[1])  # a DataFrame: its canonical serialisation


def test_a_model_that_does_not_verify_is_refused_before_anything_runs(world: World, trained: tuple[Path, Any]) -> None:
    import mlflow

    world.verified = False
    with pytest.raises(ModelNotVerified, match=r"NOT verified: bytes: changed: model\.pkl") as caught:
        run(world, trained[1])
    assert not caught.value.verification.ok
    assert world.evaluated == [] and world.s3.puts == []
    assert "register_dataset" not in names(world) and "record_evaluation" not in names(world)
    assert mlflow.search_runs(search_all_experiments=True, output_format="list") == []


def test_a_training_dataset_as_hold_out_is_refused_before_anything_runs(
    world: World, trained: tuple[Path, Any]
) -> None:
    world.ledger.datasets = [DatasetRef("train", dataframe_digest(trained[1]), "dataframe", True)]
    with pytest.raises(HoldOutIsTrainingData, match="a hold-out set must not be one"):
        run(world, trained[1])
    assert world.fetched == [] and world.evaluated == [] and world.s3.puts == []
    assert "record_evaluation" not in names(world)


def test_an_evaluator_of_the_registrants_organisation_is_refused_before_anything_runs_when_the_policy_asks(
    world: World, trained: tuple[Path, Any]
) -> None:
    # The chaincode would refuse it only at the end, after the MLflow run and the write-once bundle.
    world.ledger.registry.independent = True
    world.ledger.msp_id = world.ledger.registry.msp = "Org1MSP"
    with pytest.raises(EvaluatorNotIndependent, match="requires an evaluator of another organisation than Org1MSP"):
        run(world, trained[1])
    assert world.fetched == [] and world.evaluated == [] and world.s3.puts == []
    assert "record_evaluation" not in names(world) and "register_dataset" not in names(world)


@pytest.mark.parametrize(
    ("uri", "data", "targets", "model_type", "message"),
    [
        ("runs:/abc/model", None, "target", "classifier", "not a registered version"),
        ("models:/m/latest", None, "target", "classifier", "not a registered version"),
        ("models:/m/1", None, "no_such_column", "classifier", "has no column 'no_such_column'"),
        ("models:/m/1", None, "target", "llm", "model_type must be one of"),
        ("models:/m/1", "missing.csv", "target", "classifier", "no such file"),
        ("models:/m/1", 42, "target", "classifier", "must be a DataFrame or a file"),
    ],
)
def test_bad_input_changes_nothing(
    world: World, trained: tuple[Path, Any], uri: str, data: Any, targets: str, model_type: str, message: str
) -> None:
    with pytest.raises(EvaluationInputError, match=message):
        ev.evaluate(
            uri,
            trained[1] if data is None else data,
            targets=targets,
            model_type=model_type,
            ledger=world.ledger,
            s3=world.s3,
            s3_settings=world.settings,
        )
    assert world.ledger.registry.calls == [] and world.fetched == [] and world.evaluated == []


def test_an_existing_claim_is_not_registered_again(world: World, trained: tuple[Path, Any]) -> None:
    sha = dataframe_digest(trained[1])
    world.ledger.registry.claims.append(Dataset(name="holdout", sha256=sha, owner="Org2MSP"))
    run(world, trained[1])
    assert "register_dataset" not in names(world)


def test_a_rerun_after_the_ledger_write_returns_the_recorded_verdict_and_runs_nothing(
    world: World, trained: tuple[Path, Any]
) -> None:
    first = run(world, trained[1])
    world.evaluated.clear()
    again = run(world, trained[1])
    assert again.how == RECORDED_BEFORE and again.run_id == first.run_id and again.tx_id == first.tx_id
    assert world.evaluated == [] and len(world.ledger.registry.evaluations) == 1


def test_a_rerun_after_a_crash_between_the_run_and_the_ledger_write_records_the_same_run_once(
    world: World, trained: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    def die(*args: Any, **kw: Any) -> Any:
        raise KeyboardInterrupt  # killed after the MLflow run and the stored artefacts, before the ledger write

    monkeypatch.setattr(ev, "_record", die)
    with pytest.raises(KeyboardInterrupt):
        run(world, trained[1])
    monkeypatch.setattr(ev, "_record", RECORD)  # only _record: the world's fakes stay
    (crashed,) = mlflow.search_runs(search_all_experiments=True, output_format="list")
    mlflow.MlflowClient().log_metric(crashed.info.run_id, "accuracy_score", 0.1)  # MLflow's copy is mutable
    world.evaluated.clear()
    verdict = run(world, trained[1])
    assert verdict.how == RESUMED and world.evaluated == []  # the earlier run is recorded, not run again
    assert verdict.run_id == crashed.info.run_id
    assert verdict.metrics["accuracy_score"] > 0.9  # from the locked bundle, not from MLflow's run
    assert len(world.ledger.registry.evaluations) == 1 and len(world.s3.puts) == 1


def test_a_resumed_run_whose_bundle_changed_is_not_recorded(
    world: World, trained: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ev, "_record", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        run(world, trained[1])
    monkeypatch.setattr(ev, "_record", RECORD)  # only _record: the world's fakes stay
    (key,) = world.s3.objects
    body, version, kw = world.s3.objects[key]
    world.s3.objects[key] = (body + b"x", version, kw)
    with pytest.raises(EvaluationStoreError, match="is not the one of digest"):
        run(world, trained[1])
    assert world.ledger.registry.evaluations == []


def test_a_rerun_when_the_ledger_wrote_but_the_answer_was_lost_does_not_count_twice(
    world: World, trained: tuple[Path, Any]
) -> None:
    world.ledger.registry.lose_answer = True
    with pytest.raises(KeyboardInterrupt):
        run(world, trained[1])
    assert len(world.ledger.registry.evaluations) == 1
    verdict = run(world, trained[1])
    assert verdict.how == RECORDED_BEFORE and len(world.ledger.registry.evaluations) == 1


@pytest.mark.parametrize("change", ["new policy version", "policy removed"])
def test_a_rerun_after_the_policy_changed_evaluates_anew_and_says_why(
    world: World, trained: tuple[Path, Any], caplog: pytest.LogCaptureFixture, change: str
) -> None:
    first = run(world, trained[1])
    assert first.passed and first.policy_version == 2
    world.evaluated.clear()
    if change == "new policy version":
        world.ledger.registry.policy_version = 3
    else:
        world.ledger.registry.minimum = None
    with caplog.at_level("WARNING", logger=ev.__name__):
        again = run(world, trained[1])
    # The earlier PASSED was judged by policy version 2, which the gate no longer counts: not returned as it is.
    assert again.how == RERUN_POLICY_CHANGED and again.run_id != first.run_id and len(world.evaluated) == 1
    assert again.policy_version == (3 if change == "new policy version" else None)
    assert len(world.ledger.registry.evaluations) == 2
    assert "judged by policy version 2" in caplog.text and "evaluating again in a new run" in caplog.text
    # The journal now names the new run: the next call returns its verdict.
    world.evaluated.clear()
    third = run(world, trained[1])
    assert third.how == RECORDED_BEFORE and third.run_id == again.run_id and world.evaluated == []
    assert len(world.ledger.registry.evaluations) == 2


def test_a_rerun_under_the_same_policy_version_returns_the_recorded_verdict(
    world: World, trained: tuple[Path, Any]
) -> None:
    world.ledger.registry.minimum = None  # no policy then, none now: the same
    first = run(world, trained[1])
    again = run(world, trained[1])
    assert first.policy_version is None and again.how == RECORDED_BEFORE and again.run_id == first.run_id


def test_a_resumed_run_after_the_policy_changed_is_still_recorded_as_the_journals_run(
    world: World, trained: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    crash_before_the_ledger_write(world, trained[1], monkeypatch)
    (crashed,) = mlflow.search_runs(search_all_experiments=True, output_format="list")
    world.ledger.registry.policy_version = 3  # nothing was recorded: the journal's run is judged by the policy now
    world.evaluated.clear()
    verdict = run(world, trained[1])
    assert verdict.how == RESUMED and world.evaluated == [] and verdict.run_id == crashed.info.run_id
    assert verdict.policy_version == 3 and len(world.ledger.registry.evaluations) == 1


def test_the_same_run_refused_by_the_chaincode_is_the_earlier_record(world: World, trained: tuple[Path, Any]) -> None:
    first = run(world, trained[1])
    evaluation = world.ledger.registry.calls[-1][1][2]
    again = ev._record(world.ledger, "m", "1", evaluation, FRESH)  # a race: recorded between search and write
    assert again.how == RECORDED_BEFORE and again.tx_id == first.tx_id
    assert len(world.ledger.registry.evaluations) == 1


def test_rerun_without_resume_runs_anew_and_the_ledger_counts_it(world: World, trained: tuple[Path, Any]) -> None:
    first = run(world, trained[1])
    second = run(world, trained[1], resume=False)
    assert second.how == FRESH and second.run_id != first.run_id
    assert len(world.ledger.registry.evaluations) == 2
    assert len(world.s3.puts) == 2 and world.s3.puts[1].get("IfNoneMatch") == "*"


# --------------------------------------------------------------------------- the pieces
def test_the_artefacts_bundle_depends_only_on_paths_and_bytes(tmp_path: Path) -> None:
    import os
    import time

    def make(root: Path, mtime: float, mode: int) -> bytes:
        (root / "plots").mkdir(parents=True)
        (root / "plots" / "roc.png").write_bytes(b"png")
        (root / "summary.json").write_text("{}\n")
        for p in (root / "plots" / "roc.png", root / "summary.json"):
            os.utime(p, (mtime, mtime))
            p.chmod(mode)
        return bundle_folder(root)

    first = make(tmp_path / "a", time.time(), 0o600)
    second = make(tmp_path / "b", 1_000_000, 0o644)
    assert first == second and bundle_digest(first) == bundle_digest(second)
    (tmp_path / "b" / "summary.json").write_text("{ }\n")
    assert bundle_digest(bundle_folder(tmp_path / "b")) != bundle_digest(first)
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        assert [(m.name, m.mtime, m.uid, m.uname) for m in tar.getmembers()] == [
            ("plots/roc.png", 0, 0, ""),
            ("summary.json", 0, 0, ""),
        ]


def test_storing_the_same_bundle_again_writes_nothing_and_an_unlocked_copy_gets_a_locked_version_on_top() -> None:
    s3, bundle = FakeS3(), b"bundle bytes"
    first = store_bundle(s3, "anchored", bundle)
    again = store_bundle(s3, "anchored", bundle)
    assert first.created and not again.created and again.version_id == first.version_id
    assert len(s3.objects) == 1 and len(s3.puts) == 2  # the second PUT was refused by its condition
    body, version, kw = s3.objects[first.key]
    s3.objects[first.key] = (body, version, {**kw, "ObjectLockMode": "GOVERNANCE"})
    third = store_bundle(s3, "anchored", bundle)
    assert third.created and third.version_id not in (first.version_id, "")
    assert [v[1] for v in s3._versions(first.key)] == [third.version_id, first.version_id]  # nothing replaced
    s3.retention = ""  # a bucket without the default retention: the version written is not locked
    s3.objects[first.key] = (b"junk", third.version_id, {})
    with pytest.raises(EvaluationStoreError, match="is not COMPLIANCE-locked"):
        store_bundle(s3, "anchored", bundle)


def test_junk_put_at_a_bundles_key_does_not_block_it() -> None:
    """The evaluator S3 user may PUT under evaluations/ without If-None-Match: junk there blocks nothing."""
    s3, bundle = FakeS3(), b"bundle bytes"
    key = bundle_key(bundle_digest(bundle))
    s3.put_object(Bucket="anchored", Key=key, Body=b"junk")  # no condition, no checksum: the current version
    stored = store_bundle(s3, "anchored", bundle)
    assert stored.created and stored.version_id != "v1"
    assert [v[1] for v in s3._versions(key)] == [stored.version_id, "v1"]  # the junk stays, under it
    # Junk put on top of a sound copy: that copy is the bundle, nothing is written.
    s3.put_object(Bucket="anchored", Key=key, Body=b"more junk")
    puts = len(s3.puts)
    again = store_bundle(s3, "anchored", bundle)
    assert not again.created and again.version_id == stored.version_id and len(s3.puts) == puts + 1  # refused PUT


def test_a_forged_run_with_the_evaluation_key_is_never_recorded(
    world: World, trained: tuple[Path, Any], tmp_path: Path
) -> None:
    """Any MLflow user can create a run with the key tag pointing at another model's passing bundle: not resumed."""
    import json

    import mlflow

    _, frame = trained
    sha = dataframe_digest(frame)
    # Another model's passing, locked bundle (its summary is genuine, for that model).
    other = tmp_path / "other"
    other.mkdir()
    summary = {"runId": "r", "model": "other/7", "modelDigest": "ab" * 32, "datasetSha256": sha, "metrics": {}}
    summary["metrics"] = {"accuracy_score": 1.0}
    (other / ev.SUMMARY_FILE).write_text(json.dumps(summary))
    stored = store_bundle(world.s3, world.settings.bucket, bundle_folder(other))
    # The forger's run, in another experiment, with the key of this evaluation (its inputs are known).
    key = hold_out.evaluation_key("m", "1", MODEL_DIGEST, sha, "target", "classifier", "Org2MSP", None)
    client = mlflow.MlflowClient()
    forged = client.create_run(
        client.create_experiment("forger"),
        tags={
            ev.RUN_TAG_KEY: key,
            ev.RUN_TAG_ARTIFACTS_DIGEST: stored.sha256,
            ev.RUN_TAG_ARTIFACTS_LOCATION: stored.location,
        },
    )
    client.set_terminated(forged.info.run_id, "FINISHED")
    world.ledger.registry.minimum = 0.999  # this model fails; the forged bundle would pass
    verdict = run(world, frame)
    assert verdict.how == FRESH and verdict.run_id != forged.info.run_id and verdict.result == "FAILED"
    assert world.evaluated and verdict.artifacts_digest != stored.sha256
    assert [e.run_id for e in world.ledger.registry.evaluations] == [verdict.run_id]


def crash_before_the_ledger_write(world: World, data: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ev, "_record", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        run(world, data)
    monkeypatch.setattr(ev, "_record", RECORD)


def test_a_resumed_run_is_recorded_only_if_the_model_verifies_now(
    world: World, trained: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    crash_before_the_ledger_write(world, trained[1], monkeypatch)
    world.verified = False  # e.g. the anchored copy was tampered with since the run
    with pytest.raises(ModelNotVerified):
        run(world, trained[1])
    assert world.ledger.registry.evaluations == [] and len(world.evaluated) == 1
    world.verified = True
    assert run(world, trained[1]).how == RESUMED and len(world.evaluated) == 1


def test_every_folder_the_journal_makes_under_the_state_folder_is_private(tmp_path: Path) -> None:
    import os

    from modelledger.mlflow import resume_journal

    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    entry = resume_journal.JournalEntry("ab" * 32, "run", "cd" * 32, "s3://b/k?versionId=1")
    old = os.umask(0o022)  # a usual umask: a folder made with the default mode would be 0755
    try:
        resume_journal.write_entry(resume_journal.journal_folder(state), entry)
    finally:
        os.umask(old)
    modes = {p.relative_to(state).as_posix(): p.stat().st_mode & 0o777 for p in state.rglob("*") if p.is_dir()}
    assert modes == {"evaluator": 0o700, "evaluator/journal": 0o700}
    assert resume_journal.read_entry(resume_journal.journal_folder(state), entry.key) == entry


def test_a_journal_entry_pointing_at_another_evaluations_bundle_is_not_recorded(
    world: World, trained: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import dataclasses as dc
    import json

    from modelledger.mlflow import resume_journal

    crash_before_the_ledger_write(world, trained[1], monkeypatch)
    folder = resume_journal.journal_folder(world.settings.state_dir)
    (path,) = folder.iterdir()
    assert folder.stat().st_mode & 0o777 == 0o700 and path.stat().st_mode & 0o777 == 0o600
    entry = resume_journal.read_entry(folder, path.stem)
    assert entry is not None
    original = json.loads(
        ev.bundle_member(ev.read_bundle(world.s3, entry.artifacts_location, entry.artifacts_digest), ev.SUMMARY_FILE)
    )
    for field, value in [("model", "other/1"), ("modelDigest", "00" * 32), ("datasetSha256", "11" * 32)]:
        other = tmp_path / field
        other.mkdir()
        (other / ev.SUMMARY_FILE).write_text(json.dumps({**original, field: value}))
        stored = store_bundle(world.s3, world.settings.bucket, bundle_folder(other))
        resume_journal.write_entry(
            folder, dc.replace(entry, artifacts_digest=stored.sha256, artifacts_location=stored.location)
        )
        with pytest.raises(ev.EvaluationError, match=f"is not this evaluation's \\({field} differ"):
            run(world, trained[1])
    resume_journal.write_entry(folder, dc.replace(entry, run_id="someone-elses-run"))
    with pytest.raises(ev.EvaluationError, match="runId differ"):
        run(world, trained[1])
    assert world.ledger.registry.evaluations == []
    path.chmod(0o644)  # not private: not trusted
    with pytest.raises(resume_journal.JournalError, match="not a private file"):
        run(world, trained[1])


def test_the_hold_out_file_is_read_once_and_the_digest_logged_is_that_of_the_bytes_parsed(
    world: World, trained: tuple[Path, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow
    import pandas as pd

    _, frame = trained
    csv = tmp_path / "holdout.csv"
    frame.to_csv(csv, index=False)
    parsed = hashlib.sha256(csv.read_bytes()).hexdigest()
    real = pd.read_csv

    def read_then_change(source: Any, *args: Any, **kw: Any) -> Any:
        out = real(source, *args, **kw)
        with csv.open("a") as f:  # the file changes right after it was parsed
            f.write(",".join("0" for _ in frame.columns) + "\n")
        return out

    monkeypatch.setattr(pd, "read_csv", read_then_change)
    verdict = run(world, csv)
    assert verdict.dataset_sha256 == parsed
    assert ("register_dataset", ("holdout.csv", parsed, str(csv.resolve()))) in world.ledger.registry.calls
    run_ = mlflow.get_run(verdict.run_id)
    tags = [{t.key: t.value for t in i.tags} for i in run_.inputs.dataset_inputs]
    assert [t[TAG_DATASET_SHA256] for t in tags if t.get("mlflow.data.context") == "evaluation"] == [parsed]


def test_the_evaluation_key_holds_the_extra_metrics_and_refuses_a_config_that_does_not_serialise() -> None:
    class Metric:
        def __init__(self, name: str) -> None:
            self.name = name

    args = ("m", "1", MODEL_DIGEST, TRAIN_SHA, "target", "classifier", "Org2MSP", {"a": 1})
    plain = hold_out.evaluation_key(*args)
    assert hold_out.evaluation_key(*args, [Metric("f1")]) != plain
    assert hold_out.evaluation_key(*args, [Metric("f1")]) != hold_out.evaluation_key(*args, [Metric("f2")])
    assert hold_out.evaluation_key(*args, [Metric("a"), Metric("b")]) == hold_out.evaluation_key(
        *args, [Metric("b"), Metric("a")]
    )
    # With default=str these two configs had one key: now the one that does not serialise is refused.
    with pytest.raises(EvaluationInputError, match="evaluator_config must be plain JSON"):
        hold_out.evaluation_key(*args[:-1], {"a": Path("x")})
    assert hold_out.evaluation_key(*args[:-1], {"a": "x"})


def test_a_config_that_does_not_serialise_changes_nothing(world: World, trained: tuple[Path, Any]) -> None:
    with pytest.raises(EvaluationInputError, match="evaluator_config must be plain JSON"):
        run(world, trained[1], evaluator_config={"pos_label": object()})
    assert world.ledger.registry.calls == [] and world.fetched == [] and world.evaluated == []


def test_metrics_for_the_ledger_are_finite_numbers_sorted_by_key() -> None:
    import numpy as np

    got = hold_out.ledger_metrics(
        {"b": np.int64(3), "a": 0.5, "nan": float("nan"), "text": "x", "tiny": 1e-320, "zero": 0.0}
    )
    assert [(m.key, m.value) for m in got] == [("a", 0.5), ("b", 3.0), ("zero", 0.0)]  # no subnormal: refused there
    with pytest.raises(hold_out.EvaluationError, match="no numeric metric"):
        hold_out.ledger_metrics({"text": "x"})
    # The chaincode's cap on one evaluation's metrics (100), not a version's (1000).
    with pytest.raises(hold_out.EvaluationError, match="the ledger takes at most 100"):
        hold_out.ledger_metrics({f"m{n}": 1.0 for n in range(101)})


def test_model_uris() -> None:
    assert hold_out.parse_model_uri("models:/a/b/12") == ("a/b", "12", "")
    assert hold_out.parse_model_uri("models:/m@champion") == ("m", "", "champion")


def test_an_alias_is_resolved_by_mlflows_registry(tracking: str, trained: tuple[Path, Any]) -> None:
    from mlflow import MlflowClient

    client = MlflowClient()
    client.create_registered_model("m")
    client.create_model_version("m", source=str(trained[0]))
    client.create_model_version("m", source=str(trained[0]))
    client.set_registered_model_alias("m", "champion", "1")
    assert hold_out.resolve_model_uri("models:/m@champion") == ("m", "1")
    assert hold_out.resolve_model_uri("models:/m/2") == ("m", "2")
    with pytest.raises(EvaluationInputError, match="cannot resolve the alias"):
        hold_out.resolve_model_uri("models:/m@nobody")

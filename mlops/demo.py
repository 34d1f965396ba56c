"""``modelledger demo``: a model version's life, from a data scientist's run to its deployment, on the running stack.

1. split scikit-learn's breast cancer data (shipped with scikit-learn, so no
   network is needed) into a training set and a hold-out set; train an XGBoost
   classifier on the training set;
2. log its parameters, metrics and training data (full-content SHA-256 via
   :func:`modelledger.mlflow.log_dataset`) and register it in MLflow, exactly
   as a data scientist would; wait for the bridge to anchor it (the MLflow
   tags say so);
3. as an auditor, print the ledger record and the S3 pointer, and verify both
   the model MLflow serves and the anchored copy against the ledger: bytes,
   signature, signer (the registrant, an identity of its organisation) and
   status, the one verification every command uses;
4. tamper with a copy of the model and show the verification naming the file;
5. the owner's admin sets a policy; Org2's evaluator evaluates the version on
   the hold-out set (:func:`modelledger.mlflow.evaluate`, as the stack's MLflow
   ``evaluator`` user in its own experiment, not as the data scientist) and the
   ledger judges it; a second, weaker version fails and its approval is refused;
   both organisations approve the first, Org1's operator deploys it, and the
   MLflow tags the bridge mirrors from the ledger show it all.

The console tells only that story: the log lines, warnings and run links of
the libraries underneath go to ``<state>/demo/demo.log``
(:mod:`~modelledger.mlops.library_output`), whose path the demo prints at its
end, also when it fails.

Why this module is long: it is the demo's script, read top to bottom as the
story it prints; each step is a few calls of the public API, and splitting
them over modules would hide the story they tell together.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from modelledger.mlops.bridge import (
    ANCHORING,
    STATUS_ANCHORED,
    STATUS_FAILED,
    TAG_APPROVALS,
    TAG_BLOCK,
    TAG_DEPLOYMENTS,
    TAG_ERROR,
    TAG_EVALUATION,
    TAG_STATUS,
    TAG_STORAGE,
    TAG_TX,
    MlflowAuthError,
    MlflowUser,
    act_as,
    acting_as,
)
from modelledger.mlops.bridge.mlflow_credentials import EVALUATIONS_EXPERIMENT
from modelledger.mlops.bridge.tags import status_tag
from modelledger.mlops.cli.output import console as cli_console
from modelledger.mlops.cli.output import show_fields
from modelledger.mlops.library_output import demo_log_path, library_output_to
from modelledger.mlops.mlflow.hold_out import EvaluationError
from modelledger.mlops.store import (
    SIGNER_IDENTITY,
    anchored_bundle,
    ledger_evidence,
    verify_folder,
    verify_s3,
    verify_version,
)
from modelledger.mlops.store.s3_access import S3AccessError, s3_client
from modelledger.runtime.settings import MlflowSettings, S3Settings, S3User, connection_profile_path
from modelledger.sdk.profile import ConnectionProfile
from modelledger.sdk.registry import RegistryClient, RegistryError
from modelledger.sdk.registry.records import MetricThreshold, ModelPolicyInput
from modelledger.sdk.registry.statuses import result_word, status_meaning, status_word

MODEL_NAME = "breast-cancer-xgb"

_log = logging.getLogger("modelledger.demo")


class DemoError(Exception):
    """A step of the demo failed; the message says which and why."""


def _step(console: Console, n: int, text: str) -> None:
    console.print(f"\n[bold cyan]{n}.[/] [bold]{text}[/]")


@dataclasses.dataclass(frozen=True)
class Split:
    """The breast cancer data, split once: the training set and the hold-out set the model never sees."""

    x_train: Any
    y_train: Any
    x_test: Any
    y_test: Any

    @property
    def hold_out(self) -> Any:
        """The hold-out set with its ``target`` column, as the evaluator receives it."""
        return self.x_test.assign(target=self.y_test)


def split_data() -> Split:
    """Splits scikit-learn's breast cancer data into a training set and a stratified 25% hold-out set."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    frame = load_breast_cancer(as_frame=True).frame
    x_train, x_test, y_train, y_test = train_test_split(
        frame.drop(columns="target"), frame["target"], test_size=0.25, random_state=7, stratify=frame["target"]
    )
    return Split(x_train, y_train, x_test, y_test)


# The model the demo approves, and a deliberately weak one (a single stump) that fails the owner's policy.
GOOD_PARAMS = {"n_estimators": 60, "max_depth": 3, "learning_rate": 0.2, "subsample": 0.9, "random_state": 7}
WEAK_PARAMS = {"n_estimators": 1, "max_depth": 1, "learning_rate": 0.3, "random_state": 7}


def train_and_register(
    console: Console, tracking_uri: str, split: Split, params: dict[str, Any] | None = None
) -> tuple[str, str, float]:
    """Trains on the training set, logs and registers the model; returns (name, version, seconds at registration)."""
    import mlflow
    import mlflow.xgboost
    import xgboost as xgb
    from sklearn.metrics import accuracy_score, roc_auc_score

    from modelledger.mlflow import log_dataset

    params = params or GOOD_PARAMS
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("modelledger-demo")
    x_train, y_train = split.x_train, split.y_train
    model = xgb.XGBClassifier(**params, eval_metric="logloss")
    model.fit(x_train, y_train)
    # The data scientist's own check, on the training data only: the hold-out set is the evaluator's.
    proba = model.predict_proba(x_train)[:, 1]
    metrics = {"train_accuracy": float(accuracy_score(y_train, proba > 0.5)),
               "train_roc_auc": float(roc_auc_score(y_train, proba))}  # fmt: skip
    console.print(
        f"   trained on {len(x_train)} samples ({len(split.x_test)} held out for the evaluator): "
        f"training accuracy {metrics['train_accuracy']:.3f}, ROC AUC {metrics['train_roc_auc']:.3f}"
    )
    with mlflow.start_run(run_name="xgb-breast-cancer") as run:
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        train = x_train.assign(target=y_train)
        logged = log_dataset(train, name="breast-cancer-train", source="sklearn.datasets.load_breast_cancer")
        console.print(f"   logged training data {logged.name}: SHA-256 {logged.sha256} (every row, every value)")
        info = mlflow.xgboost.log_model(model, name="model")
    t0 = time.monotonic()
    mv = mlflow.register_model(info.model_uri, MODEL_NAME)
    console.print(f"   registered [bold]{MODEL_NAME}[/] version {mv.version} from run {run.info.run_id}")
    _log.info(
        "MLflow run %s: %s/#/experiments/%s/runs/%s",
        run.info.run_name,
        tracking_uri.rstrip("/"),
        run.info.experiment_id,
        run.info.run_id,
    )
    return MODEL_NAME, str(mv.version), t0


def wait_anchored(
    console: Console, client: Any, name: str, version: str, since: float, timeout: float = 120
) -> dict[str, str]:
    """Polls the version's tags until the bridge marks it anchored (or failed)."""
    deadline = time.monotonic() + timeout
    last = ""
    with console.status("   waiting for the bridge…") as status:
        while time.monotonic() < deadline:
            tags = client.get_model_version(name, version).tags
            state = tags.get(TAG_STATUS, "")
            if state != last:
                status.update(f"   {TAG_STATUS} = {state or '(not yet)'} after {time.monotonic() - since:.1f}s")
                last = state
            if state == STATUS_ANCHORED:
                console.print(f"   [green]anchored[/] {time.monotonic() - since:.1f}s after registration")
                return tags
            if state == STATUS_FAILED:
                raise DemoError(f"the bridge could not anchor {name}/{version}: {tags.get(TAG_ERROR, '')}")
            time.sleep(0.2)
    raise DemoError(
        f"{name}/{version} not anchored after {timeout:.0f}s ({TAG_STATUS}={last or 'unset'}, "
        f"{TAG_ERROR}={client.get_model_version(name, version).tags.get(TAG_ERROR, '')}); see `make bridge-status`"
    )


def run(console: Console | None = None) -> int:
    """Runs the demo on the stack described by the environment, printing on ``console`` (default: the CLI's);
    returns the exit code.

    The libraries' log lines and warnings go to :func:`demo_log_path`, printed at the end.
    """
    console = console or cli_console
    log_path = demo_log_path()
    try:
        with library_output_to(log_path):
            return _run(console)
    finally:
        console.print(f"[dim]MLflow's and the other libraries' log lines and warnings: {escape(str(log_path))}[/]")


def _run(console: Console) -> int:
    """The demo's story, printed on ``console``; returns the exit code."""
    mlflow_settings = MlflowSettings.from_env()
    # The data scientist's side runs as the stack's data scientist (MLflow's own authentication), the
    # evaluations as the stack's evaluator, unless the environment already names an MLflow user.
    evaluator: MlflowSettings | None = None
    if not os.environ.get("MLFLOW_TRACKING_USERNAME"):
        act_as(mlflow_settings, MlflowUser.SCIENTIST)
        evaluator = mlflow_settings
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_settings.tracking_uri, registry_uri=mlflow_settings.tracking_uri)
    try:
        _step(console, 1, "A data scientist trains, logs and registers a model in MLflow (nothing else)")
        split = split_data()
        name, version, t0 = train_and_register(console, mlflow_settings.tracking_uri, split)

        _step(console, 2, "The bridge anchors it: digest, signature, write-once S3, ledger endorsed by every org")
        tags = wait_anchored(console, client, name, version, t0)
        console.print(f"   MLflow tags: {TAG_TX} {tags[TAG_TX]}, {TAG_BLOCK} {tags[TAG_BLOCK]}")
        console.print(f"   {STATUS_ANCHORED}: {ANCHORING[STATUS_ANCHORED]}")

        _step(console, 3, "A compliance officer (Org1 auditor) reads the ledger record")
        profile = ConnectionProfile.load(connection_profile_path())
        with profile.gateway("Org1MSP", "auditor") as gw:
            evidence = ledger_evidence(gw.network(profile.channel), profile.chaincode, name, version)
        record, pointer = evidence.record, evidence.pointer
        rows: list[tuple[str, str]] = [
            ("model digest", record.model_digest),
            ("manifest", f"{record.manifest_digest} ({len(record.manifest.files)} files)"),
            *((f"file {f.path}", f"{f.size} bytes, sha256 {f.sha256}") for f in record.manifest.files),
            ("S3 pointer", pointer.uri),
            ("S3 version", f"{pointer.version_id}, index sha256 {pointer.sha256}"),
            ("MLflow", f"run {record.mlflow.run_id}, source {record.mlflow.source}"),
            ("framework", f"{record.framework.name} {record.framework.version}"),
            *(
                ("training data", f"{d.name}, sha256 {d.sha256} (registered on the ledger: {d.registered})")
                for d in record.datasets
            ),
            ("params", ", ".join(f"{p.key}={p.value}" for p in record.params)),
            ("metrics", ", ".join(f"{m.key}={m.value:.4f}" for m in record.metrics)),
            ("registrant", f"{record.registrant.role}@{record.registrant.msp_id}"),
            ("status", f"{status_word(record.status)}: {status_meaning(record.status)}"),
            ("registered", f"tx {record.registered_tx_id} at {record.registered_at}"),
        ]
        show_fields(f"{name} version {version} on the ledger", rows, con=console)
        if tags.get(TAG_STORAGE, "").split("?")[0] != pointer.uri:
            raise DemoError(f"the MLflow tag {TAG_STORAGE} {tags.get(TAG_STORAGE)} is not the ledger's pointer")

        _step(console, 4, "Verification: bytes, signature, signer and status of what MLflow serves and of the copy")
        import mlflow.artifacts

        s3 = s3_client(S3Settings.from_env(), user=S3User.AUDITOR)
        bundle, no_bundle = anchored_bundle(s3, pointer)
        work = Path(tempfile.mkdtemp(prefix="modelledger-demo-"))
        try:
            # The version's artifact location, as the bridge read it. (A `models:/name/version` download
            # adds MLflow's own `registered_model_meta` file, which is not part of the model.)
            served = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=client.get_model_version_download_uri(name, version),
                    dst_path=str(work / "served"),
                    tracking_uri=mlflow_settings.tracking_uri,
                )
            )
            results = [
                verify_version(evidence, bundle, lambda m: verify_folder(served, m), "model from MLflow", no_bundle),
                verify_version(evidence, bundle, lambda m: verify_s3(s3, pointer, m), "anchored S3 copy", no_bundle),
            ]
            for result in results:
                verdict = "[green]verified[/]" if result.ok else "[red]NOT VERIFIED[/]"
                console.print(f"   {escape(result.target)} vs ledger: {verdict}: {escape(result.covered())}")
                for warning in result.warnings:
                    console.print(f"     [yellow]warning[/]: {escape(warning)}")
            signer = results[1].check(SIGNER_IDENTITY).detail
            console.print(f"   {escape(signer)}")
            failed = [r.summary() for r in results if not r.ok]
            if failed:
                raise DemoError(f"verification failed: {' | '.join(failed)}")

            _step(console, 5, "Tampering: one flipped byte in a copy of the model")
            tampered = work / "tampered"
            shutil.copytree(served, tampered)
            target = max((p for p in tampered.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
            data = bytearray(target.read_bytes())
            data[len(data) // 2] ^= 0x01
            target.write_bytes(bytes(data))
            bad = verify_version(evidence, bundle, lambda m: verify_folder(tampered, m), "tampered copy", no_bundle)
            if bad.ok:
                raise DemoError("the tampered copy verified: this must never happen")
            for c in bad.failed:
                console.print(f"   verification [red]fails[/]: {c.name}: {escape(c.detail)}")
        finally:
            shutil.rmtree(work, ignore_errors=True)

        govern(console, client, profile, mlflow_settings.tracking_uri, split, name, version, evaluator)
    except (DemoError, S3AccessError, EvaluationError, RegistryError) as exc:
        console.print(f"[bold red]demo failed:[/] {escape(str(exc))}")
        return 1
    console.print(
        f"\n[bold green]done.[/] Next: [bold].venv/bin/modelledger store verify --ledger {name} {version}[/]"
        f" · [bold].venv/bin/modelledger model show {name} {version}[/]"
    )
    return 0


# The owner's policy in the demo: what the hold-out evaluation must show, judged on the ledger.
DEMO_POLICY = ModelPolicyInput(
    independent_evaluator=True,
    required_passes=1,
    thresholds=[MetricThreshold(metric="accuracy_score", min=0.93), MetricThreshold(metric="roc_auc", min=0.97)],
)


# Where the demo says its model runs (a label on the ledger: ModelLedger's own serving comes later).
DEMO_ENDPOINT = "https://models.org1.example/breast-cancer-xgb"
# The tags the bridge's ledger follower mirrors, in the order the demo shows them.
MIRRORED_TAGS = (TAG_STATUS, TAG_EVALUATION, TAG_APPROVALS, TAG_DEPLOYMENTS)


@contextlib.contextmanager
def registry(profile: ConnectionProfile, org: str, role: str) -> Iterator[RegistryClient]:
    """The registry as ``role`` of ``org`` (an identity of the state folder)."""
    with profile.gateway(org, role) as gw:
        yield RegistryClient(gw.network(profile.channel), profile.chaincode)


@contextlib.contextmanager
def mlflow_evaluator(settings: MlflowSettings | None) -> Iterator[None]:
    """MLflow calls in the block run as the stack's MLflow ``evaluator`` user, in its experiment
    :data:`EVALUATIONS_EXPERIMENT` (``settings`` None: as the environment's user, in the active experiment).

    The user's variables are restored afterwards; the active experiment stays the evaluator's
    (:func:`train_and_register` names its own each time).
    """
    if settings is None:
        yield
        return
    import mlflow

    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(acting_as(settings, MlflowUser.EVALUATOR))
        except MlflowAuthError as exc:  # a stack set up before the evaluator user existed
            raise DemoError(str(exc)) from exc
        mlflow.set_experiment(EVALUATIONS_EXPERIMENT)
        yield


def _evaluate(
    console: Console, split: Split, name: str, version: str, evaluator: MlflowSettings | None = None
) -> Any:
    """Org2's evaluation of ``name``/``version`` on the hold-out set, as :func:`mlflow_evaluator` of ``evaluator``."""
    from modelledger.mlflow import evaluate

    status = console.status(f"   Org2's evaluator runs mlflow.models.evaluate on {name}/{version}…")
    with status, mlflow_evaluator(evaluator):
        verdict = evaluate(
            f"models:/{name}/{version}",
            split.hold_out,
            targets="target",
            model_type="classifier",
            org="Org2MSP",
            dataset_name="breast-cancer-holdout",
            dataset_source="sklearn.datasets.load_breast_cancer (25% stratified hold-out, random_state 7)",
            run_name=f"evaluate-{name}-{version}",
        )
    shown = ", ".join(f"{t.metric} {verdict.metrics.get(t.metric, float('nan')):.3f}" for t in DEMO_POLICY.thresholds)
    colour = "green" if verdict.passed else "red"
    console.print(
        f"   {name}/{version}: [{colour}]{result_word(verdict.result)}[/] ({shown}) by {escape(verdict.evaluator)},"
        f" policy version {verdict.policy_version}, tx {verdict.tx_id}"
    )
    for failure in verdict.failures:
        console.print(f"     [red]✗[/] {escape(failure)}")
    return verdict


def wait_tags(client: Any, name: str, version: str, want: dict[str, str], timeout: float = 60) -> dict[str, str]:
    """Polls the version's MLflow tags until each tag of ``want`` holds its value ("" = is set at all): the bridge's
    ledger follower writes them within seconds of the transaction."""
    deadline = time.monotonic() + timeout
    tags: dict[str, str] = {}
    while time.monotonic() < deadline:
        tags = client.get_model_version(name, version).tags
        if all(k in tags and (v == "" or tags[k] == v) for k, v in want.items()):
            return tags
        time.sleep(0.3)
    seen = {k: tags.get(k, "(unset)") for k in want}
    raise DemoError(
        f"MLflow tags of {name}/{version} are {seen} after {timeout:.0f}s, not {want}; see `make bridge-status`"
    )


def govern(
    console: Console,
    client: Any,
    profile: ConnectionProfile,
    tracking_uri: str,
    split: Split,
    name: str,
    version: str,
    evaluator: MlflowSettings | None = None,
) -> None:
    """Steps 6 to 10: the owner's policy, the evaluations, the refused and the granted approvals, the deployment.

    The evaluations run as the stack's MLflow evaluator when ``evaluator`` is given (:func:`mlflow_evaluator`).
    """
    _step(console, 6, "Org1's admin sets the owner's policy: what an evaluation on hold-out data must show")
    with registry(profile, "Org1MSP", "admin") as admin:
        policy = admin.set_model_policy(name, DEMO_POLICY).policy
    assert policy is not None
    bounds = ", ".join(f"{t.metric} ≥ {t.min}" for t in policy.thresholds)
    console.print(
        f"   policy version {policy.version}: {bounds}; {policy.required_passes} passing evaluation, "
        "by an evaluator of another organisation than the registrant's"
    )

    _step(console, 7, f"Org2's evaluator tests version {version} on the {len(split.x_test)}-row hold-out set")
    _evaluate(console, split, name, version, evaluator)

    _step(console, 8, "A second, weaker version fails the policy, and no organisation can approve it")
    _, weak, since = train_and_register(console, tracking_uri, split, WEAK_PARAMS)
    wait_anchored(console, client, name, weak, since)
    _evaluate(console, split, name, weak, evaluator)
    with registry(profile, "Org1MSP", "approver") as approver:
        try:
            approver.approve(name, weak, "looks fine to me")
        except RegistryError as refused:
            console.print(f"   Org1's approval of version {weak} [red]refused[/] by the ledger: {escape(str(refused))}")
        else:
            raise DemoError(f"version {weak} failed its evaluation and was approved: this must never happen")

    _step(console, 9, f"Both organisations approve version {version}; Org1's operator deploys it")
    for org in ("Org1MSP", "Org2MSP"):
        with registry(profile, org, "approver") as approver:
            record = approver.approve(name, version, "hold-out evaluation passed")
        console.print(f"   {org} approved: version {version} is now {status_word(record.status)}")
    with registry(profile, "Org1MSP", "operator") as operator:
        record = operator.record_deployment(name, version, "production", DEMO_ENDPOINT)
    console.print(f"   deployed to production ({DEMO_ENDPOINT}): {status_word(record.status)}")

    _step(console, 10, "MLflow shows it all: the bridge mirrors the ledger onto the versions' tags")
    shown = wait_tags(client, name, version, {TAG_STATUS: status_tag("DEPLOYED"), TAG_EVALUATION: ""})
    weak_tags = wait_tags(client, name, weak, {TAG_STATUS: STATUS_ANCHORED, TAG_EVALUATION: ""})
    rows = [(f"{version}: {tag}", _readable(shown.get(tag, "(unset)"))) for tag in MIRRORED_TAGS]
    rows += [(f"{weak}: {tag}", _readable(weak_tags.get(tag, "(unset)"))) for tag in (TAG_STATUS, TAG_EVALUATION)]
    show_fields(f"MLflow tags of {name} (JSON values spaced for reading)", rows, con=console)


def _readable(value: str) -> str:
    """A tag's JSON value with a space after each comma and colon, so a terminal can wrap it; other values as
    they are."""
    try:
        return json.dumps(json.loads(value), separators=(", ", ": "))
    except ValueError:
        return value

"""``modelledger demo``: a data scientist's run and a compliance officer's checks, on the running stack.

1. train an XGBoost classifier on scikit-learn's breast cancer data (shipped
   with scikit-learn, so no network is needed);
2. log its parameters, metrics and training data (full-content SHA-256 via
   :func:`modelledger.mlflow.log_dataset`) and register it in MLflow, exactly
   as a data scientist would;
3. wait for the bridge to anchor it (the MLflow tags say so);
4. as an auditor, print the ledger record and the S3 pointer, and verify both
   the model MLflow serves and the anchored copy against the ledger: bytes,
   signature, signer (the registrant, an identity of its organisation) and
   status, the one verification every command uses;
5. tamper with a copy of the model and show the verification naming the file.

The console tells only that story: the log lines, warnings and run links of
the libraries underneath (MLflow, urllib3, botocore, scikit-learn, XGBoost)
go to ``<state>/demo/demo.log`` (:func:`library_output_to`), whose path the
demo prints at its end, also when it fails.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from modelledger.mlops.bridge import (
    ANCHORING,
    STATUS_ANCHORED,
    STATUS_FAILED,
    TAG_BLOCK,
    TAG_ERROR,
    TAG_STATUS,
    TAG_STORAGE,
    TAG_TX,
    MlflowUser,
    act_as,
)
from modelledger.mlops.cli.output import console as cli_console
from modelledger.mlops.cli.output import show_fields
from modelledger.mlops.store import (
    SIGNER_IDENTITY,
    anchored_bundle,
    ledger_evidence,
    verify_folder,
    verify_s3,
    verify_version,
)
from modelledger.mlops.store.s3_access import S3AccessError, s3_client
from modelledger.runtime.private_files import open_private_log
from modelledger.runtime.settings import MlflowSettings, S3Settings, S3User, connection_profile_path, state_dir
from modelledger.sdk.profile import ConnectionProfile
from modelledger.sdk.registry.statuses import status_meaning, status_word

MODEL_NAME = "breast-cancer-xgb"

# The loggers MLflow gives their own stderr handler (and propagate=False) when it is imported.
MLFLOW_OWN_LOGGERS = ("mlflow", "sqlalchemy.engine", "alembic", "huey")
# MLflow's switches for what it writes to the terminal itself rather than through logging: the
# "🏃 View run … / 🧪 View experiment …" lines (sys.stdout) and the artifacts' tqdm progress bars.
# The demo writes the run's link to its log instead.
MLFLOW_QUIET_ENV = {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}

_log = logging.getLogger("modelledger.demo")


class DemoError(Exception):
    """A step of the demo failed; the message says which and why."""


class _LinesToLog:
    """A text stream whose complete lines become INFO records of ``logger`` (MLflow's ``eprint`` stream)."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._pending = ""

    def write(self, text: str) -> int:
        """Logs each complete line of ``text``; keeps a trailing partial line for the next write."""
        *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            if line.strip():
                self._logger.info("%s", line)
        return len(text)

    def flush(self) -> None:
        """Logs a pending partial line."""
        if self._pending.strip():
            self._logger.info("%s", self._pending)
        self._pending = ""


def demo_log_path() -> Path:
    """Where the demo writes the other libraries' log lines and warnings: ``<state>/demo/demo.log``."""
    return state_dir() / "demo" / "demo.log"


def remove_demo_log() -> Path | None:
    """Deletes :func:`demo_log_path` (and its folder once empty); returns the path if it existed."""
    path = demo_log_path()
    if not path.is_file():
        return None
    path.unlink()
    with contextlib.suppress(OSError):  # not empty: something else lives there, keep it
        path.parent.rmdir()
    return path


@contextlib.contextmanager
def library_output_to(path: Path) -> Iterator[Path]:
    """Sends the libraries' log records and warnings to ``path`` (0600, appended), not to the terminal.

    Inside the block, every logger propagates to the root logger, whose only
    handler is the file: MLflow's own loggers lose the stderr handler MLflow
    gives them on import, ``warnings`` go through logging
    (:func:`logging.captureWarnings`), MLflow's event messages (``eprint``:
    "Successfully registered model …", "Created version …"), written to the
    stream ``mlflow.utils.logging_utils.MLFLOW_LOGGING_STREAM`` and from there
    to stderr, become records of the ``mlflow.events`` logger, and MLflow's
    direct terminal writes (run links, progress bars) are switched off by
    :data:`MLFLOW_QUIET_ENV`. What
    the demo prints itself, and exceptions, are untouched. Everything is put
    back on exit.

    Args:
        path: The log file (created mode 0600 in a 0700 folder if missing).

    Yields:
        ``path``.
    """
    import mlflow  # noqa: F401  (imported first: its import installs the handlers replaced below)
    from mlflow.utils import logging_utils as mlflow_logging

    saved_events = mlflow_logging.MLFLOW_LOGGING_STREAM
    events = _LinesToLog(logging.getLogger("mlflow.events"))

    saved_env = {k: os.environ.get(k) for k in MLFLOW_QUIET_ENV}
    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    own_loggers = [logging.getLogger(name) for name in MLFLOW_OWN_LOGGERS]
    saved_own = [(own, own.handlers[:], own.level, own.propagate) for own in own_loggers]
    stream = os.fdopen(open_private_log(path), "a", encoding="utf-8")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    try:
        os.environ.update(MLFLOW_QUIET_ENV)
        for own in own_loggers:
            own.handlers = []
            own.propagate = True
        logging.getLogger("mlflow").setLevel(logging.INFO)
        root.handlers = [handler]
        root.setLevel(logging.INFO)
        logging.captureWarnings(True)
        mlflow_logging.MLFLOW_LOGGING_STREAM = events  # eprint() looks the stream up at each call
        _log.info("demo started at %s", datetime.now(UTC).isoformat(timespec="seconds"))
        yield path
    finally:
        events.flush()
        mlflow_logging.MLFLOW_LOGGING_STREAM = saved_events
        logging.captureWarnings(False)
        root.handlers, level = saved_root
        root.setLevel(level)
        for own, handlers, level, propagate in saved_own:
            own.handlers, own.propagate = handlers, propagate
            own.setLevel(level)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        handler.close()
        stream.close()


def _step(console: Console, n: int, text: str) -> None:
    console.print(f"\n[bold cyan]{n}.[/] [bold]{text}[/]")


def train_and_register(console: Console, tracking_uri: str) -> tuple[str, str, float]:
    """Trains, logs and registers the model; returns (name, version, seconds at registration)."""
    import mlflow
    import mlflow.xgboost
    import xgboost as xgb
    from sklearn.datasets import load_breast_cancer
    from sklearn.metrics import accuracy_score, roc_auc_score
    from sklearn.model_selection import train_test_split

    from modelledger.mlflow import log_dataset

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("modelledger-demo")
    data = load_breast_cancer(as_frame=True)
    frame = data.frame
    x_train, x_test, y_train, y_test = train_test_split(
        frame.drop(columns="target"), frame["target"], test_size=0.25, random_state=7, stratify=frame["target"]
    )
    params = {"n_estimators": 60, "max_depth": 3, "learning_rate": 0.2, "subsample": 0.9, "random_state": 7}
    model = xgb.XGBClassifier(**params, eval_metric="logloss")
    model.fit(x_train, y_train)
    proba = model.predict_proba(x_test)[:, 1]
    metrics = {"accuracy": float(accuracy_score(y_test, proba > 0.5)), "roc_auc": float(roc_auc_score(y_test, proba))}
    console.print(
        f"   trained on {len(x_train)} samples, tested on {len(x_test)}: "
        f"accuracy {metrics['accuracy']:.3f}, ROC AUC {metrics['roc_auc']:.3f}"
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
    # The data scientist's side runs as the stack's data scientist (MLflow's own authentication),
    # unless the environment already names an MLflow user.
    if not os.environ.get("MLFLOW_TRACKING_USERNAME"):
        act_as(mlflow_settings, MlflowUser.SCIENTIST)
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_settings.tracking_uri, registry_uri=mlflow_settings.tracking_uri)
    try:
        _step(console, 1, "A data scientist trains, logs and registers a model in MLflow (nothing else)")
        name, version, t0 = train_and_register(console, mlflow_settings.tracking_uri)

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
    except (DemoError, S3AccessError) as exc:
        console.print(f"[bold red]demo failed:[/] {escape(str(exc))}")
        return 1
    console.print(
        f"\n[bold green]done.[/] Next: [bold].venv/bin/modelledger store verify --ledger {name} {version}[/]"
        f" · [bold].venv/bin/modelledger model history {name} {version}[/]"
    )
    return 0

"""``modelledger model evaluate``: evaluate a registered version on hold-out data and record the verdict.

The command runs :func:`modelledger.mlflow.evaluate` as one role of one
organisation (``--org``, required, ``--role``, default ``evaluator``; the identity comes
from the state folder through the connection profile) and prints the ledger's
verdict: passed, failed (with each failure) or no policy, the metrics, and where
the run, the data and the artefacts are (``--json``: the verdict as JSON).

A refusal (the chaincode's, a model that does not verify against the ledger,
a hold-out set that is a training dataset) is one line on stderr and exit 1;
bad input (no such file, no such column, a version that is no number, an
unknown model type) is exit 2 and nothing is run or recorded.

MLflow: the run goes to the stack's tracking server as its MLflow ``evaluator``
user, in that user's experiment ``modelledger-evaluations`` (``--experiment``
names another), so that the evaluation is not the developer's run and the
evaluator cannot change the developer's experiments, models or aliases. An
MLflow user named in the environment (``MLFLOW_TRACKING_USERNAME``), or a
``MLFLOW_TRACKING_URI`` of another server, is used as it is instead (the
experiment is then MLflow's default unless ``--experiment`` names one).
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from modelledger.mlops.cli.connection import ProfileOpt, refusal_text
from modelledger.mlops.cli.output import Cell, JsonOpt, console, emit_json, err_console, fail, show_fields, show_note
from modelledger.sdk.gateway.errors import GatewayError
from modelledger.sdk.registry.gate import format_number
from modelledger.sdk.registry.statuses import result_meaning, result_word

if TYPE_CHECKING:
    from modelledger.mlflow.evaluator import EvaluationVerdict

# modelledger.mlflow.evaluator and what it needs (MLflow, boto3, the signature code) are imported when the
# command runs, so that the CLI's other commands do not pay for them.


class ModelType(StrEnum):
    """What ``mlflow.models.evaluate``'s default evaluator scores against a target column."""

    CLASSIFIER = "classifier"
    REGRESSOR = "regressor"


# How the verdict came about (modelledger.mlflow.hold_out's FRESH, RESUMED, RECORDED_BEFORE, RERUN_POLICY_CHANGED),
# for people.
_HOW = {
    "resumed": "an earlier call's run (artefacts stored, not yet recorded) was recorded now: nothing was run again",
    "recorded-before": "an earlier call had recorded this evaluation already: nothing was run or recorded",
    "rerun-policy-changed": "an earlier call had recorded this evaluation under another policy version than the "
    "model's now, which the gate no longer counts: it was evaluated again in a new run",
}


def verdict_rows(verdict: EvaluationVerdict) -> list[tuple[str, Cell]]:
    """The verdict as (field, value) rows: result, failures, metrics, policy, then where everything is."""
    v = verdict
    policy = f"version {v.policy_version}" if v.policy_version is not None else "none in force"
    rows: list[tuple[str, Cell]] = [
        ("model", f"{v.name} version {v.version}"),
        ("result", result_word(v.result)),
        ("meaning", result_meaning(v.result)),
        ("policy", policy),
    ]
    rows += [("failure", f) for f in v.failures]
    rows += [(f"metric {k}", format_number(value)) for k, value in sorted(v.metrics.items())]
    rows += [
        ("evaluator", v.evaluator),
        ("hold-out sha256", v.dataset_sha256),
        ("mlflow run", v.run_id),
        ("artefacts sha256", v.artifacts_digest),
        ("artefacts", v.artifacts_location or "-"),
        ("recorded", f"{v.time} tx {v.tx_id}"),
    ]
    return rows


def show_verdict(verdict: EvaluationVerdict, con: Console | None = None) -> None:
    """Prints the verdict's fields (a table on a terminal, ``key<TAB>value`` in a pipe), and how it came about."""
    v = verdict
    show_fields(f"evaluation of {v.name} version {v.version}: {result_word(v.result)}", verdict_rows(v), con)
    how = _HOW.get(v.how, "")
    if how:
        show_note(escape(how), con)


def _mlflow_user(as_json: bool) -> str | None:
    """Makes MLflow the stack's tracking server as its ``evaluator`` user, unless the environment names an MLflow
    user or another server (then it is left as it is); returns the evaluator's experiment, or None if the
    environment's MLflow is used."""
    from modelledger.mlops.bridge.mlflow_credentials import (
        EVALUATIONS_EXPERIMENT,
        MlflowAuthError,
        MlflowUser,
        act_as,
    )
    from modelledger.runtime.settings import MlflowSettings

    if os.environ.get("MLFLOW_TRACKING_USERNAME"):
        return None
    try:
        settings = MlflowSettings.from_env()
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if uri and uri.rstrip("/") != settings.tracking_uri.rstrip("/"):
            return None  # another server: the evaluator's password is never sent there
        act_as(settings, MlflowUser.EVALUATOR)
    except (MlflowAuthError, ValueError) as exc:
        fail(f"{exc} (or set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD)", as_json)
    # MLflow's client retries a server that does not answer for about four minutes: ask once first.
    from modelledger.mlops.servers.tracking import server_health

    up, detail = server_health(settings)
    if not up:
        fail(f"the stack's MLflow server at {settings.tracking_uri} does not answer ({detail}): run `make up`", as_json)
    return EVALUATIONS_EXPERIMENT


def _set_experiment(experiment: str) -> None:
    """Makes ``experiment`` MLflow's active one (creating it if it does not exist).

    Raises:
        EvaluationError: MLflow refused or could not be reached (one line, no traceback).
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from modelledger.mlflow.evaluator import EvaluationError

    try:
        mlflow.set_experiment(experiment)
    except (MlflowException, OSError) as exc:
        message = " ".join(str(exc).split())
        raise EvaluationError(f"cannot use MLflow experiment {experiment!r}: {message}") from exc


def evaluate(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[str, typer.Argument(help="Model version (a number).")],
    data: Annotated[
        Path,
        typer.Option("--data", help="The hold-out data: a CSV or Parquet file.", exists=True, dir_okay=False),
    ],
    target: Annotated[str, typer.Option("--target", help="The target column of the data.")],
    model_type: Annotated[ModelType, typer.Option("--model-type", help="What kind of model it is.")],
    dataset_name: Annotated[
        str | None, typer.Option("--dataset-name", help="The data's name on the ledger (default: the file name).")
    ] = None,
    experiment: Annotated[
        str | None,
        typer.Option(
            "--experiment",
            help="MLflow experiment of the run (default: modelledger-evaluations as the stack's MLflow evaluator; "
            "MLflow's own default when MLFLOW_TRACKING_USERNAME names another user).",
        ),
    ] = None,
    rerun: Annotated[
        bool,
        typer.Option(
            "--rerun",
            help="Run anew even if this evaluation was run or recorded before (the ledger records one more "
            "evaluation; a rerun by the same organisation adds no pass under the same policy version; after the "
            "policy changes, evaluate again (the default does so)).",
        ),
    ] = False,
    org: Annotated[
        str | None,
        typer.Option(
            "--org",
            help="MSP id of the evaluator's organisation (required: a policy that asks for an independent "
            "evaluator refuses one of the registrant's organisation).",
        ),
    ] = None,
    role: Annotated[
        str, typer.Option("--role", help="Role user to act as. The chaincode lets only evaluators record.")
    ] = "evaluator",
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate a version on hold-out data with MLflow, after verifying it against the ledger; record the verdict.

    The anchored copy is verified in full first (bytes, signer, status): if it
    does not verify, nothing runs. The data's SHA-256 is registered as a
    dataset, MLflow's evaluation runs on the verified copy, its artefacts are
    stored write-once, and the ledger judges the metrics against the model's
    policy. Running the same command again does not count twice.
    """
    from modelledger.mlflow.evaluator import (
        EvaluationError,
        EvaluationInputError,
        parse_model_uri,
    )
    from modelledger.mlflow.evaluator import (
        evaluate as run_evaluation,
    )
    from modelledger.mlops.library_output import evaluate_log_path, library_output_to
    from modelledger.mlops.store.evaluation_artifacts import EvaluationStoreError
    from modelledger.mlops.store.s3_access import S3AccessError

    if not org:
        fail("--org is required: the MSP id of the evaluator's organisation (e.g. --org Org2MSP)", as_json, code=2)
    model_uri = f"models:/{name}/{version}"
    try:
        parse_model_uri(model_uri)
    except EvaluationInputError as exc:
        fail(str(exc), as_json, code=2)
    experiment = experiment or _mlflow_user(as_json)
    log_path = evaluate_log_path()
    try:
        # MLflow's run links, warnings and progress go to the log, not between the verdict's lines.
        with library_output_to(log_path):
            if experiment:
                _set_experiment(experiment)
            verdict = run_evaluation(
                model_uri,
                data,
                targets=target,
                model_type=model_type.value,
                org=org,
                role=role,
                profile=profile,
                dataset_name=dataset_name,
                resume=not rerun,
            )
    except EvaluationInputError as exc:
        fail(str(exc), as_json, code=2)
    except GatewayError as exc:
        fail(refusal_text(exc), as_json)
    except (EvaluationError, EvaluationStoreError, S3AccessError) as exc:
        fail(" ".join(str(exc).split()), as_json)
    if as_json:
        emit_json(verdict.to_json())
    else:
        show_verdict(verdict, console)
        # On stderr: in a pipe, stdout holds the verdict's fields only.
        err_console.print(f"[dim]MLflow's and the other libraries' output: {escape(str(log_path))}[/]", highlight=False)


def register(app: typer.Typer) -> None:
    """Adds ``evaluate`` to the ``model`` group."""
    app.command("evaluate")(evaluate)

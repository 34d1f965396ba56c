"""``modelledger model evaluate``: the verdict for people (80 columns, a pipe) and scripts, a refusal as one line
and exit 1, bad input as exit 2 with nothing run.

:func:`modelledger.mlflow.evaluate` is faked (its own tests are tests/unit/test_mlflow_evaluate.py); the refusals
are the SDK's typed errors and the evaluator's own.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import grpc
import pytest
from typer.testing import CliRunner

from modelledger.mlflow import evaluator
from modelledger.mlflow.hold_out import (
    RECORDED_BEFORE,
    EvaluationInputError,
    EvaluationVerdict,
    HoldOutIsTrainingData,
    ModelNotVerified,
)
from modelledger.mlops.cli.app import app
from modelledger.mlops.cli.evaluation import show_verdict
from modelledger.mlops.store.verification import Verification
from modelledger.sdk.gateway.errors import EndorseError, ErrorDetail
from modelledger.sdk.ledger.checks import Check
from modelledger.sdk.registry.client import refusal
from tests.cli_capture import pipe, strip_ansi, terminal, too_wide

SHA = hashlib.sha256(b"holdout").hexdigest()
DIGEST = hashlib.sha256(b"bundle").hexdigest()
TX = hashlib.sha256(b"tx").hexdigest()
LOCATION = f"s3://modelledger-anchored/evaluations/sha256/{DIGEST}.tar?versionId=0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
FAILURE = "metric accuracy_score = 0.91 is below the minimum 0.95"


def verdict(result: str = "PASSED", how: str = "fresh") -> EvaluationVerdict:
    return EvaluationVerdict(
        name="breast-cancer",
        version="3",
        result=result,
        failures=(FAILURE,) if result == "FAILED" else (),
        metrics={"accuracy_score": 0.91, "roc_auc": 0.9876543},
        policy_version=2 if result != "NO_POLICY" else None,
        tx_id=TX,
        run_id="0123456789abcdef0123456789abcdef",
        dataset_sha256=SHA,
        artifacts_digest=DIGEST,
        artifacts_location=LOCATION,
        evaluator="evaluator@Org2MSP",
        time="2026-12-08T01:00:00.123456789Z",
        how=how,
    )


@pytest.fixture
def holdout(tmp_path: Path) -> Path:
    path = tmp_path / "holdout.csv"
    path.write_text("a,target\n1,0\n")
    return path


@dataclasses.dataclass
class Fake:
    """What the fake evaluate was called with, and what it answers (a verdict, or an exception to raise)."""

    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = dataclasses.field(default_factory=list)
    answer: EvaluationVerdict | Exception = dataclasses.field(default_factory=verdict)
    mlflow_user: list[str | None] = dataclasses.field(default_factory=list)  # MLFLOW_TRACKING_USERNAME at each call

    def __call__(self, *args: Any, **kw: Any) -> EvaluationVerdict:
        self.calls.append((args, kw))
        self.mlflow_user.append(os.environ.get("MLFLOW_TRACKING_USERNAME"))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A state folder of the test's own: the command writes its libraries' log there."""
    monkeypatch.setenv("MODELLEDGER_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Fake:
    held = Fake()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")  # never reached: evaluate is faked
    monkeypatch.setattr(evaluator, "evaluate", held)
    return held


def run(holdout: Path, *extra: str) -> Any:
    argv = ["model", "evaluate", "breast-cancer", "3", "--data", str(holdout), "--target", "target"]
    org = [] if "--org" in extra else ["--org", "Org2MSP"]
    return CliRunner().invoke(app, [*argv, "--model-type", "classifier", *org, *extra])


def test_the_verdict_in_a_pipe_is_one_field_a_line(fake: Fake, holdout: Path) -> None:
    fake.answer = verdict("FAILED")
    result = run(holdout)
    assert result.exit_code == 0, result.output
    (args, kw) = fake.calls[0]
    assert args == ("models:/breast-cancer/3", holdout)
    assert (kw["org"], kw["role"], kw["targets"], kw["model_type"], kw["resume"]) == (
        "Org2MSP",
        "evaluator",
        "target",
        "classifier",
        True,
    )
    lines = result.stdout.splitlines()
    assert "result\tfailed" in lines and f"failure\t{FAILURE}" in lines and "policy\tversion 2" in lines
    assert "metric accuracy_score\t0.91" in lines and "metric roc_auc\t0.9876543" in lines
    assert f"hold-out sha256\t{SHA}" in lines and f"artefacts\t{LOCATION}" in lines
    assert all("\t" in line for line in lines)  # nothing but fields


def test_mlflows_own_output_goes_to_the_log_not_between_the_verdicts_lines(
    fake: Fake, holdout: Path, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging
    import warnings

    answer = fake.answer

    def noisy(*args: Any, **kw: Any) -> Any:
        logging.getLogger("mlflow.models.evaluation").warning("SHAP or matplotlib package is not installed")
        warnings.warn("Hint: Inferred schema contains integer column(s)", UserWarning, stacklevel=1)
        return answer

    monkeypatch.setattr(evaluator, "evaluate", noisy)
    result = run(holdout)
    assert result.exit_code == 0, result.output
    assert "SHAP" not in result.output and "Inferred schema" not in result.output
    log = (state / "evaluator" / "evaluate.log").read_text()
    assert "SHAP or matplotlib" in log and "Inferred schema" in log
    assert oct((state / "evaluator").stat().st_mode & 0o777) == "0o700"


def test_the_verdict_fits_80_columns_with_every_identifier_whole() -> None:
    con, out = terminal(80)
    show_verdict(verdict("FAILED", RECORDED_BEFORE), con)
    text = strip_ansi(out.getvalue())
    assert not too_wide(text, 80)
    for whole in (SHA, DIGEST, TX, LOCATION, "evaluator@Org2MSP"):
        assert whole in text
    assert "failed" in text and "nothing was run or recorded" in " ".join(text.split())
    con, out = pipe()
    show_verdict(verdict("NO_POLICY", RECORDED_BEFORE), con)
    lines = out.getvalue().splitlines()
    assert "result\tno policy" in lines and "policy\tnone in force" in lines
    assert lines[-1].startswith("# an earlier call had recorded this evaluation")


def test_json_is_the_verdict_and_org_role_and_rerun_are_passed_on(fake: Fake, holdout: Path) -> None:
    result = run(holdout, "--org", "Org2MSP", "--role", "auditor", "--rerun", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == verdict().to_json()
    kw = fake.calls[0][1]
    assert (kw["org"], kw["role"], kw["resume"]) == ("Org2MSP", "auditor", False)


def _not_verified() -> ModelNotVerified:
    checks = [Check("bytes", False, "changed: model.pkl"), Check("signature", False, "no signature\nbundle")]
    return ModelNotVerified(Verification("s3://a/models/x/index.json", "breast-cancer", "3", checks))


def _refused() -> Exception:
    error = EndorseError(
        "f" * 64,
        grpc.StatusCode.ABORTED,
        "failed to endorse transaction, see attached details for more info",
        (
            ErrorDetail(
                "peer0.org1.example.com:7051",
                "Org1MSP",
                'chaincode response 500, CONFLICT: model "breast-cancer" version "3" is REVOKED',
            ),
        ),
    )
    typed = refusal(error)
    assert typed is not None
    return typed


@pytest.mark.parametrize(
    ("raised", "printed"),
    [
        (_refused, 'refused: model "breast-cancer" version "3" is REVOKED'),
        (
            _not_verified,
            "s3://a/models/x/index.json: NOT verified: bytes: changed: model.pkl; signature: no signature bundle",
        ),
        (lambda: HoldOutIsTrainingData("dataset x is a training dataset of m version 3 (train)"), None),
    ],
)
def test_a_refusal_is_one_line_and_exit_1(fake: Fake, holdout: Path, raised: Any, printed: str | None) -> None:
    error = raised()
    fake.answer = error
    result = run(holdout)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == f"error: {printed or error}\n"
    as_json = run(holdout, "--json")
    assert as_json.exit_code == 1 and json.loads(as_json.stdout) == {"error": printed or str(error)}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": "latest"}, "not a registered version"),
        ({"--model-type": "llm"}, "'llm' is not one of"),
        ({"--data": "/no/such/file.csv"}, "does not exist"),
        ({"--data": None}, "Missing option '--data'"),
        ({"--org": None}, "--org is required: the MSP id of the evaluator's organisation"),
    ],
)
def test_bad_input_is_exit_2_and_runs_nothing(
    fake: Fake, holdout: Path, change: dict[str, str | None], message: str
) -> None:
    options = {"--data": str(holdout), "--target": "t", "--model-type": "classifier", "--org": "Org2MSP"}
    options.update({k: v for k, v in change.items() if k.startswith("--")})  # type: ignore[misc]
    argv = ["model", "evaluate", "m", change.get("version") or "3"]
    argv += [part for k, v in options.items() if v is not None for part in (k, v)]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.replace("│", " ").split())
    assert fake.calls == []


def test_an_input_the_evaluator_refuses_is_exit_2(fake: Fake, holdout: Path) -> None:
    fake.answer = EvaluationInputError("the hold-out data has no column 'target' (columns: a)")
    result = run(holdout)
    assert result.exit_code == 2 and result.stderr == "error: the hold-out data has no column 'target' (columns: a)\n"


def test_metrics_are_printed_as_the_ledger_writes_them_in_failures(fake: Fake, holdout: Path) -> None:
    # format(v, "g") printed 0.8999999 as 0.9, beside the ledger's "0.8999999 is below the minimum 0.9".
    failure = "metric accuracy_score = 0.8999999 is below the minimum 0.9"
    fake.answer = dataclasses.replace(
        verdict("FAILED"), metrics={"accuracy_score": 0.8999999, "n": 1e21}, failures=(failure,)
    )
    lines = run(holdout).stdout.splitlines()
    assert f"failure\t{failure}" in lines and "metric accuracy_score\t0.8999999" in lines
    assert "metric n\t1e+21" in lines  # Go's strconv.FormatFloat(v, 'g', -1, 64)


@pytest.fixture
def stack_mlflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A state folder with the stack's MLflow credential files, no MLflow user in the environment; the experiments
    the command makes active are recorded (MLflow itself is never reached)."""
    import mlflow

    from modelledger.mlops.servers import tracking
    from modelledger.mlops.servers.tracking_auth import ensure_user_files
    from modelledger.runtime.settings import MlflowSettings

    monkeypatch.setenv("MODELLEDGER_STATE_DIR", str(tmp_path / "state"))
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.setenv(name, "")  # recorded, so that what the command sets is undone after the test
        monkeypatch.delenv(name)
    ensure_user_files(MlflowSettings.from_env())
    experiments: list[str] = []
    monkeypatch.setattr(mlflow, "set_experiment", experiments.append)
    monkeypatch.setattr(tracking, "server_health", lambda settings: (True, "OK"))
    return experiments


def test_the_evaluation_runs_as_the_stacks_mlflow_evaluator_in_its_experiment(
    fake: Fake, holdout: Path, stack_mlflow: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelledger.mlops.bridge.mlflow_credentials import EVALUATIONS_EXPERIMENT, MlflowUser
    from modelledger.runtime.settings import MlflowSettings

    result = run(holdout)
    assert result.exit_code == 0, result.output
    assert fake.mlflow_user == ["evaluator"] and stack_mlflow == [EVALUATIONS_EXPERIMENT]
    assert os.environ["MLFLOW_TRACKING_URI"] == MlflowSettings.from_env().tracking_uri
    assert run(holdout, "--experiment", "mine").exit_code == 0 and stack_mlflow[-1] == "mine"
    # The evaluator's own account: not the data scientist's, a private file of the state folder.
    env_file = MlflowSettings.from_env().mlflow_dir / "users" / "evaluator.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600 and not MlflowUser.EVALUATOR.is_admin


def test_an_mlflow_user_or_server_of_the_environment_is_used_as_it_is(
    fake: Fake, holdout: Path, stack_mlflow: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    assert run(holdout).exit_code == 0 and fake.mlflow_user == ["alice"] and stack_mlflow == []
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://mlflow.elsewhere.example")  # never sent the evaluator's password
    assert run(holdout).exit_code == 0 and fake.mlflow_user[-1] is None and stack_mlflow == []


def test_mlflow_refusing_the_experiment_is_one_line_and_exit_1(
    fake: Fake, holdout: Path, stack_mlflow: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow
    from mlflow.exceptions import MlflowException

    def refuse(name: str) -> None:
        raise MlflowException("API request to endpoint /api/2.0/mlflow/experiments/get-by-name failed\nwith 403")

    monkeypatch.setattr(mlflow, "set_experiment", refuse)
    result = run(holdout)
    assert result.exit_code == 1 and fake.calls == [] and "Traceback" not in result.output
    assert result.stderr == (
        "error: cannot use MLflow experiment 'modelledger-evaluations': API request to endpoint "
        "/api/2.0/mlflow/experiments/get-by-name failed with 403\n"
    )


def test_a_stack_server_that_does_not_answer_is_one_line_at_once(
    fake: Fake, holdout: Path, stack_mlflow: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # MLflow's own client retries for about four minutes before it gives up.
    from modelledger.mlops.servers import tracking

    monkeypatch.setattr(tracking, "server_health", lambda settings: (False, "Connection refused"))
    monkeypatch.setenv("MODELLEDGER_MLFLOW_PORT", "17951")
    result = run(holdout)
    assert result.exit_code == 1 and fake.calls == [] and stack_mlflow == []
    assert result.stderr == (
        "error: the stack's MLflow server at http://127.0.0.1:17951 does not answer (Connection refused): run `make up`\n"
    )


def test_a_verdict_evaluated_again_after_the_policy_changed_says_why() -> None:
    con, out = pipe()
    show_verdict(verdict("PASSED", "rerun-policy-changed"), con)
    lines = out.getvalue().splitlines()
    assert lines[-1].startswith("# an earlier call had recorded this evaluation under another policy version")
    assert "evaluated again in a new run" in lines[-1]


def test_the_rerun_help_says_a_rerun_adds_no_pass_under_the_same_policy_version() -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["model", "evaluate", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    text = " ".join(strip_ansi(result.output).replace("│", " ").split())
    assert "adds no pass under the same policy version" in text and "the default does so" in text

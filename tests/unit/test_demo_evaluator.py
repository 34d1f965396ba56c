"""The demo's evaluations run as the stack's MLflow ``evaluator`` user in its experiment, never as the data
scientist whose model they judge (MLflow would credit the run to the developer and give the evaluator the
developer's write access)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from modelledger.mlops import demo
from modelledger.mlops.bridge.mlflow_credentials import EVALUATIONS_EXPERIMENT, MlflowUser, act_as
from modelledger.mlops.servers.tracking_auth import ensure_user_files
from modelledger.runtime.settings import MlflowSettings

VERDICT = SimpleNamespace(
    metrics={"accuracy_score": 0.95, "roc_auc": 0.99},
    passed=True,
    result="PASSED",
    evaluator="evaluator@Org2MSP",
    policy_version=1,
    tx_id="t" * 64,
    failures=(),
)


class _Split:
    hold_out = object()


@pytest.fixture
def seen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str | None, list[str]]]:
    """The MLflow user at each evaluate call, with the experiments made active before it."""
    import mlflow

    import modelledger.mlflow

    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.setenv(name, "")  # recorded, so that what the demo sets is undone after the test
        monkeypatch.delenv(name)
    experiments: list[str] = []
    calls: list[tuple[str | None, list[str]]] = []

    def evaluate(*args: Any, **kw: Any) -> SimpleNamespace:
        calls.append((os.environ.get("MLFLOW_TRACKING_USERNAME"), list(experiments)))
        return VERDICT

    monkeypatch.setattr(mlflow, "set_experiment", experiments.append)
    monkeypatch.setattr(modelledger.mlflow, "evaluate", evaluate)
    return calls


def test_the_demos_evaluation_runs_as_the_mlflow_evaluator_then_the_scientist_again(
    tmp_path: Path, seen: list[tuple[str | None, list[str]]]
) -> None:
    settings = MlflowSettings(state_dir=tmp_path)
    ensure_user_files(settings)
    act_as(settings, MlflowUser.SCIENTIST)  # as the demo's _run does
    demo._evaluate(Console(file=io.StringIO()), _Split(), "m", "1", settings)
    assert seen == [("evaluator", [EVALUATIONS_EXPERIMENT])]
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == "data-scientist"  # the next training is the scientist's again


def test_an_mlflow_user_of_the_environment_evaluates_as_it_is(seen: list[tuple[str | None, list[str]]]) -> None:
    os.environ["MLFLOW_TRACKING_USERNAME"] = "alice"
    demo._evaluate(Console(file=io.StringIO()), _Split(), "m", "1", None)
    assert seen == [("alice", [])]


def test_a_stack_without_the_evaluator_user_is_a_demo_error(tmp_path: Path, seen: list[Any]) -> None:
    with pytest.raises(demo.DemoError, match="no MLflow credentials for evaluator"):
        demo._evaluate(Console(file=io.StringIO()), _Split(), "m", "1", MlflowSettings(state_dir=tmp_path))
    assert seen == []

"""The demo's console tells only its story: the libraries' logs, warnings and run links go to its log file."""

from __future__ import annotations

import logging
import stat
import warnings
from pathlib import Path

import pytest

from modelledger.mlops.library_output import demo_log_path, library_output_to


def _finished_run(run_id: str) -> object:
    from mlflow.entities import Run, RunData, RunInfo

    info = RunInfo(
        run_id=run_id,
        experiment_id="1",
        user_id="data-scientist",
        status="FINISHED",
        start_time=0,
        end_time=None,
        lifecycle_stage="active",
        run_name="xgb-breast-cancer",
    )
    return Run(run_info=info, run_data=RunData())


def _mlflow_noise(monkeypatch: pytest.MonkeyPatch) -> None:
    """What MLflow and the others print during the demo: log lines, a warning, the run links."""
    from mlflow.store.tracking.rest_store import RestStore
    from mlflow.tracking._tracking_service.client import TrackingServiceClient
    from mlflow.utils.logging_utils import eprint

    logging.getLogger("mlflow.store.model_registry.abstract_store").info("Waiting up to 300 seconds for model version")
    logging.getLogger("urllib3.connectionpool").warning("Retrying after connection broken")
    eprint("Successfully registered model 'breast-cancer-xgb'.")
    warnings.warn("Hint: Inferred schema contains integer column(s)", UserWarning, stacklevel=1)
    # A run ending on a tracking server: MLflow writes "🏃 View run … at: http://…" to stdout itself.
    monkeypatch.setattr(RestStore, "get_run", lambda self, run_id: _finished_run(run_id))
    monkeypatch.setattr(RestStore, "update_run_info", lambda self, *a, **k: None)
    TrackingServiceClient("http://127.0.0.1:9").set_terminated("0123456789abcdef")


def test_library_logs_warnings_and_run_links_go_to_the_file_not_the_console(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", raising=False)
    log = tmp_path / "state" / "demo" / "demo.log"
    with library_output_to(log):
        _mlflow_noise(monkeypatch)
        print("1. A data scientist trains, logs and registers a model")
    out, err = capfd.readouterr()
    assert out == "1. A data scientist trains, logs and registers a model\n"  # the demo's own line, alone
    assert err == ""
    text = log.read_text()
    assert "INFO mlflow.store.model_registry.abstract_store: Waiting up to 300 seconds" in text
    assert "WARNING urllib3.connectionpool: Retrying" in text
    assert "INFO mlflow.events: Successfully registered model 'breast-cancer-xgb'." in text
    assert "UserWarning: Hint: Inferred schema" in text
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700


def test_without_the_demo_setup_mlflow_speaks_on_the_console(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: the same calls outside :func:`library_output_to` reach the terminal."""
    monkeypatch.delenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", raising=False)
    import mlflow  # noqa: F401  (its import gives its loggers their stderr handler)

    with pytest.warns(UserWarning, match="Inferred schema"):
        _mlflow_noise(monkeypatch)
    out, err = capfd.readouterr()
    assert "View run xgb-breast-cancer at: http://127.0.0.1:9/#/experiments/1/runs/0123456789abcdef" in out
    assert "Waiting up to 300 seconds" in err
    assert "Successfully registered model 'breast-cancer-xgb'." in err


def test_the_setup_is_undone_and_errors_still_raise(tmp_path: Path) -> None:
    import mlflow  # noqa: F401

    mlflow_logger = logging.getLogger("mlflow")
    before = (logging.getLogger().handlers[:], mlflow_logger.handlers[:], mlflow_logger.propagate)
    with pytest.raises(RuntimeError, match="a real error"), library_output_to(tmp_path / "demo.log"):
        raise RuntimeError("a real error")
    assert (logging.getLogger().handlers, mlflow_logger.handlers, mlflow_logger.propagate) == before


def test_the_log_lives_in_the_state_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELLEDGER_STATE_DIR", str(tmp_path))
    assert demo_log_path() == tmp_path / "demo" / "demo.log"


def test_mlflow_event_lines_become_whole_records(tmp_path: Path) -> None:
    from mlflow.utils.logging_utils import eprint

    log = tmp_path / "demo.log"
    with library_output_to(log):
        eprint("Created version '1' of model", end="")
        eprint(" 'breast-cancer-xgb'.", end="")
    assert "INFO mlflow.events: Created version '1' of model 'breast-cancer-xgb'.\n" in log.read_text()


def test_make_clean_removes_the_demo_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelledger.mlops.library_output import remove_demo_log

    monkeypatch.setenv("MODELLEDGER_STATE_DIR", str(tmp_path))
    assert remove_demo_log() is None
    with library_output_to(demo_log_path()):
        logging.getLogger("mlflow").info("a line")
    assert remove_demo_log() == tmp_path / "demo" / "demo.log"
    assert not (tmp_path / "demo").exists()


@pytest.mark.parametrize("outcome", ["fails", "raises"])
def test_the_log_path_is_printed_at_the_end_also_on_failure(
    outcome: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from rich.console import Console

    from modelledger.mlops import demo

    def story(console: Console) -> int:
        console.print("demo failed: the bridge could not anchor it")
        if outcome == "raises":
            raise RuntimeError("an unexpected error")
        return 1

    monkeypatch.setenv("MODELLEDGER_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(demo, "_run", story)
    out = io.StringIO()
    console = Console(file=out, width=200)
    if outcome == "raises":
        with pytest.raises(RuntimeError, match="an unexpected error"):
            demo.run(console)
    else:
        assert demo.run(console) == 1
    lines = out.getvalue().splitlines()
    assert lines[0] == "demo failed: the bridge could not anchor it"
    assert lines[-1].endswith(str(tmp_path / "demo" / "demo.log"))

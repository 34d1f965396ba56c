"""Provenance read from MLflow objects and the model folder."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace as NS

import pytest

from modelledger.mlops.bridge.provenance import (
    collect,
    datasets_of,
    framework_of,
    ledger_datasets,
    ledger_name,
    libraries_of,
)
from modelledger.sdk.registry.limits import LIMITS
from modelledger.sdk.registry.names import InvalidNameError

SHA = "ab" * 32


def test_framework_and_pinned_libraries_come_from_the_model_folder(tmp_path: Path) -> None:
    (tmp_path / "MLmodel").write_text(
        "flavors:\n  python_function: {python_version: 3.11.7}\n  xgboost: {code: null, xgb_version: 3.2.0}\n"
    )
    (tmp_path / "requirements.txt").write_text(
        "mlflow==3.17.2\nxgboost==3.2.0\n-r other.txt\nnumpy>=2\nscikit-learn[extra]==1.9.1\n"
    )
    assert (framework_of(tmp_path).name, framework_of(tmp_path).version) == ("xgboost", "3.2.0")
    assert [(lib.name, lib.version) for lib in libraries_of(tmp_path)] == [
        ("mlflow", "3.17.2"),
        ("scikit-learn", "1.9.1"),
        ("xgboost", "3.2.0"),
    ]
    assert framework_of(tmp_path / "missing").name == "unknown"


def _input(name: str, tags: dict[str, str], source: str = '{"uri": "x"}'):
    return NS(dataset=NS(name=name, source=source), tags=[NS(key=k, value=v) for k, v in tags.items()])


def test_only_inputs_with_a_full_content_digest_become_datasets() -> None:
    run = NS(
        inputs=NS(
            dataset_inputs=[
                _input("train", {"modelledger.sha256": SHA, "modelledger.source": "s3://data/train.parquet"}),
                _input("sampled", {"mlflow.data.context": "training"}),
                _input("bad", {"modelledger.sha256": "XYZ"}),
                _input("again", {"modelledger.sha256": SHA}),
            ]
        )
    )
    refs = datasets_of(run)
    assert [(r.name, r.sha256, r.source) for r in refs] == [("train", SHA, "s3://data/train.parquet")]


def test_collect_merges_run_and_logged_model_and_drops_non_finite_metrics(tmp_path: Path) -> None:
    mv = NS(name="m", version="1", run_id=None, source="models:/m-1", user_id="")
    run = NS(
        info=NS(run_id="r1", user_id="alice"),
        data=NS(params={"depth": "3", "lr": "0.1"}, metrics={"auc": 0.9, "loss": float("nan")}),
        inputs=NS(dataset_inputs=[]),
    )
    logged = NS(model_id="m-1", params={"lr": "0.2"}, metrics=[NS(key="auc", value=0.95)])
    p = collect(mv, run, logged, tmp_path)
    assert (p.mlflow.model_id, p.mlflow.run_id, p.mlflow.source, p.mlflow.user) == ("m-1", "r1", "models:/m-1", "alice")
    assert [(x.key, x.value) for x in p.params] == [("depth", "3"), ("lr", "0.2")]
    assert [(x.key, x.value) for x in p.metrics] == [("auc", 0.95)]


def test_provenance_beyond_the_ledgers_limits_is_left_out_and_said(tmp_path: Path) -> None:
    mv = NS(name="m", version="1", run_id="r", source="runs:/r/model", user_id="u")
    params = {f"p{i:04d}": "v" for i in range(1005)} | {"huge": "x" * 6001}
    run = NS(info=NS(run_id="r", user_id="u"), data=NS(params=params, metrics={}), inputs=NS(dataset_inputs=[]))
    p = collect(mv, run, None, tmp_path)
    assert len(p.params) == 1000 and "huge" not in {x.key for x in p.params}
    assert p.notes == ("1 params too long for the ledger left out", "5 params beyond the first 1000 left out")


def test_a_dataset_whose_source_the_ledger_refuses_is_left_out_and_said() -> None:
    """The chaincode refuses a dataset source over LIMITS.uri_chars (2048): such a dataset is not referenced."""
    longest, too_long = "s3://d/" + "x" * (LIMITS.uri_chars - 7), "s3://d/" + "y" * (LIMITS.uri_chars - 6)
    run = NS(
        inputs=NS(
            dataset_inputs=[
                _input("fits", {"modelledger.sha256": "a" * 64}, source=longest),
                _input("long", {"modelledger.sha256": "b" * 64}, source=too_long),
            ]
        )
    )
    notes: list[str] = []
    assert [r.name for r in ledger_datasets(run, notes)] == ["fits"]
    assert notes == ["1 datasets too long for the ledger left out"]


def test_the_framework_is_never_blank(tmp_path: Path) -> None:
    assert (framework_of(tmp_path).name, framework_of(tmp_path).version) == ("unknown", "unknown")
    (tmp_path / "MLmodel").write_text("flavors:\n  python_function: {loader_module: plain, python_version: 3.11.7}\n")
    assert (framework_of(tmp_path).name, framework_of(tmp_path).version) == ("python_function", "3.11.7")
    (tmp_path / "MLmodel").write_text("flavors:\n  custom: {}\n")
    assert (framework_of(tmp_path).name, framework_of(tmp_path).version) == ("custom", "unknown")


def test_a_name_or_version_outside_the_ledgers_class_has_no_provenance(tmp_path: Path) -> None:
    assert ledger_name(NS(name="fraud", version=3)) == ("fraud", "3")
    for name, version, error in [
        ("team/fraud", "1", "name: must not contain '/' or ':'"),
        ("fraud\u2066", "1", "name: must not contain Unicode format characters"),
        ("fraud", "12345678901", "version: must be a positive decimal integer"),
    ]:
        mv = NS(name=name, version=version, run_id="r", source="runs:/r/model", user_id="u")
        with pytest.raises(InvalidNameError, match="^" + error.replace("(", r"\(")):
            collect(mv, None, None, tmp_path)

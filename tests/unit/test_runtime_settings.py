"""The bridge reads its MODELLEDGER_* variables through runtime/settings.py, the one module that reads them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from modelledger.runtime.settings import (
    BRIDGE_FAULT_ENV,
    WEBHOOK_TARGET_ENV,
    bridge_fault_point,
    webhook_target,
)

ROOT = Path(__file__).resolve().parents[2]


def test_the_fault_point_and_the_webhook_target_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BRIDGE_FAULT_ENV, raising=False)
    monkeypatch.delenv(WEBHOOK_TARGET_ENV, raising=False)
    assert bridge_fault_point() == "" and webhook_target() == ""
    monkeypatch.setenv(BRIDGE_FAULT_ENV, "after-submit")
    monkeypatch.setenv(WEBHOOK_TARGET_ENV, "http://127.0.0.1:7960/webhooks/mlflow")
    assert bridge_fault_point() == "after-submit"
    assert webhook_target() == "http://127.0.0.1:7960/webhooks/mlflow"


def named_variables(files: dict[str, str]) -> list[str]:
    """Every string literal naming a MODELLEDGER_* variable."""
    return [
        f"{name}:{node.lineno} names {node.value}"
        for name, source in files.items()
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("MODELLEDGER_")
    ]


def test_the_bridge_names_no_modelledger_variable_itself() -> None:
    files = {str(p.relative_to(ROOT)): p.read_text() for p in sorted((ROOT / "mlops" / "bridge").rglob("*.py"))}
    assert named_variables(files) == []


def test_a_planted_variable_read_is_found() -> None:
    planted = 'import os\nFAULT = os.environ.get("MODELLEDGER_BRIDGE_FAULT")\n'
    assert named_variables({"mlops/bridge/anchor.py": planted}) == [
        "mlops/bridge/anchor.py:2 names MODELLEDGER_BRIDGE_FAULT"
    ]

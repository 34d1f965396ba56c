"""Every MODELLEDGER_* variable is read in runtime/settings.py, the one module that reads them."""

from __future__ import annotations

import ast
import re
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
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and re.fullmatch(r"MODELLEDGER_[A-Z0-9_]+", node.value)
    ]


# Where a variable's name may be spelt: the settings, and the typed reads they use.
READERS = {"runtime/settings.py", "runtime/environment.py"}


def test_no_module_but_the_settings_names_a_modelledger_variable() -> None:
    files = {
        str(p.relative_to(ROOT)): p.read_text()
        for part in ("network", "runtime", "sdk", "mlops")
        for p in sorted((ROOT / part).rglob("*.py"))
        if str(p.relative_to(ROOT)) not in READERS
    }
    assert len(files) > 70
    assert named_variables(files) == []


def test_a_planted_variable_read_is_found() -> None:
    planted = 'import os\nFAULT = os.environ.get("MODELLEDGER_BRIDGE_FAULT")\nPASS = ("MODELLEDGER_", "PATH")\n'
    assert named_variables({"network/nodes.py": planted}) == ["network/nodes.py:2 names MODELLEDGER_BRIDGE_FAULT"]

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


# A variable's name: ``MODELLEDGER_`` then an upper-case letter, or a part filled in at run time (``{…}``, ``%s``).
VARIABLE = re.compile(r"MODELLEDGER_(?=[A-Z{%])(?:[A-Z0-9_]|\{[^}]*\}|%\w)+")


def _spelt(node: ast.expr) -> str:
    """The text a string expression spells: constants as they are, every run-time part as ``{}``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_spelt(v) if isinstance(v, ast.Constant) else "{}" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _spelt(node.left) + _spelt(node.right)
    return "{}"


def _docstrings(tree: ast.Module) -> set[int]:
    """The ids of the docstring nodes (documentation may name a variable; code may not)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def named_variables(files: dict[str, str]) -> list[str]:
    """Every string expression of code that spells a MODELLEDGER_* variable, whole or in parts: a literal, a
    constant part of an f-string (``f"MODELLEDGER_{name}"``) or a concatenation (``"MODELLEDGER_" + "PORT"``), as
    ``<file>:<line> names <variable>``. Docstrings are documentation and are not counted.
    """
    out = []
    for name, source in files.items():
        tree = ast.parse(source)
        skipped = _docstrings(tree)
        for node in ast.walk(tree):  # an operand of a concatenation or part of an f-string is read with its whole
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
                skipped |= {id(node.left), id(node.right)}
            elif isinstance(node, ast.JoinedStr):
                skipped |= {id(v) for v in node.values}
        found = {
            (node.lineno, m.group(0))
            for node in ast.walk(tree)
            if isinstance(node, (ast.Constant, ast.JoinedStr, ast.BinOp)) and id(node) not in skipped
            for m in VARIABLE.finditer(_spelt(node))
        }
        out += [f"{name}:{line} names {variable}" for line, variable in sorted(found)]
    return out


# Where a variable's name may be spelt: the settings, and the typed reads they use.
READERS = {"runtime/settings.py", "runtime/environment.py"}
PRODUCTION = ("network", "runtime", "sdk", "mlops")

def test_no_module_but_the_settings_names_a_modelledger_variable() -> None:
    files = {
        str(p.relative_to(ROOT)): p.read_text()
        for part in PRODUCTION
        for p in sorted((ROOT / part).rglob("*.py"))
        if str(p.relative_to(ROOT)) not in READERS
    }
    assert len(files) > 70
    assert named_variables(files) == []


@pytest.mark.parametrize(
    ("planted", "expected"),
    [
        (
            'import os\nFAULT = os.environ.get("MODELLEDGER_BRIDGE_FAULT")\nPASS = ("MODELLEDGER_", "PATH")\n',
            ["network/nodes.py:2 names MODELLEDGER_BRIDGE_FAULT"],
        ),
        ('def f(name):\n    return os.environ[f"MODELLEDGER_{name}"]\n', ["network/nodes.py:2 names MODELLEDGER_{}"]),
        ('PORT = "MODELLEDGER_" + "PORT"\n', ["network/nodes.py:1 names MODELLEDGER_PORT"]),
        ('PORT = "MODELLEDGER_" + "S3" + "_PORT"\n', ["network/nodes.py:1 names MODELLEDGER_S3_PORT"]),
        ('X = "MODELLEDGER_" + name\n', ["network/nodes.py:1 names MODELLEDGER_{}"]),
        ('X = "MODELLEDGER_%s" % name\n', ["network/nodes.py:1 names MODELLEDGER_%s"]),
        ('raise ValueError(f"set MODELLEDGER_S3_PORT to a free port, {port} is taken")\n', ["network/nodes.py:1 names MODELLEDGER_S3_PORT"]),
        ('"""Reads MODELLEDGER_STATE_DIR (documented)."""\nX = "MODELLEDGER_* variables"\n', []),
    ],
)
def test_a_planted_variable_read_is_found(planted: str, expected: list[str]) -> None:
    assert named_variables({"network/nodes.py": planted}) == expected


# ---------------------------------------------------------------------------- the tables of variables
SETTINGS = ROOT / "runtime" / "settings.py"
# Set by the tests only (crash tests; the tracking server's environment): not in the README's table.
TEST_ONLY = {BRIDGE_FAULT_ENV, WEBHOOK_TARGET_ENV}
NAME = re.compile(r"MODELLEDGER_[A-Z][A-Z0-9_]*")


def read_variables(source: str) -> set[str]:
    """The variables a settings module reads: the names given to its ``env_*`` reads (literally or through a module
    constant) and the values of its ``*_ENV`` constants.
    """
    tree = ast.parse(source)
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    out = {value for name, value in constants.items() if name.endswith("_ENV")}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id.startswith("env_")
            and node.args
        ):
            first = node.args[0]
            if isinstance(first, ast.Constant):
                out.add(first.value)
            elif isinstance(first, ast.Name):
                out.add(constants.get(first.id, first.id))
    return out


def docstring_table(source: str) -> set[str]:
    """The variables the rows of the module docstring's table name (``| MODELLEDGER_X | default |``)."""
    rows = [line for line in (ast.get_docstring(ast.parse(source)) or "").splitlines() if line.startswith("|")]
    return {m.group(0) for row in rows for m in NAME.finditer(row.split("|")[1])}


def readme_settings_table(readme: str) -> set[str]:
    """The variables the README's Settings table names in its first column; ``MODELLEDGER_BRIDGE_FRESHNESS`` /
    ``_MAX_BODY`` is read as ``MODELLEDGER_BRIDGE_FRESHNESS`` and ``MODELLEDGER_BRIDGE_MAX_BODY``.
    """
    section = readme.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    out = set()
    for row in (line for line in section.splitlines() if line.startswith("|")):
        prefix = ""
        for word in re.findall(r"`(MODELLEDGER_[A-Z0-9_]+|_[A-Z0-9_]+)`", row.split("|")[1]):
            if word.startswith("MODELLEDGER_"):
                prefix = word.rsplit("_", 1)[0] if word.count("_") > 1 else word
                out.add(word)
            else:
                out.add(prefix + word)
    return out


def test_the_settings_docstring_lists_exactly_the_variables_it_reads() -> None:
    source = SETTINGS.read_text()
    read = read_variables(source)
    assert {"MODELLEDGER_STATE_DIR", "MODELLEDGER_BRIDGE_RETENTION_DAYS", BRIDGE_FAULT_ENV} <= read
    assert all(NAME.fullmatch(v) for v in read), sorted(read)
    assert docstring_table(source) == read


def test_the_readme_lists_every_variable_but_the_test_only_ones() -> None:
    read = read_variables(SETTINGS.read_text())
    assert read >= TEST_ONLY
    assert readme_settings_table((ROOT / "README.md").read_text()) == read - TEST_ONLY


def test_a_variable_missing_from_a_table_is_caught() -> None:
    source = (
        '"""Settings.\n\n| variable | default |\n|---|---|\n| MODELLEDGER_STATE_DIR | .state |\n| MODELLEDGER_GONE | x |\n"""\n'
        'PORT_ENV = "MODELLEDGER_PORT"\n'
        'def f():\n    return env_path("MODELLEDGER_STATE_DIR", x), env_number(PORT_ENV, 1, int), env_str("MODELLEDGER_ORG", "")\n'
    )
    assert read_variables(source) == {"MODELLEDGER_STATE_DIR", "MODELLEDGER_PORT", "MODELLEDGER_ORG"}
    assert docstring_table(source) == {"MODELLEDGER_STATE_DIR", "MODELLEDGER_GONE"}
    readme = (
        "\n## Settings\n\n| variable | default | meaning |\n|---|---|---|\n"
        "| `MODELLEDGER_BRIDGE_FRESHNESS` / `_MAX_BODY` | `300` / 256 KiB | `MODELLEDGER_S3_PORT` in prose |\n"
        "| `MODELLEDGER_PORT` | `7000` | x |\n\n## Layout\n| `MODELLEDGER_ORG` | x |\n"
    )
    assert readme_settings_table(readme) == {"MODELLEDGER_BRIDGE_FRESHNESS", "MODELLEDGER_BRIDGE_MAX_BODY", "MODELLEDGER_PORT"}

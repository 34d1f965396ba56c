"""Dependencies point one way: the rules of docs/architecture.md, checked on the imports of every module.

Imports are read from the source (top-level and inside functions), so a rule
is broken by any ``import``/``from ... import`` of a forbidden package,
wherever it is written. Each rule is proved to bite by a planted violation.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Folder of each top-level part of the ``modelledger`` namespace (pyproject.toml maps them).
PARTS = {"modelledger.sdk": ROOT / "sdk", "modelledger.mlops": ROOT / "mlops", "modelledger.network": ROOT / "network"}

# The store is a library over a boto3 client: no server, bridge, CLI or Fabric orchestration.
STORE_EXEMPT: set[str] = set()
STORE_MAY_USE = ("modelledger.mlops.store", "modelledger.sdk", "modelledger.runtime")


def imported_modules(source: str) -> set[str]:
    """Every module a source file imports, absolute names (relative imports are not used in this project)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def ours(modules: set[str]) -> set[str]:
    return {m for m in modules if m == "modelledger" or m.startswith("modelledger.")}


def sdk_violations(files: dict[str, str]) -> list[str]:
    """The SDK knows nothing of MLflow or of the rest of ModelLedger."""
    out = []
    for name, source in files.items():
        mods = imported_modules(source)
        out += [f"{name} imports {m}" for m in sorted(ours(mods)) if not m.startswith("modelledger.sdk")]
        out += [f"{name} imports {m}" for m in sorted(mods) if m == "mlflow" or m.startswith("mlflow.")]
    return out


def store_violations(files: dict[str, str]) -> list[str]:
    out = []
    for name, source in files.items():
        if Path(name).name in STORE_EXEMPT:
            continue
        bad = [
            m
            for m in ours(imported_modules(source))
            if not m.startswith(STORE_MAY_USE) or m in {f"modelledger.mlops.store.{Path(e).stem}" for e in STORE_EXEMPT}
        ]
        out += [f"{name} imports {m}" for m in sorted(bad)]
    return out


def sources(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(ROOT)): p.read_text() for p in sorted(folder.rglob("*.py"))}


def test_the_sdk_imports_nothing_outside_the_sdk() -> None:
    assert sdk_violations(sources(PARTS["modelledger.sdk"])) == []


def test_the_store_imports_no_server_bridge_cli_or_fabric_orchestration() -> None:
    assert store_violations(sources(ROOT / "mlops" / "store")) == []


@pytest.mark.parametrize(
    ("rule", "planted", "named"),
    [
        (sdk_violations, "from modelledger.mlops.store.digest import Manifest\n", "modelledger.mlops.store.digest"),
        (sdk_violations, "def f():\n    import mlflow.artifacts\n", "mlflow.artifacts"),
        (store_violations, "from modelledger.mlops.servers.minio import s3_client\n", "modelledger.mlops.servers.minio"),
        (store_violations, "def f():\n    from modelledger.mlops.bridge import anchor\n", "modelledger.mlops.bridge"),
        (store_violations, "import modelledger.network.chaincode_deployment\n", "modelledger.network.chaincode_deployment"),
    ],
)
def test_a_planted_violation_is_caught(rule, planted: str, named: str) -> None:  # type: ignore[no-untyped-def]
    (violation,) = rule({"mlops/store/planted.py": planted})
    assert violation.startswith("mlops/store/planted.py imports ") and named in violation

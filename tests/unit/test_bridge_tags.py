"""The MLflow tag vocabulary lives in bridge/tags.py: no other module spells a tag name, and docs/bridge.md lists each."""

from __future__ import annotations

import ast
from pathlib import Path

from modelledger.mlops.bridge import tags

ROOT = Path(__file__).resolve().parents[2]
TAG_NAMES = {v for k, v in vars(tags).items() if k.startswith("TAG_")}
STATUSES = {v for k, v in vars(tags).items() if k.startswith("STATUS_")}


def spelled_tag_names(files: dict[str, str]) -> list[str]:
    """Every string literal that is exactly a tag name, outside bridge/tags.py."""
    out = []
    for name, source in files.items():
        if name == "mlops/bridge/tags.py":
            continue
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Constant) and node.value in TAG_NAMES:
                out.append(f"{name}:{node.lineno} spells {node.value!r}")
    return out


def test_no_module_spells_a_tag_name_itself() -> None:
    files = {str(p.relative_to(ROOT)): p.read_text() for p in sorted((ROOT / "mlops").rglob("*.py"))}
    assert spelled_tag_names(files) == []


def test_a_planted_tag_name_is_found() -> None:
    planted = 'def f(c):\n    c.set_model_version_tag("m", "1", "ledger.status", "anchored")\n'
    assert spelled_tag_names({"mlops/demo.py": planted}) == ["mlops/demo.py:2 spells 'ledger.status'"]


def test_the_data_scientists_table_lists_every_tag_and_status_with_its_constant() -> None:
    doc = (ROOT / "docs" / "bridge.md").read_text()
    rows = [line for line in doc.splitlines() if line.startswith("| `")]
    for constant, value in vars(tags).items():
        if constant.startswith(("TAG_", "STATUS_")):
            assert any(row.startswith(f"| `{value}` (`{constant}`) |") for row in rows), constant
    assert TAG_NAMES and {"pending", "anchored", "failed", "conflict"} == STATUSES


def test_modelledger_mlflow_exports_every_tag_constant_data_scientists_read() -> None:
    import modelledger.mlflow as public

    constants = {k for k in vars(tags) if k.startswith(("TAG_", "STATUS_"))}
    assert constants <= set(public.__all__)
    assert all(getattr(public, k) == getattr(tags, k) for k in constants)

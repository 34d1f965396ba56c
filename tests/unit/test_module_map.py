"""Modules named for one job and kept short: checked on every production module.

Two rules of docs/architecture.md ("Names that explain themselves"):

- no two modules of ``network/``, ``runtime/``, ``sdk/`` and ``mlops/`` share a
  file name unless they do the same job in their own package (``errors.py``:
  the exceptions of that package);
- no two modules of one package have near-identical names (the same stem
  once common suffixes are stripped, word by word: ``verify.py`` and
  ``verification.py``, ``webhook.py`` and ``webhooks.py``);
- a module over :data:`LONG` lines says why in its docstring, in a paragraph
  starting with :data:`REASON`.

Each rule is proved to bite by a planted violation.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ("network", "runtime", "sdk", "mlops")
# File names that several packages use for the same job.
SAME_JOB = {
    "__init__.py": "the package itself",
    "__main__.py": "``python -m`` entry point",
    "errors.py": "the exceptions of its package",
}
LONG = 400
REASON = "Why this module is long:"


def modules() -> dict[str, str]:
    """Every production module: path relative to the repository -> source."""
    return {
        str(p.relative_to(ROOT)): p.read_text()
        for part in PRODUCTION
        for p in sorted((ROOT / part).rglob("*.py"))
        if "__pycache__" not in p.parts
    }


def name_clashes(paths: list[str]) -> list[str]:
    """File names used by more than one module, other than those of :data:`SAME_JOB`."""
    by_name: dict[str, list[str]] = defaultdict(list)
    for path in paths:
        by_name[Path(path).name].append(path)
    return [
        f"{name}: {', '.join(sorted(ps))}"
        for name, ps in sorted(by_name.items())
        if len(ps) > 1 and name not in SAME_JOB
    ]


# Stripped from each word of a module's name (the first that fits, leaving at least three letters).
SUFFIXES = ("ification", "ication", "ation", "ition", "ion", "ify", "ing", "ment", "er", "ed", "es", "s", "y", "e")


def stem(file_name: str) -> str:
    """A module's name with a common suffix stripped from each word (``verification`` and ``verify``: ``ver``)."""

    def word(w: str) -> str:
        for suffix in SUFFIXES:
            if w.endswith(suffix) and len(w) - len(suffix) >= 3:
                return w[: -len(suffix)]
        return w

    return "_".join(word(w) for w in Path(file_name).stem.lower().split("_"))


def near_name_clashes(paths: list[str]) -> list[str]:
    """Modules of one package whose names have the same :func:`stem`, as ``<package>: <name>, <name>``."""
    by_stem: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in paths:
        by_stem[(str(Path(path).parent), stem(Path(path).name))].append(Path(path).name)
    return [f"{package}: {', '.join(sorted(names))}" for (package, _), names in sorted(by_stem.items()) if len(names) > 1]


def long_without_reason(files: dict[str, str]) -> list[str]:
    """Modules over :data:`LONG` lines whose docstring does not say why."""
    out = []
    for path, source in files.items():
        lines = len(source.splitlines())
        if lines <= LONG:
            continue
        if REASON not in (ast.get_docstring(ast.parse(source)) or ""):
            out.append(f"{path}: {lines} lines and no '{REASON}' paragraph in its docstring")
    return out


def test_no_two_modules_share_a_name_for_different_jobs() -> None:
    assert name_clashes(list(modules())) == []


def test_no_two_modules_of_a_package_have_near_identical_names() -> None:
    found = near_name_clashes(list(modules()))
    assert found == []


def test_every_long_module_says_why() -> None:
    assert long_without_reason(modules()) == []


def test_every_production_module_has_a_docstring() -> None:
    missing = [
        p for p, src in modules().items() if not Path(p).name.startswith("__") and not ast.get_docstring(ast.parse(src))
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("rule", "planted", "named"),
    [
        (lambda files: name_clashes([*files, "network/chaincode.py"]), {"mlops/cli/chaincode.py": ""}, "chaincode.py"),
        (lambda files: name_clashes([*files, "runtime/stack.py"]), {"mlops/servers/stack.py": ""}, "stack.py"),
        (lambda files: near_name_clashes([*files, "mlops/store/verify.py"]), {"mlops/store/verification.py": ""}, "mlops/store: verification.py, verify.py"),
        (lambda files: near_name_clashes([*files, "mlops/bridge/webhook.py"]), {"mlops/bridge/webhooks.py": ""}, "mlops/bridge: webhook.py, webhooks.py"),
        (lambda files: near_name_clashes([*files, "network/configure.py"]), {"network/configuration.py": ""}, "network: configuration.py, configure.py"),
        (lambda files: near_name_clashes([*files, "sdk/ledger/block_reader.py"]), {"sdk/ledger/blocks_reading.py": ""}, "sdk/ledger: block_reader.py, blocks_reading.py"),
        (long_without_reason, {"sdk/ledger/blocks.py": '"""Blocks."""\n' + "x = 1\n" * LONG}, "sdk/ledger/blocks.py"),
    ],
)
def test_a_planted_violation_is_caught(rule, planted: dict[str, str], named: str) -> None:  # type: ignore[no-untyped-def]
    (violation,) = rule(planted)
    assert violation.startswith(named)


def test_the_same_job_names_and_a_stated_reason_pass() -> None:
    assert name_clashes(["network/errors.py", "sdk/gateway/errors.py"]) == []
    assert near_name_clashes(["network/nodes.py", "mlops/cli/node.py", "mlops/bridge/webhooks.py", "mlops/bridge/webhook_install.py"]) == []
    stated = '"""Records.\n\n' + REASON + ' it mirrors records.go.\n"""\n' + "x = 1\n" * LONG
    assert long_without_reason({"sdk/registry/records.py": stated}) == []

"""The README's layout section matches the tree: it names every top folder, and every folder and file it names exists.

A file is a word with an extension (``fabric.py``, ``versions.env``), a path
(``builders/ccaas``, ``.ci/run``) or a brace expansion of them
(``chaincode_{build,plan}.py``), read relative to its line's top folder.
"""

from __future__ import annotations

import itertools
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def layout_block(readme: str) -> str:
    """The code block under the README's ``## Layout`` heading."""
    return readme.split("## Layout\n", 1)[1].split("```", 2)[1]


def named_folders(block: str) -> tuple[set[str], set[str]]:
    """The top folders the block names (each line that is not indented starts with one) and the sub-folders
    (``name/`` words on that line or its indented continuation lines, relative to the top folder)."""
    top: set[str] = set()
    sub: set[str] = set()
    current = ""
    for line in block.splitlines():
        rest = line
        if line and not line[0].isspace():
            current = line.split("/", 1)[0]
            top.add(current)
            rest = line.split(None, 1)[1] if " " in line else ""
        sub |= {f"{current}/{m}" for m in re.findall(r"(?<![\w./])(\w+)/(?=[\s)]|$)", rest)}
    return top, sub


# A file word: optional folders, then a name with an extension; or a path of two or more parts (``builders/ccaas``).
FILE_WORD = re.compile(
    r"(?<![\w./{}-])("
    r"(?:[\w.{},-]+/)*[\w{},-]+\.(?:py|env|sh|yaml|yml|go|md|toml|json|txt|mod)"
    r"|\.?\w[\w.-]*/[\w.-]*\w"
    r")(?![\w/])"
)


def expand_braces(word: str) -> list[str]:
    """``chaincode_{build,plan}.py`` -> ``chaincode_build.py``, ``chaincode_plan.py`` (every group, in order)."""
    parts = re.split(r"\{([^{}]*)\}", word)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


def named_files(block: str) -> set[str]:
    """The files and paths the block names, relative to the repository root (a top folder's line and its indented
    continuation lines name them relative to that folder; a top entry such as ``.ci/run`` is itself a path).
    """
    out: set[str] = set()
    current = ""
    for line in block.splitlines():
        rest = line
        if line and not line[0].isspace():
            first = line.split(None, 1)[0]
            current = first.split("/", 1)[0]
            if first.rstrip("/") != current:
                out.add(first)
            rest = line.split(None, 1)[1] if " " in line else ""
        for word in FILE_WORD.findall(rest):
            out |= {f"{current}/{name}" for name in expand_braces(word)}
    return out


def tracked_top_folders() -> set[str]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return {line.split("/", 1)[0] for line in out.splitlines() if "/" in line}


def test_the_layout_names_every_top_folder_and_only_real_ones() -> None:
    top, sub = named_folders(layout_block((ROOT / "README.md").read_text()))
    assert top == tracked_top_folders()
    assert sorted(f for f in sub if not (ROOT / f).is_dir()) == []
    assert {"runtime", "mlops/servers", "mlops/store", "mlops/bridge"} <= top | sub


def test_every_file_the_layout_names_exists() -> None:
    files = named_files(layout_block((ROOT / "README.md").read_text()))
    assert {"network/fabric.py", "network/chaincode_lifecycle.py", "tools/versions.env", ".ci/run"} <= files
    assert {"network/builders/ccaas", "chaincode/main.go", "mlops/demo.py"} <= files
    assert sorted(f for f in files if not (ROOT / f).exists()) == []


def test_a_stale_layout_is_caught() -> None:
    top, sub = named_folders("network/    topology\nmlops/      store/ · gone/ ·\n            cli/ · old/\n")
    assert top == {"network", "mlops"}
    assert sorted(f for f in sub if not (ROOT / f).is_dir()) == ["mlops/gone", "mlops/old"]


def test_a_stale_file_in_the_layout_is_caught() -> None:
    block = (
        "tools/      versions.env · install.sh · gone.sh\n"
        "network/    fabric.py (FabricNetwork) · stack.py · modelledger.network · 1.5 s ·\n"
        "            chaincode_{build,plan,gone}.py · builders/ccaas · builders/old\n"
        ".ci/gone    CI\n"
    )
    files = named_files(block)
    assert files == {
        "tools/versions.env", "tools/install.sh", "tools/gone.sh", "network/fabric.py", "network/stack.py",
        "network/chaincode_build.py", "network/chaincode_plan.py", "network/chaincode_gone.py",
        "network/builders/ccaas", "network/builders/old", ".ci/gone",
    }  # fmt: skip
    assert sorted(f for f in files if not (ROOT / f).exists()) == [
        ".ci/gone", "network/builders/old", "network/chaincode_gone.py", "network/stack.py", "tools/gone.sh",
    ]  # fmt: skip

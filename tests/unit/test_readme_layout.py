"""The README's layout section matches the tree: it names every top folder, and every folder it names exists."""

from __future__ import annotations

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


def tracked_top_folders() -> set[str]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return {line.split("/", 1)[0] for line in out.splitlines() if "/" in line}


def test_the_layout_names_every_top_folder_and_only_real_ones() -> None:
    top, sub = named_folders(layout_block((ROOT / "README.md").read_text()))
    assert top == tracked_top_folders()
    assert sorted(f for f in sub if not (ROOT / f).is_dir()) == []
    assert {"runtime", "mlops/servers", "mlops/store", "mlops/bridge"} <= top | sub


def test_a_stale_layout_is_caught() -> None:
    top, sub = named_folders("network/    topology\nmlops/      store/ · gone/ ·\n            cli/ · old/\n")
    assert top == {"network", "mlops"}
    assert sorted(f for f in sub if not (ROOT / f).is_dir()) == ["mlops/gone", "mlops/old"]

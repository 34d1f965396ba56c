"""pyproject.toml's packaging: every folder with modules is a declared package, every other file is declared data.

With ``include-package-data = false`` the wheel holds the declared packages' modules and the ``package-data``
files, nothing else; these tests check that this covers every file git tracks under the package folders, so a
new module folder or data file cannot silently go missing from a non-editable install.
"""

from __future__ import annotations

import fnmatch
import subprocess
import tomllib
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[2]


def setuptools_config() -> dict:
    """The ``[tool.setuptools]`` table of pyproject.toml."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def package_folder(package: str, package_dir: dict[str, str]) -> str:
    """The folder of ``package`` under setuptools' ``package-dir`` mapping (the longest mapped prefix wins)."""
    for prefix in sorted(package_dir, key=len, reverse=True):
        if package == prefix or package.startswith(prefix + "."):
            rest = package[len(prefix) :].lstrip(".").replace(".", "/")
            return str(PurePosixPath(package_dir[prefix], rest)) if rest else package_dir[prefix]
    return package.replace(".", "/")


def tracked_files() -> list[str]:
    """Files git tracks under the package folders."""
    folders = sorted(set(setuptools_config()["package-dir"].values()))
    out = subprocess.run(["git", "ls-files", *folders], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return out.split()


def owner(path: str, folders: dict[str, str]) -> tuple[str, str] | None:
    """The declared package whose folder holds ``path`` most closely, and the path relative to that folder."""
    best = None
    for package, folder in folders.items():
        if path.startswith(folder + "/") and (best is None or len(folder) > len(folders[best])):
            best = package
    return (best, path[len(folders[best]) + 1 :]) if best else None


def test_package_data_is_only_what_is_declared() -> None:
    """The data files are the declared ``package-data``; the default would also take every tracked file under a
    package and warn that data folders such as ``network/builders/ccaas/bin`` look like undeclared packages."""
    assert setuptools_config().get("include-package-data", True) is False


def test_every_tracked_file_under_a_package_is_a_module_of_a_declared_package_or_declared_data() -> None:
    config = setuptools_config()
    folders = {p: package_folder(p, config["package-dir"]) for p in config["packages"]}
    data = config["package-data"]
    left_out = []
    for path in tracked_files():
        found = owner(path, folders)
        if found is None:
            left_out.append(path)
            continue
        package, relative = found
        if path.endswith(".py") and "/" not in relative:
            continue
        if not any(fnmatch.fnmatch(relative, pattern) for pattern in data.get(package, [])):
            left_out.append(path)
    assert left_out == []


def test_the_data_the_code_reads_is_declared() -> None:
    data = setuptools_config()["package-data"]
    assert "topology.yaml" in data["modelledger.network"]
    assert "builders/ccaas/bin/*" in data["modelledger.network"]
    assert data["modelledger.sdk.registry"] == ["limits.json"]

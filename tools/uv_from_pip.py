"""Prints, as shell `export` lines, the uv settings that match pip's configuration here.

`make install` installs with uv, which reads neither pip.conf nor PIP_* variables. So that uv uses the
same index, extra indexes, local wheel folders and CA bundle as pip would, this reads pip's own view of its
configuration (`pip config list`: files and environment) and prints the uv equivalents. Nothing is printed
for a setting pip does not have. Run with the venv's python (it calls `python -m pip`).
"""

from __future__ import annotations

import ast
import shlex
import subprocess
import sys

# pip's option (the part after the section) -> uv's environment variable.
UV_VARIABLES = {
    "index-url": "UV_INDEX_URL",
    "extra-index-url": "UV_EXTRA_INDEX_URL",
    "find-links": "UV_FIND_LINKS",
    "cert": "SSL_CERT_FILE",
}
# Which of pip's sections wins, lowest first: global, then install, then the environment.
SECTION_ORDER = {"global": 0, "install": 1, ":env:": 2}


def pip_settings() -> dict[str, str]:
    """pip's configured values for the options uv needs, the most specific section winning."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
    ).stdout
    found: dict[str, tuple[int, str]] = {}
    for line in out.splitlines():
        key, sep, raw = line.partition("=")
        section, _, option = key.rpartition(".")
        if not sep or option not in UV_VARIABLES or section not in SECTION_ORDER:
            continue
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            continue
        rank = SECTION_ORDER[section]
        if option not in found or rank >= found[option][0]:
            found[option] = (rank, str(value))
    return {option: value for option, (_, value) in found.items()}


def main() -> None:
    for option, value in sorted(pip_settings().items()):
        # pip separates several URLs or folders with spaces or newlines; uv with spaces.
        print(f"export {UV_VARIABLES[option]}={shlex.quote(' '.join(value.split()))}")


if __name__ == "__main__":
    main()

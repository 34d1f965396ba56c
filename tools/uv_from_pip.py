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

# pip's option (the part after the section) -> uv's environment variable, and how uv separates several values
# (pip takes spaces or newlines between them).
UV_VARIABLES = {
    "index-url": ("UV_INDEX_URL", " "),
    "extra-index-url": ("UV_EXTRA_INDEX_URL", " "),
    "find-links": ("UV_FIND_LINKS", ","),
    "trusted-host": ("UV_INSECURE_HOST", " "),
    "cert": ("SSL_CERT_FILE", " "),
    "timeout": ("UV_HTTP_TIMEOUT", " "),
    "default-timeout": ("UV_HTTP_TIMEOUT", " "),
}
# Options that are on or off: pip's true values -> uv's variable set to 1.
UV_FLAGS = {"no-index": "UV_NO_INDEX"}
TRUE = {"1", "true", "yes", "on"}
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
        if not sep or (option not in UV_VARIABLES and option not in UV_FLAGS) or section not in SECTION_ORDER:
            continue
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            continue
        rank = SECTION_ORDER[section]
        if option not in found or rank >= found[option][0]:
            found[option] = (rank, str(value))
    return {option: value for option, (_, value) in found.items()}


def uv_exports(settings: dict[str, str]) -> list[str]:
    """The ``export NAME=value`` lines that give uv ``settings`` (pip's options and values)."""
    lines = []
    for option, value in sorted(settings.items()):
        if option in UV_FLAGS:
            if value.strip().lower() in TRUE:
                lines.append(f"export {UV_FLAGS[option]}=1")
            continue
        name, sep = UV_VARIABLES[option]
        lines.append(f"export {name}={shlex.quote(sep.join(value.split()))}")
    return lines


def main() -> None:
    for line in uv_exports(pip_settings()):
        print(line)


if __name__ == "__main__":
    main()

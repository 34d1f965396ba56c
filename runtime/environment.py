"""Typed reads of ``MODELLEDGER_*`` environment variables, shared by every settings class.

An unset or blank variable gives the default; a value of the wrong type is an
error that names the variable, never a silent fallback.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

N = TypeVar("N", int, float)


def env_str(name: str, default: str) -> str:
    """The variable's value, stripped, or ``default``."""
    return os.environ.get(name, "").strip() or default


def env_path(name: str, default: Path) -> Path:
    """The variable as an absolute path (``~`` expanded), or ``default``."""
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser().resolve() if value else default


def env_optional_path(name: str) -> Path | None:
    """The variable as an absolute path (``~`` expanded), or None when unset."""
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser().resolve() if value else None


def env_number(name: str, default: N, kind: type[N]) -> N:
    """The variable as an ``int`` or a ``float``, or ``default``.

    Raises:
        ValueError: The value is not a number of that kind.
    """
    value = os.environ.get(name, "").strip()
    if not value:
        return kind(default)
    try:
        return kind(value)
    except ValueError as exc:
        what = "an integer" if kind is int else "a number"
        raise ValueError(f"{name} must be {what}, got {value!r}") from exc


def env_optional_int(name: str) -> int | None:
    """The variable as an ``int``, or None when unset."""
    value = os.environ.get(name, "").strip()
    return env_number(name, 0, int) if value else None


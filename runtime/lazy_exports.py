"""A package's public names, each imported from its module on first use (PEP 562).

A package whose ``__init__`` would otherwise import every module (and their
heavy dependencies) at once declares where each public name lives and lets
this module import it when it is first read::

    __getattr__, __dir__ = lazy_exports(__name__, _HOMES, __all__)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Collection, Mapping
from typing import Any


def lazy_exports(
    package: str, homes: Mapping[str, str], public: Collection[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package``.

    Args:
        package: The package's ``__name__``.
        homes: Each public name, and the module of the package (relative name) that holds it.
        public: The package's ``__all__``.

    Returns:
        ``__getattr__`` (imports the name's module, caches the value in the package) and ``__dir__``.
    """

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{home}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *public})

    return __getattr__, __dir__

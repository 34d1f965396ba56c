"""The store and the bridge have package surfaces: ``__all__`` names what they offer, each name resolves, lazily."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PACKAGES = ("modelledger.mlops.store", "modelledger.mlops.bridge")


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_is_in_all_and_resolves_to_its_module(package: str) -> None:
    pkg = importlib.import_module(package)
    assert pkg.__doc__ and set(pkg._HOMES) == set(pkg.__all__)
    for name in pkg.__all__:
        home = importlib.import_module(f"{package}.{pkg._HOMES[name]}")
        assert getattr(pkg, name) is getattr(home, name), name
    with pytest.raises(AttributeError):
        pkg.no_such_name  # noqa: B018


@pytest.mark.parametrize(
    ("package", "heavy"),
    [("modelledger.mlops.store", "modelledger.mlops.store.signing"), ("modelledger.mlops.bridge", "boto3")],
)
def test_importing_the_package_loads_no_module_until_a_name_is_used(package: str, heavy: str) -> None:
    code = f"import sys, {package}; print({heavy!r} in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"

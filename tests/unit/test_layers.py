"""Dependencies point one way: the layers of docs/architecture.md, checked on the imports of every module.

Every module under the folders of the ``modelledger`` namespace (``pyproject.toml``
maps them) belongs to the layer of its longest matching package prefix in
:data:`LAYERS`, and may import only what its layer allows, minus what
:data:`EXCEPT` takes out. Imports are read from the source: top level, inside
functions, under ``TYPE_CHECKING``, relative ones resolved, and names reached
through an imported module (``processes.ProcessSupervisor``) counted as
imported. A module in no layer is itself a failure, so a new package is placed
on purpose. Each rule is proved to bite by a planted violation.

Holes closed on purpose (each has planted cases below):

- a name re-exported through an allowed module is checked where it is defined
  too (``from modelledger.runtime.status import ProcessSupervisor`` is
  ``modelledger.runtime.processes.ProcessSupervisor``): the module is imported
  and the name looked up, a module by its ``__name__``, a class or function by
  its ``__module__`` and ``__qualname__``;
- ``importlib.import_module("...")`` and ``__import__("...")`` with a constant
  argument are imports;
- ``from x import *`` imports every public name of ``x`` (its ``__all__``);
- an import whose first segment is one of our folders (``mlops``, ``network``,
  ``sdk``, ``runtime``) is a violation anywhere: we always import through the
  ``modelledger`` namespace.
"""

from __future__ import annotations

import ast
import functools
import importlib
import tomllib
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

ANYTHING = ("modelledger",)
RUNTIME = "modelledger.runtime"
NETWORK = "modelledger.network"
SDK = "modelledger.sdk"
STORE = "modelledger.mlops.store"
BRIDGE = "modelledger.mlops.bridge"
SERVERS = "modelledger.mlops.servers"
MLFLOW = "modelledger.mlflow"  # mlops/mlflow/: what data scientists import

# Layer (package prefix) -> the prefixes its modules may import. Bottom first.
LAYERS: dict[str, tuple[str, ...]] = {
    RUNTIME: (RUNTIME,),  # the toolkit: processes, lifecycle, settings, private files, TLS
    NETWORK: (NETWORK, RUNTIME),  # Fabric only
    SDK: (SDK,),  # the Fabric client: knows nothing else of ModelLedger (nor of MLflow, see THIRD_PARTY)
    STORE: (STORE, SDK, RUNTIME),  # a library over a boto3 client: no server, bridge, CLI or Fabric orchestration
    BRIDGE: (BRIDGE, STORE, SDK, RUNTIME),  # the bridge's logic: no server supervision (EXCEPT)
    SERVERS: (SERVERS, BRIDGE, STORE, SDK, RUNTIME),  # the servers we start, the bridge's among them
    MLFLOW: (MLFLOW, BRIDGE, STORE, SDK, RUNTIME),
    "modelledger.mlops.cli": ANYTHING,  # on top
    "modelledger.mlops.demo": ANYTHING,
    "modelledger.mlops.library_output": ANYTHING,
    "modelledger.mlops.__init__": ANYTHING,  # mlops/__init__.py
}

# Layer -> imports forbidden although an allowed prefix covers them (a module, or one name of a module).
SUPERVISION = ("modelledger.runtime.lifecycle", "modelledger.runtime.processes.ProcessSupervisor")
EXCEPT: dict[str, tuple[str, ...]] = {
    STORE: SUPERVISION,  # DESIGN: the store starts no server
    BRIDGE: SUPERVISION,
}

# Layer -> third-party packages it must not import. The store may use ``mlflow.artifacts`` (store/source.py
# downloads a model's files) but never MLflow's server.
THIRD_PARTY: dict[str, tuple[str, ...]] = {
    SDK: ("mlflow",),
    NETWORK: ("mlflow", "boto3", "botocore"),
    STORE: ("mlflow.server",),
}


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _folders() -> dict[str, Path]:
    """Package -> folder, from pyproject.toml's package-dir (longest folder first, so mlops/mlflow wins over mlops)."""
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    return dict(sorted(((pkg, ROOT / folder) for pkg, folder in mapping.items()), key=lambda x: -len(x[1].parts)))


FOLDERS = _folders()
# First segments that mean one of our folders imported outside the ``modelledger`` namespace.
BARE_FOLDERS = frozenset(folder.relative_to(ROOT).parts[0] for folder in FOLDERS.values())


def module_name(path: str) -> str:
    """The dotted module name of a source file given relative to the repository root (``x.__init__`` for x's own)."""
    full = ROOT / path
    for package, folder in FOLDERS.items():
        if full.is_relative_to(folder):
            parts = full.relative_to(folder).with_suffix("").parts
            return ".".join([package, *parts])  # a package's own module ends in ``.__init__``
    raise AssertionError(f"{path} is in no folder of pyproject.toml's package-dir")


def imported_names(source: str, package: str) -> set[str]:
    """Every module, or name of a module, that the source imports or reaches through an imported module.

    Args:
        source: The module's source text.
        package: The package relative imports start from (the module's own, if it is an ``__init__``).
    """
    found: set[str] = set()
    bound: dict[str, str] = {}  # local name -> what it stands for
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
                local = alias.asname or alias.name.split(".")[0]
                bound[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against the module's package
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                if alias.name == "*":  # every public name of the module
                    found.add(base)
                    found |= {f"{base}.{name}" for name in public_names(base)}
                else:
                    found.add(f"{base}.{alias.name}")
                    bound[alias.asname or alias.name] = f"{base}.{alias.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _imports_dynamically(node.func, bound):
            argument = node.args[0] if node.args else None
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                found.add(argument.value)
        if isinstance(node, ast.Attribute):
            chain: list[str] = []
            value: ast.expr = node
            while isinstance(value, ast.Attribute):
                chain.insert(0, value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id in bound:
                found.add(".".join([bound[value.id], *chain]))
    return found


def _imports_dynamically(func: ast.expr, bound: dict[str, str]) -> bool:
    """Whether a call's function is ``__import__``, ``importlib.import_module`` or a bound ``import_module``."""
    if isinstance(func, ast.Name):
        return func.id == "__import__" or bound.get(func.id) == "importlib.import_module"
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "import_module"
        and isinstance(func.value, ast.Name)
        and bound.get(func.value.id) == "importlib"
    )


def public_names(module: str) -> list[str]:
    """The names ``from module import *`` binds (none if the module cannot be imported: a planted name)."""
    try:
        imported = importlib.import_module(module)
    except ImportError:
        return []
    return list(getattr(imported, "__all__", [n for n in vars(imported) if not n.startswith("_")]))


@functools.cache
def defined_as(name: str) -> str | None:
    """Where an imported name of ours is defined, if that differs from the name: a module by its ``__name__``, a
    class or function by ``<__module__>.<__qualname__>``; ``None`` for anything else or a name that does not exist.
    """
    if not _under(name, "modelledger"):
        return None
    parts = name.split(".")
    for end in range(len(parts), 1, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:end]))
        except ImportError:
            continue
        try:
            for attribute in parts[end:]:
                found = getattr(found, attribute)
        except AttributeError:
            return None
        if isinstance(found, types.ModuleType):
            where = found.__name__
        elif isinstance(found, (type, types.FunctionType, types.BuiltinFunctionType)):
            where = f"{found.__module__}.{found.__qualname__}"
        else:
            return None
        return where if where != name else None
    return None


def layer_of(module: str) -> str | None:
    matching = [layer for layer in LAYERS if _under(module, layer)]
    return max(matching, key=len) if matching else None


def broken_rule(layer: str, name: str) -> str | None:
    """Why a module of ``layer`` must not import ``name``, or ``None`` if it may."""
    allowed, denied, third_party = LAYERS[layer], EXCEPT.get(layer, ()), THIRD_PARTY.get(layer, ())
    if _under(name, "modelledger"):
        if not any(_under(name, a) for a in allowed):
            return f"{layer} may import only {', '.join(allowed)}"
        if any(_under(name, d) for d in denied):
            return f"{layer} must not import {', '.join(denied)}"
    elif any(_under(name, t) for t in third_party):
        return f"{layer} must not import {', '.join(third_party)}"
    return None


def violations(files: dict[str, str]) -> list[str]:
    """Each import that breaks its module's layer, as ``<file> imports <name> (<why>)``.

    Args:
        files: Source text by path relative to the repository root.
    """
    out = []
    for path, source in files.items():
        module = module_name(path)
        layer = layer_of(module)
        if layer is None:
            out.append(f"{path} ({module}) is in no layer of test_layers.LAYERS")
            continue
        found = set()
        for name in imported_names(source, module.rsplit(".", 1)[0]):
            if name.split(".")[0] in BARE_FOLDERS:
                found.add((name, "outside the modelledger namespace: import modelledger." + name))
                continue
            where = defined_as(name)
            for checked in (name, where) if where else (name,):
                why = broken_rule(layer, checked)
                if why:
                    found.add((name, why if checked == name else f"defined as {checked}: {why}"))
                    break
        # One line per forbidden import: a name reached through a forbidden module is not said again.
        names = {name for name, _ in found}
        for name, why in sorted(found):
            if not any(_under(name, other) for other in names - {name}):
                out.append(f"{path} imports {name} ({why})")
    return out


def every_source() -> dict[str, str]:
    files = {p for folder in FOLDERS.values() for p in folder.rglob("*.py")}
    return {str(p.relative_to(ROOT)): p.read_text() for p in sorted(files)}


def test_every_module_keeps_to_its_layer() -> None:
    files = every_source()
    assert len(files) > 70 and any(module_name(p) == "modelledger.runtime.settings" for p in files)
    assert violations(files) == []


def test_every_layer_has_modules() -> None:
    """A layer whose package was renamed would guard nothing."""
    layers = {layer_of(module_name(p)) for p in every_source()}
    assert layers == set(LAYERS)


@pytest.mark.parametrize(
    ("path", "planted", "named"),
    [
        # store -> servers, bridge, CLI, network
        ("mlops/store/planted.py", "from modelledger.mlops.servers.minio import s3_client\n", "modelledger.mlops.servers.minio"),
        ("mlops/store/planted.py", "def f():\n    from modelledger.mlops.bridge import anchor\n", "modelledger.mlops.bridge"),
        ("mlops/store/planted.py", "import modelledger.network.chaincode_deployment\n", "modelledger.network.chaincode_deployment"),
        ("mlops/store/planted.py", "from modelledger.mlops.cli.output import fail\n", "modelledger.mlops.cli.output"),
        ("mlops/store/planted.py", "from ..servers import minio\n", "modelledger.mlops.servers.minio"),
        # sdk -> anything outside the sdk, and MLflow
        ("sdk/planted.py", "from modelledger.mlops.store.digest import Manifest\n", "modelledger.mlops.store.digest"),
        ("sdk/registry/planted.py", "def f():\n    import mlflow.artifacts\n", "mlflow.artifacts"),
        ("sdk/ledger/planted.py", "from modelledger.runtime.settings import state_dir\n", "modelledger.runtime.settings"),
        # network -> anything of ours but the runtime
        ("network/planted.py", "from modelledger.sdk.profile import ConnectionProfile\n", "modelledger.sdk.profile"),
        ("network/planted.py", "from modelledger.mlops.servers import minio\n", "modelledger.mlops.servers.minio"),
        # runtime -> anything of ours outside the runtime
        ("runtime/planted.py", "from modelledger.network.errors import NetworkError\n", "modelledger.network.errors"),
        ("runtime/planted.py", "import modelledger.sdk.gateway\n", "modelledger.sdk.gateway"),
        ("runtime/planted.py", "from modelledger.mlops.store.s3errors import error_code\n", "modelledger.mlops.store.s3errors"),
        # the bridge's logic -> server supervision, servers, CLI, network
        ("mlops/bridge/planted.py", "from modelledger.mlops.servers.bridge_server import BridgeProcess\n", "modelledger.mlops.servers.bridge_server"),
        ("mlops/bridge/planted.py", "from modelledger.runtime.lifecycle import wait_healthy\n", "modelledger.runtime.lifecycle.wait_healthy"),
        ("mlops/bridge/planted.py", "from modelledger.runtime.processes import ProcessSupervisor\n", "modelledger.runtime.processes.ProcessSupervisor"),
        ("mlops/bridge/planted.py", "from modelledger.runtime import processes\nsup = processes.ProcessSupervisor()\n", "modelledger.runtime.processes.ProcessSupervisor"),
        ("mlops/bridge/planted.py", "import modelledger.runtime.processes\nmodelledger.runtime.processes.ProcessSupervisor()\n", "modelledger.runtime.processes.ProcessSupervisor"),
        ("mlops/bridge/planted.py", "from modelledger.mlops.cli.output import fail\n", "modelledger.mlops.cli.output"),
        ("mlops/bridge/planted.py", "from modelledger.network.fabric import FabricNetwork\n", "modelledger.network.fabric"),
        # the servers sit under the CLI
        ("mlops/servers/planted.py", "from modelledger.mlops.cli.output import fail\n", "modelledger.mlops.cli.output"),
        # a package in no layer
        ("mlops/serving/planted.py", "import json\n", "is in no layer"),
        # a forbidden name re-exported through an allowed module (runtime/status.py imports ProcessSupervisor)
        ("mlops/bridge/planted.py", "from modelledger.runtime.status import ProcessSupervisor\n", "defined as modelledger.runtime.processes.ProcessSupervisor"),
        ("mlops/bridge/planted.py", "from modelledger.runtime import status\nstatus.ProcessSupervisor()\n", "defined as modelledger.runtime.processes.ProcessSupervisor"),
        # imports by a constant string
        ("mlops/store/planted.py", "import importlib\nimportlib.import_module(\"modelledger.mlops.servers.minio\")\n", "modelledger.mlops.servers.minio"),
        ("mlops/store/planted.py", "from importlib import import_module\nimport_module(\"modelledger.mlops.bridge.anchor\")\n", "modelledger.mlops.bridge.anchor"),
        ("mlops/store/planted.py", "__import__(\"modelledger.network.fabric\")\n", "modelledger.network.fabric"),
        # a star import imports every public name
        ("mlops/bridge/planted.py", "from modelledger.runtime.processes import *\nProcessSupervisor()\n", "modelledger.runtime.processes.ProcessSupervisor"),
        # our folders outside the modelledger namespace, anywhere
        ("mlops/store/planted.py", "from mlops.servers.minio import S3Server\n", "mlops.servers.minio.S3Server (outside the modelledger namespace"),
        ("mlops/cli/planted.py", "import network.fabric\n", "network.fabric (outside the modelledger namespace"),
        ("mlops/cli/planted.py", "from sdk import gateway\n", "sdk.gateway (outside the modelledger namespace"),
        ("network/planted.py", "import runtime\n", "runtime (outside the modelledger namespace"),
        # the store starts no server
        ("mlops/store/planted.py", "from modelledger.runtime.lifecycle import wait_healthy\n", "modelledger.runtime.lifecycle.wait_healthy"),
        ("mlops/store/planted.py", "from modelledger.runtime.processes import ProcessSupervisor\n", "modelledger.runtime.processes.ProcessSupervisor"),
        # third-party packages: network -> MLflow, boto3; store -> MLflow's server
        ("network/planted.py", "import mlflow\n", "mlflow (modelledger.network must not import"),
        ("network/planted.py", "def f():\n    import boto3\n", "boto3 (modelledger.network must not import"),
        ("mlops/store/planted.py", "from mlflow.server import app\n", "mlflow.server.app (modelledger.mlops.store must not import"),
        ("mlops/store/planted.py", "import mlflow.artifacts\nmlflow.server.app\n", "mlflow.server (modelledger.mlops.store must not import"),
    ],
)
def test_a_planted_violation_is_caught(path: str, planted: str, named: str) -> None:
    (violation,) = violations({path: planted})
    assert violation.startswith(f"{path} ") and named in violation


@pytest.mark.parametrize(
    ("path", "planted"),
    [
        ("mlops/store/planted.py", "from modelledger.sdk.registry.records import Manifest\nfrom modelledger.runtime import settings\n"),
        ("network/planted.py", "from modelledger.runtime.processes import ProcessSupervisor\n"),
        ("mlops/bridge/planted.py", "from modelledger.runtime.processes import process_start_time\nfrom modelledger.mlops.store import upload\n"),
        ("mlops/servers/planted.py", "from modelledger.mlops.bridge.service import install_webhook\nfrom modelledger.runtime.lifecycle import UpReport\n"),
        ("mlops/cli/planted.py", "from modelledger.network.fabric import FabricNetwork\nfrom modelledger.mlops.servers import stack\n"),
        ("sdk/planted.py", "from .gateway import gateway\n"),
        ("mlops/store/planted.py", "import mlflow.artifacts\nfrom mlflow.exceptions import MlflowException\n"),
        ("mlops/store/planted.py", "from modelledger.runtime.processes import process_start_time\n"),
        ("mlops/bridge/planted.py", "from modelledger.runtime.status import ServerStatus\n"),
        ("network/planted.py", "import importlib\nimportlib.import_module(\"modelledger.runtime.tls\")\n"),
    ],
)
def test_an_allowed_import_passes(path: str, planted: str) -> None:
    assert violations({path: planted}) == []

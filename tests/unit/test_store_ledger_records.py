"""One model of what is anchored: the store's manifest and pointer as the ledger's records, and back.

The two sides list their fields in different orders (``FileEntry(path, size,
sha256)`` / ``ManifestFile(path, sha256, size)``, ``StoragePointer(bucket,
key, version_id, sha256)`` / ``Storage(bucket, key, sha256, version_id)``).
Every field gets a distinct value here, so a conversion that mixed two fields
up would fail; and only ``store/ledger_records.py`` may build these records:
checked on mlops/ and bench/, whether a record is imported by name, reached
through a bound module (``records.Storage``) or re-exported; and the other way,
no store ``StoragePointer``/``FileEntry``/``Manifest`` is built by hand outside
the store, nor in a store module that reads ledger records.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from modelledger.mlops.store import ledger_records
from modelledger.mlops.store.digest import FileEntry, Manifest
from modelledger.mlops.store.index import StoragePointer
from modelledger.mlops.store.ledger_records import (
    from_ledger_manifest,
    from_ledger_storage,
    ledger_manifest,
    ledger_pointer,
    to_ledger_manifest,
    to_ledger_storage,
    version_input,
)
from modelledger.sdk.registry.records import (
    DatasetRef,
    Framework,
    Library,
    ManifestFile,
    Metric,
    MLflowSource,
    ModelVersion,
    Param,
    Storage,
    from_json,
    to_json,
)
from tests.unit.test_layers import defined_as, module_name

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = Manifest((FileEntry(path="MLmodel", size=7, sha256="a" * 64), FileEntry(path="model.pkl", size=9, sha256="b" * 64)))
POINTER = StoragePointer(bucket="anchored", key="models/k/index.json", version_id="version-1", sha256="c" * 64)


def test_a_manifest_goes_to_the_ledger_and_back_unchanged() -> None:
    record = to_ledger_manifest(manifest=MANIFEST)
    assert [(f.path, f.sha256, f.size) for f in record.files] == [(f.path, f.sha256, f.size) for f in MANIFEST.files]
    assert from_ledger_manifest(manifest=record) == MANIFEST


def test_a_pointer_goes_to_the_ledger_and_back_unchanged() -> None:
    storage = to_ledger_storage(pointer=POINTER)
    assert (storage.version_id, storage.sha256) == ("version-1", "c" * 64)
    assert from_ledger_storage(storage=storage) == POINTER


@pytest.mark.parametrize(
    ("store_item", "ledger_type", "to_ledger", "to_store"),
    [
        (MANIFEST.files[1], ManifestFile, lambda x: to_ledger_manifest(manifest=Manifest((x,))).files[0], None),
        (POINTER, Storage, lambda x: to_ledger_storage(pointer=x), lambda x: from_ledger_storage(storage=x)),
    ],
)
def test_every_field_keeps_its_name_whatever_the_order_of_each_side(store_item, ledger_type, to_ledger, to_store) -> None:
    ledger_item = to_ledger(store_item)
    assert isinstance(ledger_item, ledger_type)
    names = [f.name for f in dataclasses.fields(store_item)]
    assert {f.name for f in dataclasses.fields(ledger_item)} == set(names)
    assert names != [f.name for f in dataclasses.fields(ledger_item)]  # the orders differ: why this module exists
    assert {n: getattr(ledger_item, n) for n in names} == {n: getattr(store_item, n) for n in names}
    if to_store is not None:
        assert to_store(ledger_item) == store_item


def test_the_registration_carries_the_digests_the_copy_and_the_provenance() -> None:
    provenance = {
        "mlflow": MLflowSource(model_id="m-1", run_id="r1", source="models:/m-1", user="u"),
        "framework": Framework(name="sklearn", version="1.5"),
        "libraries": [Library(name="numpy", version="2.0")],
        "params": [Param(key="C", value="0.5")],
        "metrics": [Metric(key="acc", value=0.9)],
        "datasets": [DatasetRef(name="train", sha256="d" * 64, source="s3://data/train.csv")],
    }
    mv = version_input(name="fraud", version="3", manifest=MANIFEST, pointer=POINTER, **provenance)
    assert (mv.name, mv.version) == ("fraud", "3")
    assert (mv.model_digest, mv.manifest_digest) == (MANIFEST.model_digest, MANIFEST.manifest_digest)
    assert mv.manifest == to_ledger_manifest(manifest=MANIFEST) and mv.storage == to_ledger_storage(pointer=POINTER)
    assert {k: getattr(mv, k) for k in provenance} == provenance
    bare = version_input(name="fraud", version="3", manifest=MANIFEST, pointer=POINTER)
    assert (bare.mlflow, bare.framework, bare.libraries, bare.datasets) == (MLflowSource(), Framework(), [], [])


def test_a_stored_record_reads_back_as_the_store_model() -> None:
    mv = version_input(name="fraud", version="3", manifest=MANIFEST, pointer=POINTER)
    record = from_json(ModelVersion, to_json(mv))  # what the ledger hands back
    assert ledger_manifest(record=record) == MANIFEST and ledger_pointer(record=record) == POINTER


def test_the_conversions_take_keywords_only() -> None:
    with pytest.raises(TypeError):
        to_ledger_storage(POINTER)  # type: ignore[misc]
    with pytest.raises(TypeError):
        version_input("fraud", "3", MANIFEST, POINTER)  # type: ignore[misc]


# ---------------------------------------------------------------------------- one place
# The ledger records that describe the store's manifest and pointer, and the registration built from them.
CONVERTED = {"Manifest", "ManifestFile", "Storage", "ModelVersionInput"}
RECORDS = "modelledger.sdk.registry.records"
LEDGER_RECORDS = {f"{RECORDS}.{name}" for name in CONVERTED}
# The store's side: built outside the store only by ledger_records.py (from a ledger record) or by the store's own
# functions (a digest, an upload); inside the store, never by a module that reads ledger records.
STORE_RECORDS = {
    "modelledger.mlops.store.digest.FileEntry",
    "modelledger.mlops.store.digest.Manifest",
    "modelledger.mlops.store.index.StoragePointer",
}
STORE = "mlops/store/"
THE_CONVERSIONS = "mlops/store/ledger_records.py"
# Where the rule is checked: every production module of mlops/, and the benchmarks.
SCANNED = ("mlops", "bench")

# The benchmarks' plain reference script writes its own S3 copy, so it makes the store's pointer of that copy
# itself (a fact of S3, not a conversion of a ledger record); the rule's other half (no ledger record built by
# hand) holds for it as for everything else.
MAY_BUILD_STORE_RECORDS = {"bench/bridge_latency.py": {"modelledger.mlops.store.index.StoragePointer"}}


def _package(path: str) -> str:
    """The package a module's relative imports start from (bench/ is not a package: its own name)."""
    if path.startswith(("mlops/", "network/", "sdk/", "runtime/")):
        return module_name(path).rsplit(".", 1)[0]
    return path.removesuffix(".py").replace("/", ".")


def references(source: str, package: str) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """What a module names through its imports: ``(line, dotted name)`` of every imported name and every name
    reached through an imported module or class (``records.Storage``), and of every call to such a name.
    """
    tree = ast.parse(source)
    bound: dict[str, str] = {}
    named: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                named.append((node.lineno, alias.name))
                bound[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                if alias.name != "*":
                    named.append((node.lineno, f"{base}.{alias.name}"))
                    bound[alias.asname or alias.name] = f"{base}.{alias.name}"

    def dotted(expr: ast.expr) -> str | None:
        chain: list[str] = []
        while isinstance(expr, ast.Attribute):
            chain.insert(0, expr.attr)
            expr = expr.value
        return ".".join([bound[expr.id], *chain]) if isinstance(expr, ast.Name) and expr.id in bound else None

    called: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and (name := dotted(node)):
            named.append((node.lineno, name))
        elif isinstance(node, ast.Call) and (name := dotted(node.func)):
            called.append((node.lineno, name))
    return named, called


def _is(name: str, targets: set[str]) -> str | None:
    """The target a name stands for, directly or re-exported (resolved where it is defined)."""
    for candidate in (name, defined_as(name)):
        if candidate and any(candidate == t or candidate.startswith(t + ".") for t in targets):
            return next(t for t in targets if candidate == t or candidate.startswith(t + "."))
    return None


def conversion_violations(files: dict[str, str]) -> list[tuple[str, int, str]]:
    """``(path, line, what)`` for each module but store/ledger_records.py that converts by hand: it uses a converted
    ledger record (to build one), or builds a store record outside the store, or, in the store, builds a store
    record in a module that reads ledger records.
    """
    out: set[tuple[str, int, str]] = set()
    for path, source in files.items():
        if path == THE_CONVERSIONS:
            continue
        named, called = references(source, _package(path))
        reads_ledger = False
        for line, name in named:
            if target := _is(name, LEDGER_RECORDS):
                out.add((path, line, f"uses {target}"))
            reads_ledger |= bool(_is(name, {RECORDS}))
        for line, name in called:
            if (target := _is(name, STORE_RECORDS)) and name.split(".")[-1] == target.split(".")[-1]:
                if not path.startswith(STORE) and target not in MAY_BUILD_STORE_RECORDS.get(path, set()):
                    out.add((path, line, f"builds {target} outside the store"))
                elif reads_ledger:
                    out.add((path, line, f"builds {target} in a module that reads ledger records"))
    return sorted(out)


def scanned_files() -> dict[str, str]:
    return {
        str(p.relative_to(ROOT)): p.read_text()
        for part in SCANNED
        for p in sorted((ROOT / part).rglob("*.py"))
        if "__pycache__" not in p.parts
    }


def test_only_ledger_records_builds_the_ledger_records_of_the_store_model() -> None:
    files = scanned_files()
    assert "bench/bridge_latency.py" in files and THE_CONVERSIONS in files
    found = conversion_violations(files)
    assert [f"{p}:{line} {what}" for p, line, what in found] == []
    assert "from_ledger_manifest" in ledger_records.__all__


@pytest.mark.parametrize(
    ("path", "planted", "expected"),
    [
        (
            "mlops/cli/model.py",
            "from modelledger.sdk.registry.records import ManifestFile, Storage\n",
            [(1, f"uses {RECORDS}.ManifestFile"), (1, f"uses {RECORDS}.Storage")],
        ),
        # through a bound module
        (
            "mlops/cli/model.py",
            "from modelledger.sdk.registry import records\n\ns = records.Storage(bucket='b')\n",
            [(3, f"uses {RECORDS}.Storage")],
        ),
        ("bench/planted.py", "import modelledger.sdk.registry.records as r\nr.ModelVersionInput()\n", [(2, f"uses {RECORDS}.ModelVersionInput")]),
        # only the reference script of bench/bridge_latency.py may make the pointer of its own S3 copy
        ("bench/planted.py", "from modelledger.mlops.store.index import StoragePointer\nStoragePointer('b', 'k', 'v', 's')\n", [(2, "builds modelledger.mlops.store.index.StoragePointer outside the store")]),
        ("mlops/bridge/planted.py", "from ...sdk.registry import records\nrecords.Manifest(files=[])\n", [(2, f"uses {RECORDS}.Manifest")]),
        # the reverse direction: a store record built by hand from a ledger record
        (
            "mlops/bridge/planted.py",
            "from modelledger.mlops.store.index import StoragePointer\n"
            "def f(record):\n    return StoragePointer(record.storage.bucket, record.storage.key, '', '')\n",
            [(3, "builds modelledger.mlops.store.index.StoragePointer outside the store")],
        ),
        (
            "mlops/cli/planted.py",
            "from modelledger.mlops.store import digest\nm = digest.Manifest(tuple(digest.FileEntry(f.path, f.size, f.sha256) for f in r.files))\n",
            [
                (2, "builds modelledger.mlops.store.digest.FileEntry outside the store"),
                (2, "builds modelledger.mlops.store.digest.Manifest outside the store"),
            ],
        ),
        (
            "mlops/store/verification.py",
            "from modelledger.sdk.registry.records import ModelVersion\nfrom modelledger.mlops.store.digest import FileEntry\n"
            "def f(r: ModelVersion):\n    return [FileEntry(x.path, x.size, x.sha256) for x in r.manifest.files]\n",
            [(4, "builds modelledger.mlops.store.digest.FileEntry in a module that reads ledger records")],
        ),
    ],
)
def test_a_planted_conversion_outside_ledger_records_is_found(path: str, planted: str, expected: list[tuple[int, str]]) -> None:
    assert conversion_violations({path: planted}) == [(path, line, what) for line, what in expected]


def test_the_store_model_built_by_its_own_functions_passes() -> None:
    planted = {
        "mlops/store/digest.py": "def f(files):\n    return Manifest(tuple(FileEntry(p, s, h) for p, s, h in files))\n",
        "mlops/bridge/planted.py": "from modelledger.mlops.store.ledger_records import from_ledger_storage, version_input\n"
        "from modelledger.mlops.store.digest import Manifest\nm = Manifest.from_json({})\n",
    }
    assert conversion_violations(planted) == []

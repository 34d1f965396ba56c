"""One model of what is anchored: the store's manifest and pointer as the ledger's records, and back.

The two sides list their fields in different orders (``FileEntry(path, size,
sha256)`` / ``ManifestFile(path, sha256, size)``, ``StoragePointer(bucket,
key, version_id, sha256)`` / ``Storage(bucket, key, sha256, version_id)``).
Every field gets a distinct value here, so a conversion that mixed two fields
up would fail; and only ``store/ledger_records.py`` may build these records.
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


def conversion_violations(files: dict[str, str]) -> list[str]:
    """Modules, other than store/ledger_records.py, that import a converted ledger record (to build one)."""
    out = []
    for name, source in files.items():
        if name == "mlops/store/ledger_records.py":
            continue
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and node.module == RECORDS:
                out += [f"{name} imports {a.name}" for a in node.names if a.name in CONVERTED]
    return out


def test_only_ledger_records_builds_the_ledger_records_of_the_store_model() -> None:
    files = {str(p.relative_to(ROOT)): p.read_text() for p in sorted((ROOT / "mlops").rglob("*.py"))}
    assert conversion_violations(files) == []
    assert "from_ledger_manifest" in ledger_records.__all__


def test_a_planted_conversion_outside_ledger_records_is_found() -> None:
    planted = "from modelledger.sdk.registry.records import ManifestFile, Storage\n"
    assert conversion_violations({"mlops/cli/model.py": planted}) == [
        "mlops/cli/model.py imports ManifestFile",
        "mlops/cli/model.py imports Storage",
    ]

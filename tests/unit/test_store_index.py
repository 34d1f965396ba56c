"""The anchored index: what it accepts and the exact reasons it refuses."""

from __future__ import annotations

import hashlib
import json

import pytest

from modelledger.mlops.store.index import AnchoredIndex, BlobRef, StoragePointer, StoredFile, blob_key


def _file(path: str, data: bytes, chunk: int = 4) -> StoredFile:
    parts = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    refs = tuple(
        BlobRef(blob_key(hashlib.sha256(p).hexdigest()), hashlib.sha256(p).hexdigest(), len(p), "v1") for p in parts
    )
    return StoredFile(path, len(data), hashlib.sha256(data).hexdigest(), refs)


def _index() -> AnchoredIndex:
    return AnchoredIndex((_file("b/w.bin", b"0123456789"), _file("a.txt", b"hi"), _file("empty", b"")), 4)


def test_an_index_round_trips_and_carries_both_digests() -> None:
    index = _index()
    body = index.to_bytes()
    assert AnchoredIndex.from_bytes(body) == index
    doc = json.loads(body)
    assert doc["format"] == "modelledger.store/2" and doc["chunkSize"] == 4
    assert doc["manifestDigest"] == index.manifest.manifest_digest
    assert doc["modelDigest"] == index.manifest.model_digest
    assert [c["size"] for c in doc["files"][1]["chunks"]] == [4, 4, 2]
    assert list(doc) == sorted(doc)  # canonical: keys in order, so the bytes (and the pointer's sha256) are stable


def _mutate(fn) -> bytes:
    doc = json.loads(_index().to_bytes())
    fn(doc)
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format="modelledger.store/1"), "format is 'modelledger.store/1'"),
        (lambda d: d["files"][0].update(path="../etc/passwd"), "must not contain empty, '.' or '..' segments"),
        (lambda d: d["files"][0].update(path="/abs"), "must be a relative path"),
        (lambda d: d["files"][1]["chunks"].pop(), "chunk sizes do not add up to the file size"),
        (
            lambda d: d["files"][0]["chunks"][0].update(key="blobs/sha256/" + "0" * 64),
            "is not named by a lowercase hex sha256",
        ),
        (lambda d: d.update(manifestDigest="0" * 64), "the index's digests do not match its files"),
        (lambda d: d["files"].append(d["files"][0]), "listed twice in the manifest"),
        (lambda d: d.pop("files"), "not a valid index: KeyError 'files'"),
    ],
)
def test_an_inconsistent_index_is_refused_with_the_reason(change, message: str) -> None:
    with pytest.raises(ValueError, match=message if message.startswith("not") else None) as info:
        AnchoredIndex.from_bytes(_mutate(change))
    assert message in str(info.value)


def test_a_pointer_needs_every_field() -> None:
    p = StoragePointer("b", "models/x/index.json", "v", "0" * 64)
    assert StoragePointer.from_json(p.to_json()) == p and p.uri == "s3://b/models/x/index.json"
    with pytest.raises(ValueError, match="needs bucket, key, versionId and sha256"):
        StoragePointer.from_json({"bucket": "b"})

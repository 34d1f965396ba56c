"""Model digests and verification on real files (no servers)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from modelledger.mlops.store.copy_checks import compare, verify_folder
from modelledger.mlops.store.digest import (
    FileEntry,
    Manifest,
    ModelTreeError,
    check_relative_path,
    dataframe_digest,
    dataset_digest,
    digest_folder,
    list_files,
    sha256_file,
)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "weights").mkdir(parents=True)
    (root / "MLmodel").write_text("flavors: {}\n")
    (root / "weights" / "w.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    (root / "conda.yaml").write_text("name: m\n")
    return root


def test_manifest_lists_every_file_with_size_and_sha256(model: Path) -> None:
    m = digest_folder(model)
    assert [f.path for f in m.files] == ["MLmodel", "conda.yaml", "weights/w.bin"]
    w = (model / "weights" / "w.bin").read_bytes()
    assert m.files[2] == FileEntry("weights/w.bin", len(w), hashlib.sha256(w).hexdigest())
    # model-signing's root digest: SHA-256 over the raw file digests in path order.
    root = hashlib.sha256(b"".join(bytes.fromhex(f.sha256) for f in m.files)).hexdigest()
    assert m.model_digest == root
    assert m.manifest_digest == hashlib.sha256(m.canonical_json()).hexdigest()
    assert m.canonical_json().startswith(b'{"files":[{"path":"MLmodel","sha256":"')


def test_digests_do_not_depend_on_worker_count_or_chunk_size(model: Path) -> None:
    assert digest_folder(model, workers=1) == digest_folder(model, workers=8)
    w = model / "weights" / "w.bin"
    assert (
        sha256_file(w, chunk=4096) == sha256_file(w) == (w.stat().st_size, hashlib.sha256(w.read_bytes()).hexdigest())
    )


def test_renaming_a_file_changes_the_manifest_digest_but_not_the_root_digest(model: Path) -> None:
    before = digest_folder(model)
    (model / "conda.yaml").rename(model / "conda2.yaml")
    after = digest_folder(model)
    assert after.model_digest == before.model_digest  # why the ledger keeps the whole manifest
    assert after.manifest_digest != before.manifest_digest


def test_symlink_inside_is_hashed_under_its_name(model: Path) -> None:
    (model / "link.bin").symlink_to(model / "weights" / "w.bin")
    m = digest_folder(model)
    link = next(f for f in m.files if f.path == "link.bin")
    assert link.sha256 == next(f for f in m.files if f.path == "weights/w.bin").sha256


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda root, tmp: (root / "out").symlink_to(tmp / "secret.txt"),
            "out: symlink points outside the model folder",
        ),
        (lambda root, tmp: (root / "up").symlink_to(root / ".." / "secret.txt"), "up: symlink points outside"),
        (lambda root, tmp: (root / "dir").symlink_to(root / "weights"), "dir: symlink to a folder is not supported"),
        (lambda root, tmp: os.mkfifo(root / "pipe"), "pipe: a FIFO cannot be part of a model"),
    ],
)
def test_unsafe_entries_are_refused_and_named(model: Path, tmp_path: Path, make, message: str) -> None:
    (tmp_path / "secret.txt").write_text("not yours")
    make(model, tmp_path)
    with pytest.raises(ModelTreeError, match=message):
        list_files(model)


@pytest.mark.parametrize("bad", ["/etc/passwd", "../x", "a/../b", "a//b", "./a", "a\\b", "", "a/."])
def test_traversal_and_absolute_names_are_refused(bad: str) -> None:
    with pytest.raises(ModelTreeError):
        check_relative_path(bad)
    with pytest.raises(ModelTreeError):
        Manifest((FileEntry(bad, 1, "0" * 64),))


@pytest.mark.parametrize(
    ("bad", "message"),
    [("a\x00b", "control"), ("a\nb", "control"), ("tab\there", "control"), ("del\x7f", "control"),
     ("c1\x85", "control"), ("x" * 4097, "at most 4096")],
)
def test_paths_the_chaincode_would_refuse_are_refused_before_any_upload(bad: str, message: str) -> None:
    with pytest.raises(ModelTreeError, match=message):
        check_relative_path(bad)
    assert check_relative_path("x" * 4096) and check_relative_path("naïve/ünïcode\xa0ok")


def test_manifest_rules() -> None:
    with pytest.raises(ModelTreeError, match="listed twice"):
        Manifest((FileEntry("a", 1, "0" * 64), FileEntry("a", 1, "0" * 64)))
    with pytest.raises(ModelTreeError, match="64 lowercase hex"):
        Manifest((FileEntry("a", 1, "A" * 64),))
    m = Manifest((FileEntry("b", 1, "1" * 64), FileEntry("a", 2, "2" * 64)))
    assert [f.path for f in m.files] == ["a", "b"]
    assert Manifest.from_json(m.to_json()) == m
    with pytest.raises(ModelTreeError, match="not a manifest"):
        Manifest.from_json({"files": [{"path": "a"}]})


def test_verify_names_every_kind_of_difference(model: Path) -> None:
    expected = digest_folder(model)
    assert verify_folder(model, expected).ok
    w = model / "weights" / "w.bin"
    data = bytearray(w.read_bytes())
    data[12345] ^= 0x01
    w.write_bytes(bytes(data))
    (model / "extra.txt").write_text("added")
    (model / "conda.yaml").rename(model / "env.yaml")
    report = verify_folder(model, expected)
    assert (report.changed, report.missing, report.extra) == (
        ["weights/w.bin"],
        ["conda.yaml"],
        ["env.yaml", "extra.txt"],
    )
    assert not report.ok


def test_verify_reports_an_escaping_symlink(model: Path, tmp_path: Path) -> None:
    expected = digest_folder(model)
    (tmp_path / "elsewhere").write_text("x")
    (model / "MLmodel").unlink()
    (model / "MLmodel").symlink_to(tmp_path / "elsewhere")
    report = verify_folder(model, expected)
    assert not report.ok and report.error == "MLmodel: symlink points outside the model folder"


def test_compare_is_exact() -> None:
    a = Manifest((FileEntry("x", 1, "1" * 64),))
    b = Manifest((FileEntry("x", 2, "1" * 64),))
    assert compare(a, b).changed == ["x"]


def test_dataset_digest_is_full_content(tmp_path: Path) -> None:
    f = tmp_path / "data.csv"
    f.write_text("a,b\n1,2\n")
    assert dataset_digest([f]) == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    d = tmp_path / "ds"
    d.mkdir()
    (d / "part-0.csv").write_text("a\n1\n")
    first = dataset_digest([d])
    (d / "part-0.csv").write_text("a\n2\n")
    assert dataset_digest([d]) != first
    with pytest.raises(ModelTreeError, match="not a file or folder"):
        dataset_digest([tmp_path / "missing"])


def test_dataframe_digest_covers_values_order_and_schema() -> None:
    import math

    import pandas as pd

    df = pd.DataFrame({"a": [1, 2, 3], "b": [0.1, float("nan"), math.inf], "c": ["x", None, "z"]})
    base = dataframe_digest(df)
    assert base == dataframe_digest(df.copy()) == dataframe_digest(df.set_index(pd.Index([7, 8, 9])))
    changed = df.copy()
    changed.loc[1, "a"] = 5
    assert dataframe_digest(changed) != base
    assert dataframe_digest(df.iloc[::-1]) != base  # row order counts
    assert dataframe_digest(df[["b", "a", "c"]]) != base  # column order counts
    assert dataframe_digest(df.astype({"a": "float64"})) != base  # dtype counts
    near = df.copy()
    near.loc[0, "b"] = 0.1 + 1e-18  # rounds to the same float64
    assert dataframe_digest(near) == base
    near.loc[0, "b"] = 0.10000000000000002
    assert dataframe_digest(near) != base
    ts = pd.DataFrame({"t": pd.to_datetime(["2026-01-01", None])})
    assert len(dataframe_digest(ts)) == 64


def test_manifest_order_is_by_path_segments_like_model_signing(tmp_path: Path) -> None:
    root = tmp_path / "m"
    (root / "a-b").mkdir(parents=True)
    (root / "a").mkdir()
    (root / "a-b" / "x").write_text("1")
    (root / "a" / "b").write_text("2")
    (root / "tokenizer.json").write_text("3")
    (root / "tokenizer").mkdir()
    (root / "tokenizer" / "vocab").write_text("4")
    paths = [f.path for f in digest_folder(root).files]
    assert paths == ["a/b", "a-b/x", "tokenizer/vocab", "tokenizer.json"]  # not plain string order


def test_symlink_loops_and_non_utf8_names_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "m"
    root.mkdir()
    (root / "loop").symlink_to(root / "loop")
    with pytest.raises(ModelTreeError, match="loop: symlink cannot be resolved"):
        list_files(root)
    (root / "loop").unlink()
    os.close(os.open(os.fsencode(root) + b"/bad\xff.bin", os.O_CREAT | os.O_WRONLY))
    with pytest.raises(ModelTreeError, match="file names must be valid UTF-8"):
        list_files(root)


def test_a_file_swapped_after_listing_is_refused_when_read(model: Path, tmp_path: Path) -> None:
    files = list_files(model)
    target = next(f for f in files if f.rel == "MLmodel")
    (tmp_path / "evil").write_text("not the model")
    (model / "MLmodel").unlink()
    (model / "MLmodel").symlink_to(tmp_path / "evil")
    with pytest.raises(ModelTreeError, match="MLmodel: cannot be opened as listed"):
        sha256_file(target)
    (model / "MLmodel.new").write_text("replaced")  # another inode, renamed over the name
    (model / "MLmodel.new").replace(model / "MLmodel")
    with pytest.raises(ModelTreeError, match="MLmodel: changed while the model was being read"):
        sha256_file(target)


def test_a_path_cannot_be_both_a_file_and_a_folder() -> None:
    h = "0" * 64
    with pytest.raises(ModelTreeError, match="a/b: listed as a file and as a folder of other files"):
        Manifest((FileEntry("a/b", 1, h), FileEntry("a/b/c", 1, h)))
    assert len(Manifest((FileEntry("a/b/c", 1, h), FileEntry("a/bc", 1, h))).files) == 2

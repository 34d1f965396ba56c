"""Model and dataset digests: a per-file SHA-256 manifest, compatible with OpenSSF model-signing.

A model folder becomes a :class:`Manifest`: every regular file, by its path
relative to the folder (POSIX separators), with its size and the SHA-256 of
its content. Two digests name it:

- ``model_digest``: model-signing's root digest, SHA-256 over the files' raw
  digests concatenated in path order (what a model-signing bundle names);
- ``manifest_digest``: SHA-256 of the canonical JSON of the whole manifest, so
  that it also covers file names and sizes, which the root digest does not.

The walk refuses what could make a digest lie about what is loaded later:
symlinks that leave the folder or point at folders, FIFOs, sockets and
devices. Files are hashed in parallel threads (hashlib releases the GIL), each
streamed through one fixed buffer, so memory stays constant whatever the size.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, Protocol

from modelledger.sdk.registry.limits import LIMITS

CHUNK = 8 * 1024 * 1024
MAX_PATH_CHARS = LIMITS.manifest_path_chars  # the chaincode's limit on a manifest path
HEX = frozenset("0123456789abcdef")


class ModelTreeError(ValueError):
    """The model folder holds something that cannot be digested safely; names the path."""


def path_order(path: str) -> tuple[str, ...]:
    """Sort key of manifest paths: by path segments, as model-signing orders its resources.

    (Plain string order differs when '-', '.' or ' ' meets '/': ``a-b/x`` vs ``a/b``.)
    """
    return tuple(path.split("/"))


@dataclass(frozen=True, order=True)
class FileEntry:
    """One file of a model."""

    path: str
    size: int
    sha256: str

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size}


@dataclass(frozen=True)
class Manifest:
    """Every file of a model, sorted by path."""

    files: tuple[FileEntry, ...]

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.files, key=lambda f: path_order(f.path)))
        if ordered != self.files:
            object.__setattr__(self, "files", ordered)
        seen: set[str] = set()
        for f in self.files:
            check_relative_path(f.path)
            if f.path in seen:
                raise ModelTreeError(f"{f.path}: listed twice in the manifest")
            seen.add(f.path)
            if len(f.sha256) != 64 or not set(f.sha256) <= HEX:
                raise ModelTreeError(f"{f.path}: sha256 must be 64 lowercase hex characters")
            if f.size < 0:
                raise ModelTreeError(f"{f.path}: size must not be negative")
        folders = {p.rsplit("/", i)[0] for p in seen for i in range(1, p.count("/") + 1)}
        clash = sorted(seen & folders)
        if clash:
            raise ModelTreeError(f"{clash[0]}: listed as a file and as a folder of other files")

    @property
    def model_digest(self) -> str:
        """model-signing's root digest: SHA-256 over the raw file digests in path order."""
        h = hashlib.sha256()
        for f in self.files:
            h.update(bytes.fromhex(f.sha256))
        return h.hexdigest()

    @property
    def manifest_digest(self) -> str:
        """SHA-256 of :meth:`canonical_json`: covers names, sizes and digests."""
        return hashlib.sha256(self.canonical_json()).hexdigest()

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    def canonical_json(self) -> bytes:
        """``{"files":[{"path","sha256","size"}...]}``, sorted, compact, UTF-8."""
        doc = {"files": [f.to_json() for f in self.files]}
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def to_json(self) -> dict[str, object]:
        return {"files": [f.to_json() for f in self.files]}

    @classmethod
    def from_json(cls, doc: dict[str, object]) -> Manifest:
        """Reads ``{"files": [{"path", "size", "sha256"}, ...]}`` (e.g. from the ledger)."""
        try:
            files = doc["files"]
            assert isinstance(files, list)
            return cls(tuple(FileEntry(str(f["path"]), int(f["size"]), str(f["sha256"])) for f in files))
        except (KeyError, TypeError, ValueError, AssertionError) as exc:
            raise ModelTreeError(f"not a manifest: {exc}") from exc


def check_relative_path(path: str) -> str:
    """Accepts only a normalised relative POSIX path inside the folder; returns it.

    The rule is the chaincode's for ``manifest.files[].path``, so a model the
    bridge reads is never refused by the ledger after its upload.

    Raises:
        ModelTreeError: Absolute, empty, ``.``/``..`` segments, backslashes, control characters
            (C0, DEL, C1) or over MAX_PATH_CHARS (4096) characters.
    """
    if not path or path.startswith("/") or "\\" in path:
        raise ModelTreeError(f"{path!r}: must be a relative path with '/' separators")
    if any(c < " " or "\x7f" <= c < "\xa0" for c in path):
        raise ModelTreeError(f"{path!r}: must not contain control characters")
    if len(path) > MAX_PATH_CHARS:
        raise ModelTreeError(f"{path[:40]!r}...: must be at most {MAX_PATH_CHARS} characters")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise ModelTreeError(f"{path!r}: must not contain empty, '.' or '..' segments")
    return path


def _inside(root: Path, target: Path) -> bool:
    try:
        target.relative_to(root)
    except ValueError:
        return False
    return True


class TreeFile(NamedTuple):
    """A file found by :func:`list_files`: its manifest path, where to read it, and its identity."""

    rel: str
    path: Path
    dev: int
    ino: int


def list_files(folder: str | Path) -> list[TreeFile]:
    """Every file to digest, in manifest order.

    Symlinks to files inside the folder are followed (hashed under the link's
    name); anything else unusual is refused. Each file's device and inode are
    kept, so reading it later can check it is still the same file.

    Raises:
        ModelTreeError: The folder is missing, or holds a symlink leaving it,
            pointing at a folder or looping, a FIFO, socket or device, or a name
            that is not valid UTF-8.
    """
    root = Path(folder)
    if not root.is_dir():
        raise ModelTreeError(f"{root}: not a folder")
    real_root = root.resolve()
    out: list[TreeFile] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        for name in sorted(dirnames + filenames):
            full = here / name
            rel = full.relative_to(root).as_posix()
            try:
                rel.encode("utf-8")
            except UnicodeEncodeError:
                raise ModelTreeError(f"{rel!r}: file names must be valid UTF-8") from None
            st = full.lstat()
            if stat.S_ISLNK(st.st_mode):
                try:
                    target = full.resolve(strict=True)
                except (RuntimeError, OSError) as exc:
                    raise ModelTreeError(f"{rel}: symlink cannot be resolved ({exc})") from exc
                if not _inside(real_root, target):
                    raise ModelTreeError(f"{rel}: symlink points outside the model folder")
                if target.is_dir():
                    raise ModelTreeError(f"{rel}: symlink to a folder is not supported")
                if not target.is_file():
                    raise ModelTreeError(f"{rel}: symlink to something that is not a regular file")
                if name in dirnames:
                    dirnames.remove(name)
                tst = target.stat()
                out.append(TreeFile(rel, target, tst.st_dev, tst.st_ino))
            elif stat.S_ISDIR(st.st_mode):
                continue
            elif stat.S_ISREG(st.st_mode):
                out.append(TreeFile(rel, full, st.st_dev, st.st_ino))
            else:
                kind = "FIFO" if stat.S_ISFIFO(st.st_mode) else "device or socket"
                raise ModelTreeError(f"{rel}: a {kind} cannot be part of a model")
    out.sort(key=lambda f: path_order(f.rel))
    return out


def open_checked(tf: TreeFile) -> BinaryIO:
    """Opens a listed file without following links and checks it is still the file that was listed."""
    try:
        fd = os.open(tf.path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise ModelTreeError(f"{tf.rel}: cannot be opened as listed ({exc.strerror})") from exc
    st = os.fstat(fd)
    if (st.st_dev, st.st_ino) != (tf.dev, tf.ino) or not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise ModelTreeError(f"{tf.rel}: changed while the model was being read")
    return os.fdopen(fd, "rb", buffering=0)


def sha256_file(path: Path | TreeFile, chunk: int = CHUNK) -> tuple[int, str]:
    """Size and SHA-256 of a file, streamed through one reusable buffer."""
    h = hashlib.sha256()
    buf = bytearray(chunk)
    view = memoryview(buf)
    size = 0
    with open_checked(path) if isinstance(path, TreeFile) else path.open("rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
            size += n
    return size, h.hexdigest()


def default_workers() -> int:
    """Threads for hashing: one per core, at least 2."""
    return max(2, os.cpu_count() or 2)


def digest_folder(folder: str | Path, workers: int | None = None) -> Manifest:
    """The manifest of a model folder, hashing files in parallel."""
    files = list_files(folder)
    with ThreadPoolExecutor(max_workers=workers or default_workers()) as pool:
        results = list(pool.map(sha256_file, files))
    return Manifest(tuple(FileEntry(f.rel, size, digest) for f, (size, digest) in zip(files, results, strict=True)))


class ReadableFile(Protocol):
    """A file read once as a stream: its manifest path and a context manager giving a reader.

    The reader has ``read(size)`` and may have ``finish(size_read)``, which
    raises if the file changed while it was read (S3 objects and local files
    of :mod:`~modelledger.mlops.store.upload` and :mod:`~modelledger.mlops.store.source` do).
    """

    @property
    def rel(self) -> str: ...

    def open(self) -> Any: ...


def sha256_stream(file: ReadableFile, chunk: int = CHUNK) -> FileEntry:
    """The manifest entry of one file, streamed through one buffer (constant memory)."""
    h = hashlib.sha256()
    size = 0
    with file.open() as reader:
        while data := reader.read(chunk):
            h.update(data)
            size += len(data)
        finish = getattr(reader, "finish", None)
        if finish is not None:
            finish(size)
    return FileEntry(file.rel, size, h.hexdigest())


def digest_files(files: Iterable[ReadableFile], workers: int | None = None) -> Manifest:
    """The manifest of a model given as files to read (local or S3 objects), hashed in parallel."""
    items = list(files)
    with ThreadPoolExecutor(max_workers=workers or default_workers()) as pool:
        return Manifest(tuple(pool.map(sha256_stream, items)))


class ManifestDiff(NamedTuple):
    """The paths in which two manifests differ, each list in manifest order."""

    only_first: list[str]
    only_second: list[str]
    changed: list[str]  # in both, with another size or SHA-256

    def __bool__(self) -> bool:
        return bool(self.only_first or self.only_second or self.changed)


def manifest_differences(first: Manifest, second: Manifest) -> ManifestDiff:
    """What differs between two manifests, file by file (falsy when they are equal)."""
    a = {f.path: f for f in first.files}
    b = {f.path: f for f in second.files}

    def ordered(paths: Iterable[str]) -> list[str]:
        return sorted(paths, key=path_order)

    return ManifestDiff(
        ordered(a.keys() - b.keys()),
        ordered(b.keys() - a.keys()),
        ordered(p for p in a.keys() & b.keys() if a[p] != b[p]),
    )


def dataset_digest(paths: Iterable[str | Path]) -> str:
    """Full-content SHA-256 of a dataset given as files and folders (never MLflow's sampled digest).

    One file: the SHA-256 of its bytes. Anything else (a folder, several
    paths): the manifest digest over every file, named relative to each
    given path's parent, so names and contents both count.
    """
    items = [Path(p) for p in paths]
    if len(items) == 1 and items[0].is_file():
        return sha256_file(items[0])[1]
    entries: list[FileEntry] = []
    for item in items:
        if item.is_dir():
            for tf in list_files(item):
                size, digest = sha256_file(tf)
                entries.append(FileEntry(f"{item.name}/{tf.rel}", size, digest))
        elif item.is_file():
            size, digest = sha256_file(item)
            entries.append(FileEntry(item.name, size, digest))
        else:
            raise ModelTreeError(f"{item}: not a file or folder")
    return Manifest(tuple(entries)).manifest_digest


def _canonical_value(value: object) -> object:
    """A JSON-safe, type-tagged form of one cell, so equal data always serialises equally."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        # repr round-trips every float exactly; NaN and infinities are not JSON numbers.
        return {"float": repr(value)} if value != value or value in (float("inf"), float("-inf")) else value
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return {"bytes": bytes(value).hex()}
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return _canonical_value(item())
    iso = getattr(value, "isoformat", None)  # datetime, date, pandas Timestamp
    if callable(iso):
        return {"time": iso()}
    if value != value:  # pandas NA / NaT compare unequal to themselves
        return {"missing": True}
    return {type(value).__name__: str(value)}


def dataframe_digest(frame: object) -> str:
    """Full-content SHA-256 of a DataFrame (pandas or anything with ``columns``, ``dtypes``, ``itertuples``).

    The canonical serialisation is one JSON line with the column names and
    dtypes, then one JSON line per row with type-tagged cells; the row order
    and the column order count, the index does not.
    """
    columns = [str(c) for c in frame.columns]  # type: ignore[attr-defined]
    dtypes = [str(t) for t in frame.dtypes]  # type: ignore[attr-defined]
    h = hashlib.sha256()
    h.update(json.dumps({"columns": columns, "dtypes": dtypes}, separators=(",", ":")).encode() + b"\n")
    for row in frame.itertuples(index=False, name=None):  # type: ignore[attr-defined]
        cells = [_canonical_value(v) for v in row]
        h.update(json.dumps(cells, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode() + b"\n")
    return h.hexdigest()

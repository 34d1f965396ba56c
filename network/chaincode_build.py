"""Building and packaging the registry chaincode: source digest, Go build, ccaas packages.

The server binary is built from ``chaincode/`` and named by the digest of its
Go sources, so one binary per version of the source. Peers do not run it:
they install a chaincode-as-a-service (ccaas) package whose
``connection.json`` tells them where the organisation's chaincode server
listens (see :mod:`modelledger.network.chaincode_servers`). Packages are
byte-for-byte reproducible, so their package id changes only with their
content.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from modelledger.network.errors import ChaincodeError
from modelledger.runtime.private_files import PRIVATE_UMASK, make_private_dir
from modelledger.runtime.settings import REPO_ROOT

CHAINCODE_SOURCE = REPO_ROOT / "chaincode"
# Files whose content decides the chaincode binary.
_SOURCE_SUFFIXES = (".go", "go.mod", "go.sum")


def source_digest(src: Path = CHAINCODE_SOURCE) -> str:
    """SHA-256 over the chaincode's Go sources (names and contents, tests excluded)."""
    h = hashlib.sha256()
    files = sorted(
        p
        for p in src.rglob("*")
        if p.is_file() and p.name.endswith(_SOURCE_SUFFIXES) and not p.name.endswith("_test.go")
    )
    if not files:
        raise ChaincodeError(f"no Go sources found in {src}")
    for p in files:
        rel = p.relative_to(src).as_posix()
        data = p.read_bytes()
        h.update(f"{rel}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def build_binary(out: Path, src: Path = CHAINCODE_SOURCE) -> bool:
    """Builds the chaincode server into ``out`` unless it exists; returns True if built now."""
    if out.is_file():
        return False
    go = shutil.which("go")
    if go is None:
        raise ChaincodeError("the `go` command is not on PATH; it is needed to build the chaincode")
    make_private_dir(out.parent)
    tmp = out.with_suffix(".tmp")
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false"}
    proc = subprocess.run(
        [go, "build", "-trimpath", "-o", str(tmp), "."],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
        umask=PRIVATE_UMASK,
    )
    if proc.returncode != 0:
        raise ChaincodeError(f"go build in {src} failed:\n{(proc.stdout + proc.stderr).strip()[-3000:]}")
    tmp.replace(out)
    return True


def _tar_gz(files: dict[str, bytes]) -> bytes:
    """A gzipped tar of ``files`` with fixed metadata, so equal input gives equal bytes."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(files[name]))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def ccaas_package(label: str, connection: dict[str, Any]) -> bytes:
    """A chaincode-as-a-service package: ``metadata.json`` plus ``code.tar.gz`` with ``connection.json``."""
    code = _tar_gz({"connection.json": json.dumps(connection, indent=2, sort_keys=True).encode()})
    metadata = json.dumps({"label": label, "type": "ccaas"}, sort_keys=True).encode()
    return _tar_gz({"code.tar.gz": code, "metadata.json": metadata})


def package_id(label: str, package: bytes) -> str:
    """The id Fabric gives an installed package: ``label:sha256(package)``."""
    return f"{label}:{hashlib.sha256(package).hexdigest()}"

"""Our chaincode-as-a-service external builder scripts, run as the peer runs them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from modelledger.network.configuration import CCAAS_BUILDER_DIR

BIN = CCAAS_BUILDER_DIR / "bin"


def run(step: str, *args: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / step), *map(str, args)], capture_output=True, text=True, check=False)


def test_detect_accepts_ccaas_only(tmp_path: Path) -> None:
    src, meta = tmp_path / "src", tmp_path / "meta"
    src.mkdir()
    meta.mkdir()
    (meta / "metadata.json").write_text(json.dumps({"type": "ccaas", "label": "registry_1"}))
    assert run("detect", src, meta).returncode == 0
    (meta / "metadata.json").write_text(json.dumps({"type": "golang", "label": "x"}))
    assert run("detect", src, meta).returncode != 0
    (meta / "metadata.json").unlink()
    assert run("detect", src, meta).returncode != 0


def test_build_and_release_place_connection_json(tmp_path: Path) -> None:
    src, meta, out, rel = (tmp_path / d for d in ("src", "meta", "out", "rel"))
    for d in (src, meta, out, rel):
        d.mkdir()
    conn = {"address": "127.0.0.1:9999", "dial_timeout": "10s", "tls_required": False}
    (src / "connection.json").write_text(json.dumps(conn))
    assert run("build", src, meta, out).returncode == 0
    assert run("release", out, rel).returncode == 0
    assert json.loads((rel / "chaincode" / "server" / "connection.json").read_text()) == conn


def test_build_fails_clearly_without_connection_json(tmp_path: Path) -> None:
    src, meta, out = (tmp_path / d for d in ("src", "meta", "out"))
    for d in (src, meta, out):
        d.mkdir()
    result = run("build", src, meta, out)
    assert result.returncode != 0
    assert "connection.json not found" in result.stderr

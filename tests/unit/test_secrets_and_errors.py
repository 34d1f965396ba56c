"""Secrets stay private and out of error messages; missing tools are explained."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from modelledger.network.binaries import FabricBinaries
from modelledger.network.ca import NODE_OU_CONFIG, normalize_msp
from modelledger.network.errors import CommandError, ToolsMissingError
from modelledger.runtime.private_files import read_or_create_secret


def test_secrets_are_random_stable_and_owner_only(tmp_path: Path) -> None:
    a = read_or_create_secret(tmp_path / "s" / "a.secret")
    b = read_or_create_secret(tmp_path / "s" / "b.secret")
    assert a != b and len(a) == 32
    assert read_or_create_secret(tmp_path / "s" / "a.secret") == a
    assert stat.S_IMODE((tmp_path / "s" / "a.secret").stat().st_mode) == 0o600


def test_command_errors_mask_secrets(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "fabric-ca-client"
    tool.write_text('#!/bin/sh\necho "Error: bad password in $2" >&2\nexit 3\n')
    tool.chmod(0o755)
    bins = FabricBinaries(bin_dir, tmp_path)
    with pytest.raises(CommandError) as exc:
        bins.run("fabric-ca-client", ["enroll", "https://admin:s3cr3t@host"], secrets=("s3cr3t",))
    assert exc.value.returncode == 3
    assert "s3cr3t" not in str(exc.value)
    assert "s3cr3t" not in " ".join(exc.value.argv)
    assert "https://admin:***@host" in str(exc.value)


def test_cobra_usage_text_is_dropped_from_errors() -> None:
    err = CommandError(["/x/fabric-ca-server"], 1, "Error: unknown flag: --nope\nUsage:\n  lots of flags\n")
    assert str(err) == "fabric-ca-server exited with 1:\nError: unknown flag: --nope"


def test_missing_tools_name_the_binaries_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ToolsMissingError, match=r"missing Fabric tools in .*: peer, orderer.*run `make tools`"):
        FabricBinaries.locate(tmp_path)


def test_enrolled_msp_gets_nodeou_config(tmp_path: Path) -> None:
    (tmp_path / "cacerts").mkdir()
    (tmp_path / "cacerts" / "127-0-0-1-7054-ca-Org1.pem").write_text("CERT")
    normalize_msp(tmp_path)
    assert (tmp_path / "cacerts" / "ca.pem").read_text() == "CERT"
    assert (tmp_path / "config.yaml").read_text() == NODE_OU_CONFIG
    assert "Enable: true" in NODE_OU_CONFIG

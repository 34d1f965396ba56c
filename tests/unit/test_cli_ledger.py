"""``modelledger ledger verify`` on block files: its verdict, exit code and genesis anchor (live peers: integration)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelledger.mlops.cli.app import app
from modelledger.network.layout import NetworkLayout
from modelledger.sdk.ledger.blocks import header_hash, read_block_files

DATA = Path(__file__).parent / "data" / "ledger"


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> NetworkLayout:
    """A state folder whose connection profile names no peer, with the channel's genesis block beside it."""
    monkeypatch.setenv("MODELLEDGER_STATE_DIR", str(tmp_path / "state"))
    layout = NetworkLayout(tmp_path / "network")
    layout.root.mkdir()
    layout.connection_profile.write_text("channel: ledger\norganizations: {}\n")
    layout.channel_block("ledger").parent.mkdir()
    layout.channel_block("ledger").write_bytes(next(read_block_files(DATA / "org1")).SerializeToString())
    return layout


def verify(layout: NetworkLayout, *extra: str) -> tuple[int, dict]:
    args = ["ledger", "verify", "--block-dir", str(DATA / "org1"), "--profile", str(layout.connection_profile)]
    result = CliRunner().invoke(app, [*args, "--json", *extra])
    return result.exit_code, json.loads(result.stdout)


def checks(doc: dict) -> dict[str, dict]:
    return {c["name"]: c for c in doc["checks"]}


def test_with_no_live_peer_the_verdict_is_incomplete_and_the_exit_code_3(stack: NetworkLayout) -> None:
    code, doc = verify(stack)
    assert code == 3 and doc["ok"] is False and doc["verdict"] == "incomplete"
    assert doc["unchecked"] == ["height", "same-blocks", "validation-flags"]
    # The genesis block configtxgen wrote in the stack's state folder is the anchor, by default.
    genesis = checks(doc)["genesis"]
    assert genesis["ok"] is True and str(stack.channel_block("ledger")) in genesis["detail"]
    result = CliRunner().invoke(
        app, ["ledger", "verify", "--block-dir", str(DATA / "org1"), "--profile", str(stack.connection_profile)]
    )
    assert result.exit_code == 3 and result.stdout.startswith("incomplete: ")
    assert "not verified in full: height, same-blocks, validation-flags could not be made" in result.stdout


def test_the_genesis_block_can_be_pinned_and_a_wrong_one_fails(stack: NetworkLayout) -> None:
    genesis = header_hash(next(read_block_files(DATA / "org1")).header).hex()
    code, doc = verify(stack, "--genesis-hash", genesis)
    assert code == 3 and checks(doc)["genesis"]["ok"] is True and "--genesis-hash" in checks(doc)["genesis"]["detail"]
    assert doc["genesis_block_hash"] == genesis
    code, doc = verify(stack, "--genesis-hash", "ab" * 32)
    assert code == 1 and doc["verdict"] == "failed" and checks(doc)["genesis"]["ok"] is False
    code, doc = verify(stack, "--genesis-hash", "xyz")
    assert code == 2 and "64 hex digits" in doc["error"]
    # Without the state folder's genesis block nor a pinned hash, the check is not made, and says why.
    stack.channel_block("ledger").unlink()
    code, doc = verify(stack)
    assert code == 3 and "genesis" in doc["unchecked"]
    assert "does not exist; give --genesis-hash" in checks(doc)["genesis"]["detail"]


def test_a_half_written_block_file_is_a_failed_hash_chain_not_an_error(stack: NetworkLayout, tmp_path: Path) -> None:
    data = (DATA / "org1" / "blockfile_000000").read_bytes()
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "blockfile_000000").write_bytes(data[: len(data) - 100])
    args = ["ledger", "verify", "--block-dir", str(copy), "--profile", str(stack.connection_profile), "--json"]
    result = CliRunner().invoke(app, args)
    doc = json.loads(result.stdout)
    assert result.exit_code == 1 and "error" not in doc and doc["verdict"] == "failed"
    assert doc["blocks_verified"] == 7 and doc["broken_block"] == 7
    hash_chain = checks(doc)["hash-chain"]
    assert hash_chain["ok"] is False and f"the file ends at byte {len(data) - 100}" in hash_chain["detail"]
    assert checks(doc)["genesis"]["ok"] is True  # the complete blocks were verified

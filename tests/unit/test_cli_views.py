"""The CLI's views of verifications and statuses, on rich consoles forced to a terminal 80 and 200 columns wide
and to a pipe (docs/operations.md, "Output").

The views are the commands' own functions, given the real result and status types filled with long paths,
URIs and identifiers. On a terminal no line is wider than the terminal unless it holds one word alone (a URI
longer than the line), and every word of the unwrapped text is there in order: lines were broken at spaces,
never inside a word, and nothing was cut.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelledger.mlops.cli import output
from modelledger.mlops.cli import store as store_cli
from modelledger.mlops.cli.app import app
from modelledger.mlops.cli.output import CliConsole
from modelledger.mlops.store import VerifyReport
from modelledger.mlops.store import fetch as store_fetch
from modelledger.mlops.store.verification import SIGNATURE, SIGNED_DIGEST, SIGNER_CHAIN, SIGNER_IDENTITY, Verification
from modelledger.sdk.ledger.checks import Check
from tests.cli_capture import strip_ansi, too_wide

NAME = "breast-cancer-classifier-with-a-long-name"
URI = f"s3://modelledger-anchored/models/{hashlib.sha256(b'manifest').hexdigest()}/index.json"  # 108 characters
DIGEST = hashlib.sha256(b"model").hexdigest()
FINGERPRINT = hashlib.sha256(b"certificate").hexdigest()


def terminal(width: int) -> tuple[CliConsole, io.StringIO]:
    out = io.StringIO()
    return CliConsole(file=out, width=width, force_terminal=True, color_system="standard"), out


def pipe() -> tuple[CliConsole, io.StringIO]:
    out = io.StringIO()
    return CliConsole(file=out, force_terminal=False), out


def printed_on(
    con: CliConsole, out: io.StringIO, monkeypatch: pytest.MonkeyPatch, modules: tuple[object, ...] = ()
) -> Callable[[], str]:
    """Makes ``con`` the CLI's standard output (in ``output`` and each of ``modules``); returns a reader of
    what was printed, terminal sequences removed."""
    for module in (output, *modules):
        monkeypatch.setattr(module, "console", con)
    return lambda: strip_ansi(out.getvalue())


def assert_wrapped_whole(text: str, unwrapped: str, width: int) -> None:
    """``text`` is ``unwrapped`` broken at spaces into lines of at most ``width`` (but a word alone)."""
    assert not too_wide(text, width), too_wide(text, width)
    assert text.split() == unwrapped.split()
    assert "…" not in text


# --------------------------------------------------------------------------- store verify / fetch
def verification() -> Verification:
    """A verification of the anchored copy that holds, with long details and a warning naming a key."""
    content = VerifyReport(
        files=8,
        size=59_000,
        anchored=True,
        lock_mode="COMPLIANCE",
        retain_until=dt.datetime(2036, 12, 7, 10, 0, tzinfo=dt.UTC),
        warnings=[f"a newer version sits over the index key of {URI}: a plain GET no longer gives the ledger's one"],
    )
    checks = [
        Check("bytes", True, f"the bytes at {URI} version v1 are the ledger's manifest, digest {DIGEST}"),
        Check(SIGNATURE, True, "the signature bundle verifies over the manifest the ledger names"),
        Check(SIGNER_CHAIN, True, "the signer's certificate chains to Org1MSP's root in the channel configuration"),
        Check(SIGNER_IDENTITY, True, f"the signer is registrar@Org1MSP, fingerprint {FINGERPRINT}"),
        Check(SIGNED_DIGEST, True, f"the bundle signs the ledger's model digest {DIGEST}"),
    ]
    return Verification(
        target=URI,
        name=NAME,
        version="1",
        checks=checks,
        content=content,
        signed_by="registrar@Org1MSP",
        ledger_status="REGISTERED",
    )


def show_verification() -> None:
    store_cli._verified(verification(), as_json=False)
    store_cli._report(VerifyReport(files=8, size=59_000), f"/home/someone/models/{NAME}/artifacts", as_json=False)


@pytest.mark.parametrize("width", [80, 200])
def test_store_verify_wraps_its_verdict_summary_and_warning_at_spaces(
    monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    read = printed_on(*pipe(), monkeypatch, (store_cli,))
    show_verification()
    unwrapped = read()
    assert len(unwrapped.splitlines()) == 9 and all(len(line) > 80 for line in unwrapped.splitlines()[:2])
    read = printed_on(*terminal(width), monkeypatch, (store_cli,))
    show_verification()
    assert_wrapped_whole(read(), unwrapped, width)


def test_store_fetch_wraps_its_verdict_at_spaces(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(store_cli, "_evidence", lambda *args: None)
    monkeypatch.setattr(store_cli, "_s3", lambda *args: None)
    monkeypatch.setattr(store_fetch, "fetch_verified", lambda client, evidence, dest: verification())
    dest = tmp_path / f"fetched-{NAME}-version-1-from-the-anchored-copy"
    texts = []
    for con, out in (pipe(), terminal(80)):
        read = printed_on(con, out, monkeypatch, (store_cli,))
        result = CliRunner().invoke(app, ["store", "fetch", str(dest), "--ledger", NAME, "1"])
        assert result.exit_code == 0, result.output
        texts.append(read())
    unwrapped, text = texts
    assert len(unwrapped.splitlines()) == 2 and unwrapped.startswith(f"fetched into {dest}: verified")
    assert_wrapped_whole(text, unwrapped, 80)

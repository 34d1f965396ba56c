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
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from modelledger.mlops.cli import chaincode as chaincode_cli
from modelledger.mlops.cli import network as network_cli
from modelledger.mlops.cli import output
from modelledger.mlops.cli import store as store_cli
from modelledger.mlops.cli.app import app
from modelledger.mlops.cli.bridge import BRIDGE_COMMANDS
from modelledger.mlops.cli.output import CliConsole
from modelledger.mlops.cli.servers import MLFLOW_COMMANDS, S3_COMMANDS, ServerCommands, render_server
from modelledger.mlops.store import VerifyReport
from modelledger.mlops.store import fetch as store_fetch
from modelledger.mlops.store.verification import SIGNATURE, SIGNED_DIGEST, SIGNER_CHAIN, SIGNER_IDENTITY, Verification
from modelledger.network.fabric import NetworkStatus
from modelledger.runtime.status import NOT_RUNNING, ServerStatus
from modelledger.sdk.ledger.checks import Check
from tests.cli_capture import pipe, read_tsv, strip_ansi, terminal, too_wide

NAME = "breast-cancer-classifier-with-a-long-name"
URI = f"s3://modelledger-anchored/models/{hashlib.sha256(b'manifest').hexdigest()}/index.json"  # 108 characters
DIGEST = hashlib.sha256(b"model").hexdigest()
FINGERPRINT = hashlib.sha256(b"certificate").hexdigest()


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


# --------------------------------------------------------------------------- network, chaincode, s3, mlflow, bridge status
# A long state folder (relative: only its length matters to the views).
STATE = f"work/checkouts/a-checkout-of-modelledger-for-{NAME}/.state"
CHANNEL = "modelledger-registry-channel-with-a-long-name"
# Prose of a health check, which wraps inside its cell (its longest word fits a 200-column table).
REFUSED = (
    "health check failed: GET https://127.0.0.1:19443/healthz: connection refused after 3 attempts over 9 seconds; "
    "its log says why (modelledger network logs peer1-Org2)"
)


def server(name: str, address: str, state: str = "ok", **details: object) -> ServerStatus:
    """A status of ``name``: ``ok`` (running, healthy), ``sick`` (running, its check refused) or ``down``."""
    running, healthy = state != "down", state == "ok"
    return ServerStatus(
        name=name,
        address=address,
        running=running,
        healthy=healthy,
        detail="ready" if healthy else REFUSED if running else NOT_RUNNING,
        pid=424242 if running else None,
        rss_kib=123_456 if running else 0,
        peak_rss_kib=234_567 if running else 0,
        log=f"{STATE}/{name}/logs/{name}.log",
        details=details,
    )


def network_status() -> NetworkStatus:
    heights = {CHANNEL: 1234}
    processes = [
        server("ca-Org1-certificate-authority", "https://127.0.0.1:17054", kind="ca", org="Org1MSP", heights={}),
        server("orderer0-OrdererOrg", "127.0.0.1:17050", kind="orderer", org="OrdererOrg", heights=heights),
        server("peer0-Org1", "127.0.0.1:17051", kind="peer", org="Org1MSP", heights=heights),
        server("peer1-Org2", "127.0.0.1:19051", "sick", kind="peer", org="Org2MSP", heights={}),
        server(
            "registry-Org1MSP-chaincode-server", "127.0.0.1:19999", "down", kind="chaincode", org="Org1MSP", heights={}
        ),
    ]
    members = {
        "application_orgs": ["Org1MSP", "Org2MSP"],
        "orderer_orgs": ["OrdererOrg"],
        "consenters": ["orderer0.ordererorg.modelledger.local:17050", "orderer1.ordererorg.modelledger.local:17150"],
    }
    return NetworkStatus(CHANNEL, processes, members, f"{STATE}/network")


def chaincode_status() -> dict[str, Any]:
    servers = [
        server("registry-Org1MSP-chaincode-server", "127.0.0.1:19999"),
        server("registry-Org2MSP-chaincode-server", "127.0.0.1:29999", "sick"),
    ]
    return {
        "name": "modelledger-registry",
        "deployed": {"version": "1.3", "sequence": 4},
        "committed": {"version": "1.3", "sequence": 4},
        "source_changed_since_deploy": True,
        "servers": [s.to_dict() for s in servers],
    }


BUCKET = {
    "bucket": "modelledger-anchored-artifacts-with-a-long-bucket-name",
    "ok": False,
    "object_lock": "Enabled",
    "retention_mode": "GOVERNANCE",
    "retention_days": 3650,
    "versioning": "Enabled",
}
S3 = server("minio", "127.0.0.1:19000", endpoint="https://127.0.0.1:19000", bucket=BUCKET, state_dir=f"{STATE}/s3")
S3 = replace(S3, problems=(f"bucket {BUCKET['bucket']} is not as configured: GOVERNANCE, not COMPLIANCE",))
MLFLOW = server(
    "mlflow",
    "127.0.0.1:15000",
    "sick",
    tracking_uri="https://127.0.0.1:15000",
    backend=f"sqlite:///{STATE}/mlflow/mlflow.db",
    artifacts="modelledger-s3://modelledger-mlflow-artifacts-with-a-long-bucket-name/artifacts",
)
BRIDGE = replace(
    server("bridge", "127.0.0.1:18089", url="https://127.0.0.1:18089/webhooks/mlflow/model-version-created"),
    detail="outbox: 3 pending, 1 leased, 1234 done, 1 dead, 2 in conflict (see modelledger bridge jobs)",
)


def render_servers(status: ServerStatus, spec: ServerCommands) -> Callable[[], None]:
    return lambda: render_server(status, spec.title(status), spec.fields(status))


# Each view: how to print it, the identifiers it must show whole, and its pipe form's header (None: key/value).
VIEWS: dict[str, tuple[Callable[[], None], list[str], list[str] | None]] = {
    "network": (
        lambda: network_cli.render_status(network_status()),
        [
            *(p.name for p in network_status().processes),
            *(p.address.removeprefix("https://") for p in network_status().processes),
            "orderer0.ordererorg.modelledger.local:17050",
            f"{STATE}/network",
            CHANNEL,
        ],
        ["process", "address", "pid", "health", "height", "RSS MiB"],
    ),
    "chaincode": (
        lambda: chaincode_cli.render_status(chaincode_status()),
        [*(s["name"] for s in chaincode_status()["servers"]), "127.0.0.1:19999", "127.0.0.1:29999"],
        ["server", "address", "pid", "health", "RSS MiB"],
    ),
    "s3": (
        render_servers(S3, S3_COMMANDS),
        ["https://127.0.0.1:19000", BUCKET["bucket"], f"{STATE}/s3", S3.log],
        None,
    ),
    "mlflow": (
        render_servers(MLFLOW, MLFLOW_COMMANDS),
        ["https://127.0.0.1:15000", f"sqlite:///{STATE}/mlflow/mlflow.db", MLFLOW.details["artifacts"], MLFLOW.log],
        None,
    ),
    "bridge": (render_servers(BRIDGE, BRIDGE_COMMANDS), [BRIDGE.details["url"], BRIDGE.log], None),
}


@pytest.mark.parametrize("width", [80, 200])
@pytest.mark.parametrize("view", sorted(VIEWS))
def test_a_status_view_on_a_terminal_shows_every_identifier_whole(
    monkeypatch: pytest.MonkeyPatch, view: str, width: int
) -> None:
    render, identifiers, _ = VIEWS[view]
    con, out = terminal(width)
    read = printed_on(con, out, monkeypatch)
    render()
    text = read()
    assert "\x1b[" in out.getvalue() and "…" not in text
    assert ("│" in text) == (width == 200)  # a table when it fits, else blocks
    assert not too_wide(text, width), too_wide(text, width)
    lines = text.splitlines()
    assert [i for i in identifiers if not any(i in line for line in lines)] == []


@pytest.mark.parametrize("view", sorted(VIEWS))
def test_a_status_view_in_a_pipe_is_plain_tab_separated_lines(monkeypatch: pytest.MonkeyPatch, view: str) -> None:
    render, identifiers, header = VIEWS[view]
    read = printed_on(*pipe(), monkeypatch)
    render()
    text = read()
    assert "\x1b" not in text and "…" not in text
    if header is None:  # key<TAB>value
        assert all(len(line.split("\t")) == 2 for line in text.splitlines())
        fields = dict(line.split("\t") for line in text.splitlines())
        assert [i for i in identifiers if i not in fields.values()] == []
    else:
        got, records = read_tsv(text)  # every record has the header's number of fields
        assert got == header and records
        assert [i for i in identifiers if not any(i in line for line in text.splitlines())] == []

"""``modelledger model approve|reject|revoke|deploy|grant|revoke-access``: one line for people, the record for
scripts, the chaincode's reason on a refusal, and nothing sent on bad input.

The gateway and the registry client are faked (no Fabric); the refusals are the SDK's own typed errors, built
from a Gateway error as the client builds them.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import grpc
import pytest
from typer.testing import CliRunner

from modelledger.mlops.cli import governance
from modelledger.mlops.cli.app import app
from modelledger.sdk.gateway.errors import CommitError, EndorseError, ErrorDetail
from modelledger.sdk.registry.client import refusal
from modelledger.sdk.registry.records import Model, ModelVersion
from modelledger.sdk.registry.statuses import STATUSES
from tests.unit.cli_registry_fakes import route_registry_to


def endorse_refusal(message: str) -> EndorseError:
    """The Gateway error a chaincode refusal arrives as: gRPC status, then each peer's detail."""
    return EndorseError(
        "f" * 64,
        grpc.StatusCode.ABORTED,
        "failed to endorse transaction, see attached details for more info",
        (ErrorDetail("peer0.org1.example.com:7051", "Org1MSP", f"chaincode response 500, {message}"),),
    )


@dataclasses.dataclass
class Ledger:
    """What the fake client was asked (each call as (method, role of org, args)) and what it answers."""

    calls: list[tuple[str, str, tuple[Any, ...]]] = dataclasses.field(default_factory=list)
    status: str = "APPROVED"
    refuse: Exception | None = None


@pytest.fixture
def ledger(monkeypatch: pytest.MonkeyPatch) -> Ledger:
    held = Ledger()

    class FakeClient:
        def __init__(self, network: Any, chaincode: str) -> None:
            self.who = network

        def _answer(self, method: str, *args: Any) -> Any:
            held.calls.append((method, self.who, args))
            if held.refuse is not None:
                raise held.refuse
            if method in ("grant_access", "revoke_access"):
                return Model(name=args[0], owner="Org1MSP", grants=[args[1]] if method == "grant_access" else [])
            return ModelVersion(name=args[0], version=args[1], owner="Org1MSP", status=held.status)

        def __getattr__(self, method: str) -> Any:
            return lambda *args: self._answer(method, *args)

    route_registry_to(monkeypatch, FakeClient)
    return held


def run(*args: str) -> Any:
    return CliRunner().invoke(app, ["model", *args])


# command line -> (client method, arguments it gets, default role, what the line says happened)
COMMANDS = {
    "approve": (["approve", "m", "1", "--comment", "ok"], "approve", ("m", "1", "ok"), "approver", "approved by"),
    "reject": (["reject", "m", "1", "--reason", "bias"], "reject", ("m", "1", "bias"), "approver", "rejected by"),
    "revoke": (["revoke", "m", "1", "--reason", "leak"], "revoke", ("m", "1", "leak"), "approver", "revoked by"),
    "deploy": (
        ["deploy", "m", "1", "--environment", "prod", "--endpoint", "https://m/v1"],
        "record_deployment",
        ("m", "1", "prod", "https://m/v1"),
        "operator",
        "deployed to prod at https://m/v1 by",
    ),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_decision_acts_as_the_role_the_chaincode_allows_and_says_what_happened(
    ledger: Ledger, command: str
) -> None:
    argv, method, args, role, did = COMMANDS[command]
    ledger.status = {"reject": "REJECTED", "revoke": "REVOKED", "deploy": "DEPLOYED"}.get(command, "APPROVED")
    result = run(*argv)
    assert result.exit_code == 0, result.output
    assert ledger.calls == [(method, f"{role}@Org1MSP", args)]
    wording = STATUSES[ledger.status]
    assert result.stdout == f"m/1 {did} Org1MSP: now {wording.word} ({wording.meaning})\n"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_decision_acts_as_the_chosen_org_and_role_and_json_is_the_record(ledger: Ledger, command: str) -> None:
    argv, method, args, _role, _did = COMMANDS[command]
    result = run(*argv, "--org", "Org2MSP", "--role", "admin", "--json")
    assert result.exit_code == 0, result.output
    assert ledger.calls == [(method, "admin@Org2MSP", args)]
    doc = json.loads(result.stdout)
    assert doc["name"] == "m" and doc["version"] == "1" and doc["status"] == ledger.status == "APPROVED"


def test_an_approval_that_waits_for_others_says_the_version_is_still_registered(ledger: Ledger) -> None:
    ledger.status = "REGISTERED"
    out = run("approve", "m", "1").stdout
    assert out == f"m/1 approved by Org1MSP: now registered ({STATUSES['REGISTERED'].meaning})\n"


def test_grant_and_revoke_access_act_as_admin_and_print_the_model(ledger: Ledger) -> None:
    granted = run("grant", "m", "Org2MSP")
    assert granted.exit_code == 0, granted.output
    said = "Org2MSP may now read every version of m (granted by Org1MSP); read access granted to: Org2MSP\n"
    assert granted.stdout == said
    withdrawn = run("revoke-access", "m", "Org2MSP", "--json")
    assert withdrawn.exit_code == 0, withdrawn.output
    assert json.loads(withdrawn.stdout) == json.loads(json.dumps(governance.to_json(Model("m", "Org1MSP"))))
    plain = run("revoke-access", "m", "Org2MSP").stdout
    assert plain == "Org2MSP may no longer read m (withdrawn by Org1MSP); read access granted to: none\n"
    assert [(m, who) for m, who, _ in ledger.calls] == [("grant_access", "admin@Org1MSP")] + [
        ("revoke_access", "admin@Org1MSP")
    ] * 2


REASON = 'model "m" version "1" is REVOKED; decisions are recorded only while it is REGISTERED'


@pytest.mark.parametrize(
    ("chaincode", "printed"),
    [
        (f"CONFLICT: {REASON}", f"refused: {REASON}"),
        ('NOT_AUTHORIZED: role "auditor" of Org1MSP may not call X', 'not authorized: role "auditor" of Org1MSP may not call X'),
        ('NOT_FOUND: model "m" version "1"', 'not found: model "m" version "1"'),
        ("INVALID: reason: must not be blank", "invalid: reason: must not be blank"),
    ],
)
@pytest.mark.parametrize("command", [*sorted(COMMANDS), "grant", "revoke-access"])
def test_a_refusal_prints_the_chaincodes_reason_on_one_line_and_exits_1(
    ledger: Ledger, command: str, chaincode: str, printed: str
) -> None:
    typed = refusal(endorse_refusal(chaincode))
    assert typed is not None
    ledger.refuse = typed
    argv = COMMANDS[command][0] if command in COMMANDS else [command, "m", "Org2MSP"]
    result = run(*argv)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == f"error: {printed}\n"  # no transport prefix, no peer address, no traceback
    as_json = run(*argv, "--json")
    assert as_json.exit_code == 1 and json.loads(as_json.stdout) == {"error": printed}


def test_a_failure_that_is_no_refusal_is_one_line_with_its_step_and_the_peers_message(ledger: Ledger) -> None:
    ledger.refuse = EndorseError(
        "f" * 64,
        grpc.StatusCode.UNAVAILABLE,
        "failed to connect",
        (ErrorDetail("peer0:7051", "Org1MSP", "connection\nrefused"), ErrorDetail("peer1:7051", "Org2MSP", "down")),
    )
    result = run("approve", "m", "1")
    assert result.exit_code == 1
    assert result.stderr == "error: endorse failed: UNAVAILABLE: failed to connect (connection refused)\n"
    ledger.refuse = CommitError("f" * 64, 11, 7)
    result = run("deploy", "m", "1", "--environment", "e", "--endpoint", "u")
    assert result.exit_code == 1 and "MVCC_READ_CONFLICT" in result.stderr and len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["reject", "m", "1", "--reason", "  "],
        ["reject", "m", "1"],
        ["revoke", "m", "1", "--reason", ""],
        ["deploy", "m", "1", "--environment", " ", "--endpoint", "u"],
        ["deploy", "m", "1", "--environment", "e"],
        ["grant", "m"],
        ["approve", "m"],
    ],
)
def test_bad_input_is_refused_before_any_call(ledger: Ledger, argv: list[str]) -> None:
    result = run(*argv)
    assert result.exit_code == 2
    assert ledger.calls == []
    if "--reason" in argv:
        assert "the reason must not be blank" in result.output

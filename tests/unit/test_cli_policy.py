"""``modelledger model policy`` and the gate in ``model show``: the policy shown or set (as the chaincode's role),
bad input refused before any call, and each version's evaluations, decisions and gate shown whole, on an 80-column
terminal and in a pipe.

The gateway and the registry client are faked (no Fabric); the records are the SDK's own dataclasses.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import grpc
import pytest
from typer.testing import CliRunner

from modelledger.mlops.cli import output
from modelledger.mlops.cli.app import app
from modelledger.sdk.gateway.errors import EndorseError, ErrorDetail
from modelledger.sdk.registry.client import NotFound, refusal
from modelledger.sdk.registry.records import (
    Actor,
    Approval,
    Change,
    Deployment,
    Evaluation,
    Metric,
    MetricThreshold,
    Model,
    ModelPolicy,
    ModelPolicyInput,
    ModelVersion,
    Settings,
)
from modelledger.sdk.registry.statuses import RESULTS
from tests.cli_capture import pipe, strip_ansi, terminal, too_wide
from tests.unit.cli_registry_fakes import route_registry_to

NAME = "breast-cancer-classifier-with-a-long-name"
HOLDOUT = "4" * 64
TX = [str(n) * 64 for n in range(1, 6)]
RUN = "0123456789abcdef0123456789abcdef"
ADMIN = Actor("a" * 64, "Org1MSP", "admin")
EVALUATOR = Actor("e" * 64, "Org2MSP", "evaluator")
POLICY = ModelPolicy(
    version=2,
    thresholds=[MetricThreshold("accuracy_score", min=0.9), MetricThreshold("log_loss", max=0.3)],
    required_passes=1,
    independent_evaluator=True,
    last_change=Change("SetModelPolicy", ADMIN, "2026-12-08T01:00:00Z", TX[0]),
)
METRICS = [Metric("accuracy_score", 0.95), Metric("f1_score", 0.9), Metric("log_loss", 0.1)]


def evaluated(result: str, policy: ModelPolicy | None, tx: str, failures: tuple[str, ...] = ()) -> Evaluation:
    return Evaluation(
        result=result,
        metrics=METRICS,
        failures=list(failures),
        policy=policy,
        dataset_sha256=HOLDOUT,
        run_id=RUN,
        artifacts_digest="f" * 64,
        evaluator=EVALUATOR,
        time="2026-12-08T01:05:00Z",
        tx_id=tx,
    )


FAILURE = "metric log_loss = 0.4 is above the maximum 0.3"
VERSION = ModelVersion(
    name=NAME,
    version="3",
    owner="Org1MSP",
    status="REGISTERED",
    model_digest="b" * 64,
    registrant=Actor("c" * 64, "Org1MSP", "registrar"),
    approval_orgs=["Org1MSP", "Org2MSP"],
    evaluations=[
        evaluated("NO_POLICY", None, TX[1]),
        evaluated("PASSED", POLICY, TX[2]),
        evaluated("FAILED", POLICY, TX[3], (FAILURE,)),
    ],
    approvals=[Approval(Actor("d" * 64, "Org2MSP", "approver"), "fine", "APPROVED", "Org2MSP", "2026-12-08T01:10:00Z")],
    deployments=[Deployment(Actor("o" * 64, "Org1MSP", "operator"), "https://serve/m", "staging", "2026-12-08", TX[4])],
)


@dataclasses.dataclass
class Ledger:
    """What the fake client was asked (method, role@org, args) and what it holds."""

    calls: list[tuple[str, str, tuple[Any, ...]]] = dataclasses.field(default_factory=list)
    model: Model = dataclasses.field(default_factory=lambda: Model(name=NAME, owner="Org1MSP", policy=POLICY))
    version: ModelVersion = VERSION
    refuse: Exception | None = None
    model_refused: Exception | None = None
    current_set: list[str] = dataclasses.field(default_factory=lambda: ["Org1MSP", "Org2MSP", "Org3MSP"])


@pytest.fixture
def ledger(monkeypatch: pytest.MonkeyPatch) -> Ledger:
    held = Ledger()

    class FakeClient:
        def __init__(self, network: Any, chaincode: str) -> None:
            self.who = network

        def _call(self, method: str, *args: Any) -> None:
            held.calls.append((method, self.who, args))
            if held.refuse is not None:
                raise held.refuse

        def get_model(self, name: str) -> Model:
            self._call("get_model", name)
            if held.model_refused is not None:
                raise held.model_refused
            return held.model

        def set_model_policy(self, name: str, policy: ModelPolicyInput) -> Model:
            self._call("set_model_policy", name, policy)
            now = held.model.policy
            same = (policy.thresholds, policy.required_passes, policy.independent_evaluator)
            if now is not None and same == (now.thresholds, now.required_passes, now.independent_evaluator):
                return held.model  # the chaincode: the same policy again is no new version
            stored = ModelPolicy(3, policy.thresholds, policy.required_passes, policy.independent_evaluator, Change())
            return dataclasses.replace(held.model, policy=stored)

        def get_model_version(self, name: str, version: str) -> ModelVersion:
            self._call("get_model_version", name, version)
            return held.version

        def get_settings(self) -> Settings:
            self._call("get_settings")
            return Settings(approval_orgs=held.current_set)

    route_registry_to(monkeypatch, FakeClient)
    return held


def run(*args: str) -> Any:
    return CliRunner().invoke(app, ["model", *args])


def fields(out: str) -> dict[str, str]:
    """A piped key/value view (``key<TAB>value`` lines) as a dict; every line has exactly two fields."""
    assert all(line.count("\t") == 1 for line in out.splitlines()), out
    return dict(line.split("\t", 1) for line in out.splitlines())


# --------------------------------------------------------------------------- model policy NAME (showing)
def test_the_policy_is_shown_as_an_auditor_one_field_per_threshold(ledger: Ledger) -> None:
    result = run("policy", NAME)
    assert result.exit_code == 0, result.output
    assert ledger.calls == [("get_model", "auditor@Org1MSP", (NAME,))]
    assert fields(result.stdout) == {
        "name": NAME,
        "owner": "Org1MSP",
        "policy": "version 2",
        "threshold accuracy_score": "accuracy_score >= 0.9",
        "threshold log_loss": "log_loss <= 0.3",
        "required": "1 passing evaluation",
        "evaluator": "of another organisation than the registrant's",
        "set": f"by admin@Org1MSP 2026-12-08T01:00:00Z tx {TX[0]}",
    }
    doc = json.loads(run("policy", NAME, "--json").stdout)
    assert doc["policy"]["version"] == 2 and doc["policy"]["thresholds"][1] == {"max": 0.3, "metric": "log_loss", "min": None}


def test_a_model_without_a_policy_says_no_policy(ledger: Ledger) -> None:
    ledger.model = Model(name="m", owner="Org1MSP")
    assert fields(run("policy", "m").stdout) == {"name": "m", "owner": "Org1MSP", "policy": "no policy"}
    assert json.loads(run("policy", "m", "--json").stdout)["policy"] is None


# --------------------------------------------------------------------------- model policy NAME --min/--max (setting)
def test_setting_acts_as_admin_sends_the_whole_policy_sorted_and_says_what_is_in_force(ledger: Ledger) -> None:
    ledger.model = Model(name=NAME, owner="Org1MSP")  # no policy yet: 1 pass, any evaluator
    result = run("policy", "m", "--max", "log_loss=0.3", "--min", "accuracy_score=0.9", "--min", "log_loss=0")
    assert result.exit_code == 0, result.output
    wanted = ModelPolicyInput(
        thresholds=[MetricThreshold("accuracy_score", min=0.9), MetricThreshold("log_loss", min=0.0, max=0.3)],
        required_passes=1,
        independent_evaluator=False,
    )
    assert ledger.calls == [("get_model", "admin@Org1MSP", ("m",)), ("set_model_policy", "admin@Org1MSP", ("m", wanted))]
    assert result.stdout == (
        f"{NAME} policy set by Org1MSP: version 3: accuracy_score >= 0.9, 0 <= log_loss <= 0.3; "
        "1 passing evaluation required; evaluator of any organisation (the registrant's too)\n"
        "  new policy (the model had none)\n"
    )


def test_tightening_one_threshold_keeps_independence_and_passes_and_says_what_changed(ledger: Ledger) -> None:
    # Before: `--min accuracy_score=0.95` alone sent independentEvaluator false, silently turning independence off.
    result = run("policy", "m", "--min", "accuracy_score=0.95")
    assert result.exit_code == 0, result.output
    sent = ledger.calls[-1][2][1]
    assert sent == ModelPolicyInput([MetricThreshold("accuracy_score", min=0.95)], 1, True)
    assert result.stdout.splitlines()[1:] == [
        "  changed: accuracy_score >= 0.9 -> accuracy_score >= 0.95",
        "  dropped: log_loss <= 0.3",
        "  kept from version 2: 1 passing evaluation required; evaluator of another organisation than the registrant's",
    ]
    result = run("policy", "m", "--min", "accuracy_score=0.9", "--max", "log_loss=0.3", "--passes", "2", "--any-evaluator")
    assert ledger.calls[-1][2][1] == ModelPolicyInput(POLICY.thresholds, 2, False)
    assert result.stdout.splitlines()[1:] == [
        "  changed: 1 passing evaluation -> 2 passing evaluations required",
        "  changed: evaluator of another organisation than the registrant's -> of any organisation (the registrant's too)",
    ]
    result = run("policy", "m", "--min", "accuracy_score=0.9", "--max", "log_loss=0.3")
    assert result.stdout.splitlines()[1:] == ["  unchanged: version 2 is this policy already"]


def test_a_model_the_admin_may_not_read_is_sent_as_given_for_the_chaincode_to_judge(ledger: Ledger) -> None:
    ledger.model_refused = NotFound("model m not found")
    result = run("policy", "m", "--min", "auc=0.8", "--org", "Org2MSP")
    assert result.exit_code == 0, result.output
    sent = ModelPolicyInput([MetricThreshold("auc", min=0.8)], 1, False)
    assert ledger.calls[-1] == ("set_model_policy", "admin@Org2MSP", ("m", sent))


def test_setting_takes_passes_independence_org_and_role_and_json_is_the_model(ledger: Ledger) -> None:
    argv = ["policy", "m", "--min", "auc=0.8", "--passes", "2", "--independent", "--org", "Org2MSP", "--role", "auditor"]
    doc = json.loads(run(*argv, "--json").stdout)
    (method, who, (_, sent)) = ledger.calls[-1]
    assert (method, who, sent.required_passes, sent.independent_evaluator) == ("set_model_policy", "auditor@Org2MSP", 2, True)
    assert doc["policy"] == {
        "independentEvaluator": True,
        "lastChange": {"action": "", "actor": {"certFingerprint": "", "mspId": "", "role": ""}, "time": "", "txId": ""},
        "requiredPasses": 2,
        "thresholds": [{"max": None, "metric": "auc", "min": 0.8}],
        "version": 3,
    }


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--min", "acc=abc"], "'acc=abc': 'abc' is not a number"),
        (["--min", "acc"], "'acc' is not METRIC=NUMBER"),
        (["--max", "=0.3"], "'=0.3' is not METRIC=NUMBER"),
        (["--max", "loss=nan"], "the bound must be a finite number"),
        (["--min", "acc=1e-320"], "not subnormal"),
        (["--min", "bad$key=0.9"], "the metric name must be 1 to 250 characters of ASCII letters"),
        (["--min", "a/../b=0.9"], "the metric name must not resolve to another name when read as a path"),
        (["--min", "acc=0.9", "--max", "acc=0.5"], "metric 'acc': the minimum 0.9 is above the maximum 0.5"),
        (["--min", "acc=0.9", "--min", "acc=0.8"], "metric 'acc' is given twice"),
        (["--passes", "2"], "a policy needs at least one threshold"),
        (["--any-evaluator"], "a policy needs at least one threshold"),
        (["--min", "acc=0.9", "--passes", "0"], "--passes"),
        (["--min", "acc=0.9", "--passes", "11"], "--passes"),
        ([f"--min=m{n}=1" for n in range(51)], "51 metrics are bounded; a policy holds at most 50"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message_and_sends_nothing(ledger: Ledger, argv: list[str], said: str) -> None:
    result = run("policy", "m", *argv)
    assert result.exit_code == 2
    assert said in " ".join(result.output.replace("│", " ").split())
    assert ledger.calls == []


def test_a_refused_policy_is_one_line_and_exit_1(ledger: Ledger) -> None:
    message = 'NOT_AUTHORIZED: role "admin" of Org2MSP may not set the policy of model "m" (owned by Org1MSP)'
    ledger.refuse = refusal(
        EndorseError("f" * 64, grpc.StatusCode.ABORTED, "failed", (ErrorDetail("peer0", "Org2MSP", message),))
    )
    result = run("policy", "m", "--min", "auc=0.8", "--org", "Org2MSP")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == f"error: {message.replace('NOT_AUTHORIZED:', 'not authorized:')}\n"


# --------------------------------------------------------------------------- model show: the gate
def test_model_show_lists_evaluations_decisions_of_the_whole_set_deployments_and_the_gate(ledger: Ledger) -> None:
    result = run("show", NAME, "3")
    assert result.exit_code == 0, result.output
    got = fields(result.stdout)
    assert got["policy"] == (
        "version 2: accuracy_score >= 0.9, log_loss <= 0.3; 1 passing evaluation required; "
        "evaluator of another organisation than the registrant's"
    )
    assert got["gate"] == (
        f"1 of the 1 passing evaluations that policy version 2 requires: met; the latest evaluation failed: {FAILURE}"
    )
    tail = f"hold-out {HOLDOUT}; run {RUN}"
    assert got["evaluation 1"] == (
        f"no policy by evaluator@Org2MSP 2026-12-08T01:05:00Z; accuracy_score=0.95, log_loss=0.1 "
        f"(+1 more); {tail}; tx {TX[1]}"
    )
    assert got["evaluation 2"].startswith("passed (policy version 2) by evaluator@Org2MSP")
    assert got["evaluation 3"].endswith(f"tx {TX[3]}; failures: {FAILURE}")
    assert got["approval Org1MSP"] == "not decided yet"
    assert got["approval Org2MSP"] == "approved by approver@Org2MSP 2026-12-08T01:10:00Z: fine"
    assert "approval Org3MSP" not in got  # in the channel's set now, but it joined after the version was registered
    assert got["deployed staging"] == f"https://serve/m by operator@Org1MSP 2026-12-08 tx {TX[4]}"
    assert [c[0] for c in ledger.calls] == ["get_model_version", "get_settings", "get_model"]


def test_an_organisation_that_left_the_approval_set_no_longer_counts_as_the_chaincode_reckons(ledger: Ledger) -> None:
    """Recorded Org1 and Org2; the channel's set is now Org1 and Org3: only Org1's decision counts (Org3 joined
    later and has no say), and Org2's recorded approval is shown as no longer counted."""
    ledger.current_set = ["Org1MSP", "Org3MSP"]
    got = fields(run("show", NAME, "3").stdout)
    assert [(k, v) for k, v in got.items() if k.startswith("approval ")] == [
        ("approval Org1MSP", "not decided yet"),
        ("approval Org2MSP", "approved by approver@Org2MSP 2026-12-08T01:10:00Z: fine (no longer in the approval set)"),
    ]
    doc = json.loads(run("show", NAME, "3", "--json").stdout)
    assert doc["approvalSet"] == [{"mspId": "Org1MSP", "decision": ""}]


def test_model_show_json_is_the_record_with_the_policy_gate_and_approval_set(ledger: Ledger) -> None:
    doc = json.loads(run("show", NAME, "3", "--json").stdout)
    assert doc["status"] == "REGISTERED" and [e["result"] for e in doc["evaluations"]] == ["NO_POLICY", "PASSED", "FAILED"]
    assert doc["evaluations"][2]["failures"] == [FAILURE] and doc["evaluations"][0]["policy"] is None
    assert doc["modelPolicy"]["version"] == 2 and "modelPolicyError" not in doc
    assert doc["gate"] == {"policyVersion": 2, "required": 1, "passing": 1, "met": True, "latestFailure": FAILURE}
    assert doc["approvalSet"] == [{"mspId": "Org1MSP", "decision": ""}, {"mspId": "Org2MSP", "decision": "APPROVED"}]
    assert doc["deployments"][0]["environment"] == "staging"


def test_a_version_without_a_recorded_set_waits_for_the_current_set_and_an_unmet_gate_says_so(ledger: Ledger) -> None:
    ledger.version = dataclasses.replace(VERSION, approval_orgs=[], evaluations=VERSION.evaluations[:1], deployments=[])
    ledger.model = dataclasses.replace(ledger.model, policy=dataclasses.replace(POLICY, required_passes=2))
    got = fields(run("show", NAME, "3").stdout)
    assert [k for k in got if k.startswith("approval ")] == ["approval Org1MSP", "approval Org2MSP", "approval Org3MSP"]
    assert got["approval Org3MSP"] == "not decided yet"
    assert got["gate"] == (
        "0 of the 2 passing evaluations that policy version 2 requires: not met (approval and deployment are refused)"
    )
    assert "deployed staging" not in got


def test_no_policy_and_no_evaluation_read_as_such(ledger: Ledger) -> None:
    ledger.model = Model(name=NAME, owner="Org1MSP")
    ledger.version = dataclasses.replace(VERSION, evaluations=[])
    got = fields(run("show", NAME, "3").stdout)
    assert (got["policy"], got["gate"], got["evaluations"]) == (
        "no policy",
        "no policy: approval and deployment are not gated",
        "none",
    )
    doc = json.loads(run("show", NAME, "3", "--json").stdout)
    assert doc["modelPolicy"] is None and doc["gate"]["met"] and doc["gate"]["policyVersion"] is None


def test_a_model_the_caller_may_not_read_leaves_the_policy_unknown_not_the_version(ledger: Ledger) -> None:
    ledger.model_refused = NotFound(f'NOT_FOUND: model "{NAME}"', "t")
    result = run("show", NAME, "3", "--role", "approver", "--org", "Org2MSP")
    assert result.exit_code == 0, result.output
    got = fields(result.stdout)
    assert got["policy"] == f'unknown: the model could not be read (not found: model "{NAME}")'
    assert "gate" not in got and got["evaluation 2"].startswith("passed")
    doc = json.loads(run("show", NAME, "3", "--json").stdout)
    assert doc["gate"] is None and doc["modelPolicyError"] == f'not found: model "{NAME}"'


# --------------------------------------------------------------------------- on a terminal and in a pipe
IDENTIFIERS = [NAME, HOLDOUT, RUN, *TX[1:], "https://serve/m", FAILURE]


@pytest.mark.parametrize("width", [80, 200])
def test_model_show_on_a_terminal_wraps_at_spaces_and_keeps_every_identifier_whole(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    con, out = terminal(width)
    monkeypatch.setattr(output, "console", con)
    result = run("show", NAME, "3")
    assert result.exit_code == 0, result.output
    text = strip_ansi(out.getvalue())
    assert "\x1b[" in out.getvalue() and "…" not in text
    assert not too_wide(text, width), too_wide(text, width)
    lines = text.splitlines()
    assert [i for i in IDENTIFIERS if not any(i in line for line in lines)] == []
    assert "not decided yet" in text and "passed (policy version 2)" in text


def test_model_show_and_policy_in_a_pipe_are_plain_key_tab_value_lines(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    for argv in (["show", NAME, "3"], ["policy", NAME]):
        con, out = pipe()
        monkeypatch.setattr(output, "console", con)
        assert run(*argv).exit_code == 0
        text = out.getvalue()
        assert "\x1b" not in text and "…" not in text
        assert all(len(line.split("\t")) == 2 for line in text.splitlines())
    assert {e.result for e in VERSION.evaluations} == set(RESULTS)  # every result word was shown above

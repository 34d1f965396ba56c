"""The evaluation gate as the SDK counts it (sdk/registry/gate.py): only passes under the current policy version
count, and numbers are written as the chaincode writes them in its failures."""

from __future__ import annotations

import pytest

from modelledger.sdk.registry.gate import Gate, evaluation_gate, format_number
from modelledger.sdk.registry.records import Actor, Evaluation, ModelPolicy, ModelVersion


def evaluation(
    result: str, policy_version: int | None, failures: tuple[str, ...] = (), org: str = "Org2MSP", dataset: str = "d1"
) -> Evaluation:
    policy = None if policy_version is None else ModelPolicy(version=policy_version, required_passes=1)
    return Evaluation(
        result=result, policy=policy, failures=list(failures), evaluator=Actor(msp_id=org), dataset_sha256=dataset
    )


def test_only_passes_under_the_current_policy_version_count_once_per_organisation() -> None:
    version = ModelVersion(
        evaluations=[
            evaluation("NO_POLICY", None),  # recorded before any policy: counts for none set later
            evaluation("PASSED", 1),  # passed an earlier policy version
            evaluation("PASSED", 2),
            evaluation("FAILED", 2, ("metric auc = 0.5 is below the minimum 0.8",)),
            evaluation("PASSED", 2, org="Org3MSP"),
            evaluation("PASSED", 2, dataset="d2"),  # Org2 again, on other data: counts once
        ]
    )
    gate = evaluation_gate(ModelPolicy(version=2, required_passes=3), version)
    assert gate == Gate(policy_version=2, required=3, passing=2, latest_failure="")
    assert not gate.met
    assert gate.summary() == (
        "2 of the 3 passing evaluations that policy version 2 requires: not met (approval and deployment are refused)"
    )
    met = evaluation_gate(ModelPolicy(version=2, required_passes=1), version)
    assert met.met and met.summary() == "2 of the 1 passing evaluations that policy version 2 requires: met"


def test_the_newest_evaluations_first_failure_is_named_and_no_policy_gates_nothing() -> None:
    failing = ModelVersion(evaluations=[evaluation("PASSED", 1), evaluation("FAILED", 1, ("metric a is missing", "x"))])
    gate = evaluation_gate(ModelPolicy(version=1, required_passes=2), failing)
    assert (gate.passing, gate.latest_failure) == (1, "metric a is missing")
    free = evaluation_gate(None, failing)
    assert free.met and free.policy_version is None
    assert free.summary() == "no policy: approval and deployment are not gated"
    assert evaluation_gate(ModelPolicy(version=1, required_passes=1), ModelVersion()) == Gate(1, 1, 0, "")


@pytest.mark.parametrize(
    ("value", "go"),
    [
        (0.9, "0.9"),
        (100.0, "100"),
        (0.0, "0"),
        (-0.3, "-0.3"),
        (1e-05, "1e-05"),
        (0.0001, "0.0001"),
        (0.00012, "0.00012"),
        (123456.0, "123456"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (1.5e300, "1.5e+300"),
        (0.1 + 0.2, "0.30000000000000004"),
        (5e-324, "5e-324"),
    ],
)
def test_numbers_are_written_as_gos_format_float_g_shortest(value: float, go: str) -> None:
    """The expected texts are Go's strconv.FormatFloat(v, 'g', -1, 64) for the same values."""
    assert format_number(value) == go

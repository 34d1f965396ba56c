"""The evaluation gate on the real network: policies, evaluations and the refusals that change nothing.

Each refusal is checked twice: the caller gets the chaincode's reason, and the
version's record and history are what they were before (chaincode/CONTRACT.md,
"Evaluation gate").
"""

from __future__ import annotations

import dataclasses

import pytest

from modelledger.network import FabricNetwork
from modelledger.sdk import ConnectionProfile
from modelledger.sdk.registry import RegistryClient
from modelledger.sdk.registry.client import RegistryError
from modelledger.sdk.registry.records import (
    DatasetRef,
    EvaluationInput,
    Metric,
    MetricThreshold,
    ModelPolicyInput,
)
from tests.integration.test_sdk import client, sha, version_input

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def profile(network: FabricNetwork) -> ConnectionProfile:
    network.chaincode.deploy()
    return ConnectionProfile.load(network.layout.connection_profile)


def _snapshot(reader: RegistryClient, name: str, version: str) -> tuple[object, int]:
    return reader.get_model_version(name, version), len(reader.get_history(name, version))


def _refused(call: object, *args: object) -> str:
    with pytest.raises(RegistryError) as refused:
        call(*args)  # type: ignore[operator]
    return str(refused.value)


def _trained(profile: ConnectionProfile, name: str, version: str = "1") -> tuple[str, str]:
    """Registers a training dataset and a version trained on it (as Org1's registrar); returns both digests."""
    registrar = client(profile, "Org1MSP", "registrar")
    train, holdout = sha(f"{name}-train"), sha(f"{name}-holdout")
    registrar.register_dataset(f"{name}-train", train, f"s3://data/{name}/train.csv")
    client(profile, "Org2MSP", "evaluator").register_dataset(f"{name}-holdout", holdout, f"s3://data/{name}/hold.csv")
    record = dataclasses.replace(
        version_input(name, version),
        datasets=[DatasetRef(f"{name}-train", train, f"s3://data/{name}/train.csv")],
    )
    registrar.register_model_version(record)
    return train, holdout


def _policy(minimum: float = 0.9, independent: bool = True, passes: int = 1) -> ModelPolicyInput:
    return ModelPolicyInput(
        independent_evaluator=independent,
        required_passes=passes,
        thresholds=[MetricThreshold(metric="accuracy", min=minimum), MetricThreshold(metric="log_loss", max=0.4)],
    )


def _evaluation(dataset: str, run: str, accuracy: float, log_loss: float = 0.2) -> EvaluationInput:
    return EvaluationInput(
        artifacts_digest=sha(f"artefacts-{run}"),
        artifacts_location="",
        dataset_sha256=dataset,
        metrics=[Metric("accuracy", accuracy), Metric("log_loss", log_loss)],
        run_id=run,
    )


def test_approval_is_refused_until_a_passing_evaluation_under_the_policy_in_force(profile: ConnectionProfile) -> None:
    name = "gated-model"
    _, holdout = _trained(profile, name)
    admin, auditor = client(profile, "Org1MSP", "admin"), client(profile, "Org1MSP", "auditor")
    assert auditor.get_model(name).policy is None
    model = admin.set_model_policy(name, _policy())
    assert model.policy is not None and model.policy.version == 1

    before = _snapshot(auditor, name, "1")
    said = _refused(client(profile, "Org2MSP", "approver").approve, name, "1", "")
    assert "0 of the 1 passing evaluations that policy version 1 requires" in said, said
    assert _snapshot(auditor, name, "1") == before

    evaluator = client(profile, "Org2MSP", "evaluator")
    passed = evaluator.record_evaluation(name, "1", _evaluation(holdout, "run-pass-1", 0.95))
    latest = passed.evaluations[-1]
    assert (latest.result, latest.failures, latest.policy.version) == ("PASSED", [], 1)
    assert (latest.evaluator.msp_id, latest.evaluator.role) == ("Org2MSP", "evaluator")
    assert auditor.list_evaluations(name, "1") == passed.evaluations
    assert "RecordEvaluation" in [h.action for h in auditor.get_history(name, "1")]

    # A new policy version: the pass judged by version 1 no longer counts.
    admin.set_model_policy(name, _policy(minimum=0.97))
    before = _snapshot(auditor, name, "1")
    said = _refused(client(profile, "Org1MSP", "approver").approve, name, "1", "")
    assert "0 of the 1 passing evaluations that policy version 2 requires" in said, said
    assert _snapshot(auditor, name, "1") == before

    evaluator.record_evaluation(name, "1", _evaluation(holdout, "run-pass-2", 0.98))
    client(profile, "Org1MSP", "approver").approve(name, "1", "")
    approved = client(profile, "Org2MSP", "approver").approve(name, "1", "")
    assert approved.status == "APPROVED"
    deployed_version = client(profile, "Org1MSP", "operator").record_deployment(name, "1", "prod", "https://m/1")
    assert deployed_version.status == "DEPLOYED"


def test_thresholds_are_judged_on_chain_and_a_failing_version_cannot_be_approved(profile: ConnectionProfile) -> None:
    name = "failing-model"
    _, holdout = _trained(profile, name)
    client(profile, "Org1MSP", "admin").set_model_policy(name, _policy())
    evaluator, auditor = client(profile, "Org2MSP", "evaluator"), client(profile, "Org1MSP", "auditor")

    low = evaluator.record_evaluation(name, "1", _evaluation(holdout, "run-low", 0.85, log_loss=0.5)).evaluations[-1]
    assert low.result == "FAILED"
    assert low.failures == [
        "metric accuracy = 0.85 is below the minimum 0.9",
        "metric log_loss = 0.5 is above the maximum 0.4",
    ]
    missing = dataclasses.replace(_evaluation(holdout, "run-missing", 0.99), metrics=[Metric("accuracy", 0.99)])
    assert evaluator.record_evaluation(name, "1", missing).evaluations[-1].failures == ["metric log_loss is missing"]

    before = _snapshot(auditor, name, "1")
    said = _refused(client(profile, "Org1MSP", "approver").approve, name, "1", "")
    assert "0 of the 1 passing evaluations" in said and "FAILED" in said, said
    assert _snapshot(auditor, name, "1") == before
    # The same run again by the same organisation is not a second evaluation.
    said = _refused(evaluator.record_evaluation, name, "1", _evaluation(holdout, "run-low", 0.99))
    assert "run-low" in said, said
    assert _snapshot(auditor, name, "1") == before


def test_evaluation_refusals_change_nothing(profile: ConnectionProfile) -> None:
    name = "refused-evaluations"
    train, holdout = _trained(profile, name)
    client(profile, "Org1MSP", "admin").set_model_policy(name, _policy())
    auditor = client(profile, "Org1MSP", "auditor")
    before = _snapshot(auditor, name, "1")

    org2 = client(profile, "Org2MSP", "evaluator")
    said = _refused(org2.record_evaluation, name, "1", _evaluation(train, "run-train", 0.99))
    assert "training dataset" in said, said
    said = _refused(org2.record_evaluation, name, "1", _evaluation(sha("never registered"), "run-unknown", 0.99))
    assert "is not registered" in said, said
    # The policy asks for an evaluator of another organisation than the registrant's (Org1MSP).
    said = _refused(client(profile, "Org1MSP", "evaluator").record_evaluation, name, "1",
                    _evaluation(holdout, "run-own", 0.99))  # fmt: skip
    assert "Org1MSP" in said, said
    said = _refused(client(profile, "Org2MSP", "approver").record_evaluation, name, "1",
                    _evaluation(holdout, "run-role", 0.99))  # fmt: skip
    assert "may not call RecordEvaluation" in said, said
    # Another organisation's admin may not read the model, so it does not exist for it (as for GrantAccess).
    said = _refused(client(profile, "Org2MSP", "admin").set_model_policy, name, _policy(minimum=0.1))
    assert said == f'NOT_FOUND: model "{name}"', said
    assert _snapshot(auditor, name, "1") == before
    assert auditor.get_model(name).policy.version == 1

    # A revoked version is refused with the reason to an evaluator that may still read it (a read grant);
    # without one, it is no longer the evaluator's to see (NOT_FOUND).
    client(profile, "Org1MSP", "admin").grant_access(name, "Org2MSP")
    client(profile, "Org1MSP", "admin").revoke(name, "1", "withdrawn")
    revoked = _snapshot(auditor, name, "1")
    said = _refused(org2.record_evaluation, name, "1", _evaluation(holdout, "run-revoked", 0.99))
    assert "revoked" in said.lower(), said
    assert _snapshot(auditor, name, "1") == revoked


def test_no_policy_keeps_the_old_behaviour_and_evaluations_are_not_judged(profile: ConnectionProfile) -> None:
    name = "ungated-model"
    _, holdout = _trained(profile, name)
    evaluated = client(profile, "Org2MSP", "evaluator").record_evaluation(name, "1", _evaluation(holdout, "r", 0.1))
    assert evaluated.evaluations[-1].result == "NO_POLICY" and evaluated.evaluations[-1].policy is None
    client(profile, "Org1MSP", "approver").approve(name, "1", "")
    assert client(profile, "Org2MSP", "approver").approve(name, "1", "").status == "APPROVED"

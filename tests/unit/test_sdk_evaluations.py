"""The evaluation gate in the SDK (issue 15): the policy and evaluation records, what the client sends over a real
gRPC channel, and what it reads back.

The Gateway is the in-process fake of ``tests/unit/sdk_fakes.py``: the tests see the exact arguments the
chaincode would get.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from modelledger.sdk import connect
from modelledger.sdk.registry import RegistryClient, records
from modelledger.sdk.registry.records import (
    Evaluation,
    EvaluationInput,
    Metric,
    MetricThreshold,
    Model,
    ModelPolicy,
    ModelPolicyEvent,
    ModelPolicyInput,
    ModelVersion,
    ModelVersionEvent,
)
from tests.unit.sdk_fakes import FakeServer, invocation_args, make_identity, signer_for

DATASET = "d" * 64
POLICY = {
    "independentEvaluator": True,
    "lastChange": {"action": "SetModelPolicy", "actor": {"mspId": "Org1MSP", "role": "admin"}, "txId": "p2"},
    "requiredPasses": 1,
    "thresholds": [{"metric": "accuracy_score", "min": 0.9}, {"max": 0.3, "metric": "log_loss", "min": 0}],
    "version": 2,
}
EVALUATION = {
    "artifactsDigest": "a" * 64,
    "artifactsLocation": "s3://evaluations/e.zip?versionId=v1",
    "datasetSha256": DATASET,
    "evaluator": {"certFingerprint": "f" * 64, "mspId": "Org2MSP", "role": "evaluator"},
    "failures": [],
    "metrics": [{"key": "accuracy_score", "value": 0.95}, {"key": "log_loss", "value": 0.1}],
    "policy": POLICY,
    "result": "PASSED",
    "runId": "run-1",
    "time": "2026-12-08T01:00:00Z",
    "txId": "e1",
}


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    server = FakeServer()
    yield server
    server.close()


@pytest.fixture
def client(fake: FakeServer) -> RegistryClient:
    identity, key = make_identity("Org1MSP", "admin")
    return RegistryClient(connect(identity, signer_for(key), fake.channel).network("mlops"))


def sent(fake: FakeServer, kind: str = "Endorse") -> list[list[str]]:
    """The chaincode arguments of every request of ``kind`` (function name first)."""
    return [[a.decode() for a in invocation_args(r.proposed_transaction)] for r in fake.gateway.requests[kind]]


def test_a_policy_is_sent_in_the_chaincodes_words_and_an_unset_bound_is_left_out(
    fake: FakeServer, client: RegistryClient
) -> None:
    fake.gateway.result = json.dumps({"name": "m", "owner": "Org1MSP", "grants": [], "policy": POLICY}).encode()
    policy = ModelPolicyInput(
        thresholds=[MetricThreshold("accuracy_score", min=0.9), MetricThreshold("log_loss", min=0.0, max=0.3)],
        required_passes=1,
        independent_evaluator=True,
    )
    model = client.set_model_policy("m", policy)
    ((function, name, body),) = sent(fake)
    assert (function, name) == ("SetModelPolicy", "m")
    # No "max": null for accuracy (a bound not set is absent), and a minimum of 0 is a bound, kept.
    assert json.loads(body) == {
        "independentEvaluator": True,
        "requiredPasses": 1,
        "thresholds": [{"metric": "accuracy_score", "min": 0.9}, {"max": 0.3, "metric": "log_loss", "min": 0.0}],
    }
    assert model.policy is not None and model.policy.version == 2 and model.policy.independent_evaluator
    assert model.policy.thresholds == [
        MetricThreshold("accuracy_score", min=0.9, max=None),
        MetricThreshold("log_loss", min=0.0, max=0.3),
    ]
    assert isinstance(model.policy.thresholds[1].min, float)
    assert model.policy.last_change.actor.role == "admin"


def test_an_evaluation_is_sent_without_any_evaluator_and_the_verdict_read_back(
    fake: FakeServer, client: RegistryClient
) -> None:
    fake.gateway.result = json.dumps(
        {"name": "m", "version": "3", "status": "REGISTERED", "evaluations": [EVALUATION]}
    ).encode()
    evaluation = EvaluationInput(
        dataset_sha256=DATASET,
        run_id="run-1",
        artifacts_digest="a" * 64,
        metrics=[Metric("accuracy_score", 0.95), Metric("log_loss", 0.1)],
        artifacts_location="s3://evaluations/e.zip?versionId=v1",
    )
    mv = client.record_evaluation("m", "3", evaluation)
    ((function, name, version, body),) = sent(fake)
    assert (function, name, version) == ("RecordEvaluation", "m", "3")
    assert json.loads(body) == {
        "artifactsDigest": "a" * 64,
        "artifactsLocation": "s3://evaluations/e.zip?versionId=v1",
        "datasetSha256": DATASET,
        "metrics": [{"key": "accuracy_score", "value": 0.95}, {"key": "log_loss", "value": 0.1}],
        "runId": "run-1",
    }
    (latest,) = mv.evaluations
    assert (latest.result, latest.evaluator.msp_id, latest.dataset_sha256) == ("PASSED", "Org2MSP", DATASET)
    assert latest.policy is not None and latest.policy.version == 2
    assert records.to_json(latest) == {**EVALUATION, "policy": to_full_policy(POLICY)}


def to_full_policy(policy: dict[str, Any]) -> dict[str, Any]:
    """``POLICY`` as the SDK writes it back: every field present (absent ones at their defaults)."""
    return records.to_json(records.from_json(ModelPolicy, policy))


def test_list_evaluations_is_a_query_in_recorded_order(fake: FakeServer, client: RegistryClient) -> None:
    failed = {
        **EVALUATION,
        "result": "FAILED",
        "failures": ["metric log_loss = 0.4 is above the maximum 0.3"],
        "txId": "e2",
    }
    none = {**EVALUATION, "result": "NO_POLICY", "txId": "e0"}
    del none["policy"]
    fake.gateway.result = json.dumps([none, EVALUATION, failed]).encode()
    got = client.list_evaluations("m", "3")
    assert sent(fake, "Evaluate") == [["ListEvaluations", "m", "3"]]
    assert [(e.tx_id, e.result, e.policy is None) for e in got] == [
        ("e0", "NO_POLICY", True),
        ("e1", "PASSED", False),
        ("e2", "FAILED", False),
    ]
    assert got[2].failures == ["metric log_loss = 0.4 is above the maximum 0.3"]
    fake.gateway.result = b"[]"
    assert client.list_evaluations("m", "4") == []


def test_records_of_an_older_chaincode_read_as_no_policy_and_no_evaluations() -> None:
    """A model and a version stored before 1.4.0 lack the new fields: no policy, no evaluations (not an error)."""
    assert records.from_json(Model, {"name": "m", "owner": "Org1MSP"}).policy is None
    assert records.from_json(ModelVersion, {"name": "m", "version": "1"}).evaluations == []
    assert records.from_json(Evaluation, {"result": "NO_POLICY"}).policy is None
    assert records.from_json(MetricThreshold, {"metric": "auc", "max": 1}) == MetricThreshold("auc", None, 1.0)


def test_the_new_events_decode_into_their_payloads() -> None:
    evaluated = records.event_payload(
        "ModelVersionEvaluated",
        b'{"mspId":"Org2MSP","name":"m","result":"FAILED","status":"REGISTERED","txId":"t","version":"3"}',
    )
    assert evaluated == ModelVersionEvent(
        name="m", version="3", status="REGISTERED", msp_id="Org2MSP", result="FAILED", tx_id="t"
    )
    changed = records.event_payload(
        "ModelPolicyChanged", b'{"mspId":"Org1MSP","name":"m","policyVersion":2,"txId":"u"}'
    )
    assert changed == ModelPolicyEvent(name="m", policy_version=2, msp_id="Org1MSP", tx_id="u")
    # Other version events carry no result (omitted by the chaincode).
    approved = records.event_payload("ModelVersionApproved", b'{"name":"m","status":"APPROVED","version":"3"}')
    assert approved.result == ""

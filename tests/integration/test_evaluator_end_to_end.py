"""``modelledger.mlflow.evaluate`` end to end: real Fabric network (contract 1.4.0), MinIO, MLflow server and bridge.

A version the bridge anchored is evaluated by Org2's evaluator on hold-out data: the anchored copy is verified
against the ledger, MLflow evaluates it, the data is registered, the bundle is stored write-once, and the ledger
judges the metrics against the owner's policy. A training set as the hold-out, and a rerun, change nothing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelledger.mlflow import evaluate
from modelledger.mlflow.hold_out import RECORDED_BEFORE, HoldOutIsTrainingData
from modelledger.mlops.store.evaluation_artifacts import parse_location
from modelledger.mlops.store.s3_access import s3_client
from modelledger.runtime.settings import S3User
from modelledger.sdk.registry.records import MetricThreshold, ModelPolicyInput
from tests.integration.test_bridge import Stack, model_uri, register, stack, wait_tags  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration


def frame(seed: int, rows: int) -> pd.DataFrame:
    """The data of test_bridge's model: seed 7, 40 rows is its training set (``tiny-train``)."""
    x = np.random.default_rng(seed).random((rows, 3))
    return pd.DataFrame(x, columns=["a", "b", "c"]).assign(y=(x[:, 0] > 0.5).astype(int))


def test_org2s_evaluator_evaluates_a_verified_version_and_the_ledger_judges_it(
    stack: Stack,  # noqa: F811
    model_uri: str,  # noqa: F811
) -> None:
    name = "evaluated-model"
    version = register(stack, name, model_uri)
    wait_tags(stack, name, version)
    admin = stack.registry("admin")
    admin.grant_access(name, "Org2MSP")  # Org2 may read it whatever the approval set
    admin.set_model_policy(
        name,
        ModelPolicyInput([MetricThreshold("accuracy_score", min=0.5)], required_passes=1, independent_evaluator=True),
    )
    profile = stack.network.layout.connection_profile
    uri = f"models:/{name}/{version}"

    # The training set as the hold-out: refused before anything runs.
    with pytest.raises(HoldOutIsTrainingData):
        evaluate(uri, frame(7, 40), targets="y", model_type="classifier", org="Org2MSP", profile=profile)
    assert stack.registry().list_evaluations(name, version) == []

    verdict = evaluate(uri, frame(8, 60), targets="y", model_type="classifier", org="Org2MSP", profile=profile)
    assert verdict.result == "PASSED" and verdict.policy_version == 1 and verdict.evaluator == "evaluator@Org2MSP"
    (recorded,) = stack.registry().list_evaluations(name, version)
    assert (recorded.run_id, recorded.tx_id, recorded.result) == (verdict.run_id, verdict.tx_id, "PASSED")
    assert stack.registry().get_dataset_claims(verdict.dataset_sha256)
    bucket, key, version_id = parse_location(verdict.artifacts_location)
    s3 = s3_client(user=S3User.AUDITOR)
    head = s3.head_object(Bucket=bucket, Key=key, VersionId=version_id)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert stack.client.get_run(verdict.run_id).data.metrics["accuracy_score"] == verdict.metrics["accuracy_score"]

    # A rerun returns the recorded verdict and records nothing.
    again = evaluate(uri, frame(8, 60), targets="y", model_type="classifier", org="Org2MSP", profile=profile)
    assert again.how == RECORDED_BEFORE and again.tx_id == verdict.tx_id
    assert len(stack.registry().list_evaluations(name, version)) == 1

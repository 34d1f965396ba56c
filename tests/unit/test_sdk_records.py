"""The SDK's records have exactly the chaincode's fields (the Go side checks the same file)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from modelledger.sdk.registry import records
from modelledger.sdk.registry.records import _camel

# Written and checked by chaincode/registry/recordfields_test.go from the Go records.
FIELDS_FILE = Path(__file__).resolve().parents[2] / "chaincode" / "registry" / "testdata" / "records.json"
# Go type name -> Python dataclass, where they differ.
PYTHON_NAMES = {"MLflow": "MLflowSource"}


def go_records() -> dict[str, list[str]]:
    return json.loads(FIELDS_FILE.read_text())


@pytest.mark.parametrize("go_name", sorted(go_records()))
def test_python_record_has_the_chaincode_fields(go_name: str) -> None:
    cls = getattr(records, PYTHON_NAMES.get(go_name, go_name), None)
    assert cls is not None and dataclasses.is_dataclass(cls), f"no dataclass for the chaincode record {go_name}"
    python_fields = sorted(_camel(f.name) for f in dataclasses.fields(cls))
    assert python_fields == sorted(go_records()[go_name])


def test_the_field_file_covers_the_records_the_client_returns() -> None:
    go = go_records()
    for name in ("ModelVersion", "Dataset", "AccessLogEntry", "ApprovalSetRemoval", "RemovalVote"):
        assert name in go
    assert "approvalOrgs" in go["ModelVersion"]


def test_a_version_without_a_recorded_approval_set_reads_as_empty() -> None:
    v = records.from_json(records.ModelVersion, {"name": "m", "version": "1", "approvals": []})
    assert v.approval_orgs == []
    v = records.from_json(records.ModelVersion, {"approvalOrgs": ["Org1MSP", "Org2MSP"]})
    assert v.approval_orgs == ["Org1MSP", "Org2MSP"]

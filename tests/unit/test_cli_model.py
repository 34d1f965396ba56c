"""``modelledger model``: people read a status's word and meaning, ``--json`` keeps the ledger's stored value.

The gateway and the registry client are faked (no Fabric); the records are the SDK's own dataclasses.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from modelledger.mlops.cli.app import app
from modelledger.mlops.store.index import StoragePointer
from modelledger.mlops.store.ledger_records import to_ledger_storage
from modelledger.sdk.registry.client import NotFound
from modelledger.sdk.registry.records import (
    Actor,
    Approval,
    HistoryEntry,
    Model,
    ModelVersion,
    ModelVersionPage,
    Settings,
)
from modelledger.sdk.registry.statuses import STATUSES
from tests.unit.cli_registry_fakes import route_registry_to

POINTER = StoragePointer(bucket="anchored", key="models/m/index.json", version_id="v1", sha256="0" * 64)


def record(status: str) -> ModelVersion:
    """A version of model ``m`` in ``status``, approved by Org2 when it is past registration."""
    approvals = [] if status == "REGISTERED" else [Approval(msp_id="Org2MSP", decision="APPROVED")]
    return ModelVersion(
        name="m",
        version="1",
        owner="Org1MSP",
        status=status,
        model_digest="a" * 64,
        manifest_digest="b" * 64,
        storage=to_ledger_storage(pointer=POINTER),
        registrant=Actor("c" * 64, "Org1MSP", "registrar"),
        registered_tx_id="d" * 64,
        approvals=approvals,
    )


@pytest.fixture
def ledger(monkeypatch: pytest.MonkeyPatch) -> dict[str, ModelVersion]:
    """The ledger the ``model`` commands read: a dict the test fills, behind a fake gateway and client."""
    held: dict[str, ModelVersion] = {}

    class FakeClient:
        def __init__(self, network: Any, chaincode: str) -> None:
            pass

        def get_model_version(self, name: str, version: str) -> ModelVersion:
            if f"{name}/{version}" not in held:
                raise NotFound(f'NOT_FOUND: model "{name}" version "{version}"', "tx1")
            return held[f"{name}/{version}"]

        def list_model_versions(self, name: str, page_size: int, bookmark: str) -> ModelVersionPage:
            return ModelVersionPage(records=list(held.values()), fetched=len(held))

        def get_model(self, name: str) -> Model:
            return Model(name=name, owner="Org1MSP")

        def get_settings(self) -> Settings:
            return Settings(approval_orgs=["Org1MSP", "Org2MSP"])

        def get_history(self, name: str, version: str) -> list[HistoryEntry]:
            mv = held[f"{name}/{version}"]
            return [HistoryEntry(tx_id="e" * 64, action="RegisterModelVersion", status=mv.status)]

    route_registry_to(monkeypatch, FakeClient)
    return held


def invoke(*args: str) -> str:
    """The command's output as a pipe gets it (CliRunner's stdout is no terminal): TAB-separated plain text."""
    result = CliRunner().invoke(app, ["model", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def fields(out: str) -> dict[str, str]:
    """A piped key/value view (``key<TAB>value`` lines) as a dict."""
    return dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)


def rows(out: str) -> list[dict[str, str]]:
    """A piped table (a header line, then one TAB-separated line per record) as dicts."""
    header, *lines = out.splitlines()
    return [dict(zip(header.split("\t"), line.split("\t"), strict=True)) for line in lines if not line.startswith("#")]


@pytest.mark.parametrize("status", sorted(STATUSES))
def test_model_show_prints_the_status_word_and_its_meaning(ledger: dict[str, ModelVersion], status: str) -> None:
    ledger["m/1"] = record(status)
    out = invoke("show", "m", "1")
    word, meaning = STATUSES[status].word, STATUSES[status].meaning
    assert word == status.lower()
    assert fields(out)["status"] == word and fields(out)["meaning"] == meaning
    assert status not in out.replace("RegisterModelVersion", "")  # the stored value is the machine's, not people's
    # `awk -F'\t' '$1 == "storage" {print $2}'` gives the anchored copy's URI alone (docs/operations.md, "Output")
    assert fields(out)["storage"] == POINTER.uri and fields(out)["storage version"] == POINTER.version_id
    # Each organisation of the approval set (here the channel's: the record holds none) with its decision.
    approved = "approved by @ " if status != "REGISTERED" else "not decided yet"
    assert (fields(out)["approval Org1MSP"], fields(out)["approval Org2MSP"]) == ("not decided yet", approved)
    assert fields(out)["policy"] == "no policy" and fields(out)["evaluations"] == "none"


def test_model_show_json_keeps_the_stored_status(ledger: dict[str, ModelVersion]) -> None:
    ledger["m/1"] = record("REGISTERED")
    doc = json.loads(invoke("show", "m", "1", "--json"))
    assert doc["status"] == "REGISTERED" and doc["approvals"] == []
    assert "meaning" not in doc and "recorded on the ledger" not in json.dumps(doc)


def test_model_list_and_history_print_the_word_and_json_the_stored_value(ledger: dict[str, ModelVersion]) -> None:
    ledger["m/1"] = record("DEPLOYED")
    assert rows(invoke("list"))[0]["status"] == "deployed" and "DEPLOYED" not in invoke("list")
    assert json.loads(invoke("list", "--json"))["records"][0]["status"] == "DEPLOYED"
    history = invoke("history", "m", "1")
    assert rows(history)[0]["status"] == "deployed" and "DEPLOYED" not in history
    assert json.loads(invoke("history", "m", "1", "--json"))[0]["status"] == "DEPLOYED"


def test_a_status_this_release_does_not_know_is_printed_as_stored_and_said_unknown(
    ledger: dict[str, ModelVersion],
) -> None:
    ledger["m/1"] = record("SUSPENDED")
    out = invoke("show", "m", "1")
    assert fields(out)["status"] == "SUSPENDED"
    assert "a status this release of modelledger does not know" in fields(out)["meaning"]


def test_a_version_the_ledger_does_not_hold_is_one_plain_line_and_exit_1(ledger: dict[str, ModelVersion]) -> None:
    result = CliRunner().invoke(app, ["model", "show", "m", "9"])
    assert (result.exit_code == 1 and result.exception is None) or isinstance(result.exception, SystemExit)
    assert result.stderr == 'error: not found: model "m" version "9"\n'
    doc = json.loads(CliRunner().invoke(app, ["model", "show", "m", "9", "--json"]).stdout)
    assert doc == {"error": 'not found: model "m" version "9"'}

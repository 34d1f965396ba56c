"""The bridge's MLflow calls: one request each, against a local HTTP server that records them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace as NS
from typing import Any, ClassVar
from urllib.parse import urlparse

import pytest

from modelledger.mlops.bridge.mlflow_api import MlflowApi, is_prompt
from modelledger.mlops.bridge.outbox import Outbox
from modelledger.mlops.bridge.reconciler import reconcile

PROMPT = {"key": "mlflow.prompt.is_prompt", "value": "true"}


class Recorder(BaseHTTPRequestHandler):
    requests: ClassVar[list[tuple[str, str, Any]]] = []
    tags: ClassVar[list[dict[str, str]]] = []

    def _answer(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = urlparse(self.path).path
        self.requests.append(("GET", path, None))
        if path.endswith("/registered-models/get"):
            aliases = [{"alias": "champion", "version": "1"}, {"alias": "challenger", "version": "2"}]
            self._answer({"registered_model": {"name": "m", "tags": self.tags, "aliases": aliases}})
        elif path.endswith("/model-versions/get"):
            self._answer({"model_version": {"name": "m", "version": "1", "status": "READY", "tags": self.tags}})
        else:
            self._answer({})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        self.requests.append(("POST", urlparse(self.path).path, body))
        self._answer({})

    def do_DELETE(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        self.requests.append(("DELETE", urlparse(self.path).path, body))
        self._answer({})

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Recorder.requests, Recorder.tags = [], []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_each_registry_call_is_one_request_where_mlflows_client_makes_two(server: str) -> None:
    from mlflow import MlflowClient

    api = MlflowApi(server)
    mv = api.get_model_version("m", "1")
    api.set_model_version_tag("m", "1", "ledger.status", "anchored")
    assert mv.name == "m" and mv.version == "1"
    assert [(m, p) for m, p, _ in Recorder.requests] == [
        ("GET", "/api/2.0/mlflow/model-versions/get"),
        ("POST", "/api/2.0/mlflow/model-versions/set-tag"),
    ]
    assert Recorder.requests[1][2] == {"name": "m", "version": "1", "key": "ledger.status", "value": "anchored"}

    Recorder.requests.clear()
    MlflowClient(server, server).set_model_version_tag("m", "1", "ledger.status", "anchored")
    # What this module saves: MLflow's client first reads the registered model to refuse prompts.
    assert [p for _, p, _ in Recorder.requests] == [
        "/api/2.0/mlflow/registered-models/get",
        "/api/2.0/mlflow/model-versions/set-tag",
    ]


def test_a_models_aliases_are_read_and_deleted_one_request_each(server: str) -> None:
    api = MlflowApi(server)
    assert api.get_registered_model_aliases("m") == {"champion": "1", "challenger": "2"}
    api.delete_registered_model_alias("m", "champion")
    assert [(m, p) for m, p, _ in Recorder.requests] == [
        ("GET", "/api/2.0/mlflow/registered-models/get"),
        ("DELETE", "/api/2.0/mlflow/registered-models/alias"),
    ]


def test_a_prompt_version_is_told_apart_from_a_model_version(server: str) -> None:
    Recorder.tags = [PROMPT]
    assert is_prompt(MlflowApi(server).get_model_version("m", "1"))
    assert not is_prompt(NS(tags={"ledger.status": "anchored"})) and not is_prompt(NS(tags=None))


class Page(list):  # type: ignore[type-arg]
    token = None


class Registry:
    def search_model_versions(self, max_results: int, page_token: str | None = None) -> Page:
        return Page(
            [
                NS(name="model", version="1", status="READY", tags={}),
                NS(name="prompt", version="1", status="READY", tags={"mlflow.prompt.is_prompt": "true"}),
                NS(name="model", version="2", status="PENDING_REGISTRATION", tags={}),
            ]
        )


class EmptyLedger:
    def list_model_versions(self, prefix: str, size: int, bookmark: str) -> Any:
        return NS(records=[], bookmark="", fetched=0)


def test_the_reconciler_enqueues_model_versions_but_not_prompts_or_versions_being_created(tmp_path: Any) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    report = reconcile(Registry(), EmptyLedger(), outbox)  # type: ignore[arg-type]
    assert report.scanned == 3 and report.enqueued == ["model/1"]
    assert outbox.get("prompt", "1") is None and outbox.get("model", "2") is None


class LedgerOfModel1:
    def list_model_versions(self, prefix: str, size: int, bookmark: str) -> Any:
        return NS(records=[NS(name="model", version="1", registered_tx_id="tx-1")], bookmark="", fetched=1)


def test_the_reconciler_reports_a_conflict_at_every_scan_and_leaves_it_alone(tmp_path: Any) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    outbox.enqueue("model", "1", "webhook")
    outbox.conflict(outbox.lease("w", 60), "the ledger's record of model/1 ... does not match")

    class Tagged(Registry):  # someone tagged it anchored by hand: the conflict is reported all the same
        def search_model_versions(self, max_results: int, page_token: str | None = None) -> Page:
            page = super().search_model_versions(max_results, page_token)
            page[0].tags["ledger.status"] = "anchored"
            return page

    for registry in (Registry(), Registry(), Tagged()):
        report = reconcile(registry, LedgerOfModel1(), outbox)  # type: ignore[arg-type]
        assert report.conflicts == ["model/1"] and report.enqueued == [] and report.revived == []
        assert outbox.get("model", "1").state == "conflict"


class TaggedAnchored(Registry):
    """model/1 tagged anchored, with ledger.tx_id tx-1: by this bridge, or by anyone with MLflow write access."""

    def search_model_versions(self, max_results: int, page_token: str | None = None) -> Page:
        page = super().search_model_versions(max_results, page_token)
        page[0].tags.update({"ledger.status": "anchored", "ledger.tx_id": "tx-1"})
        return page


def test_a_version_tagged_anchored_by_someone_else_is_checked_by_the_worker(tmp_path: Any) -> None:
    # A record planted on the ledger and a version created with the anchored tags, its webhook lost.
    outbox = Outbox(tmp_path / "outbox.db")
    report = reconcile(TaggedAnchored(), LedgerOfModel1(), outbox)  # type: ignore[arg-type]
    assert report.enqueued == ["model/1"] and outbox.get("model", "1").state == "pending"


def test_a_version_this_bridge_anchored_is_left_alone_unless_its_transaction_differs(tmp_path: Any) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    outbox.enqueue("model", "1", "webhook")
    outbox.complete(outbox.lease("w", 60), tx_id="tx-1", block=3)
    report = reconcile(TaggedAnchored(), LedgerOfModel1(), outbox)  # type: ignore[arg-type]
    assert report.enqueued == [] and report.revived == [] and outbox.get("model", "1").state == "done"

    class OtherTransaction(LedgerOfModel1):  # the ledger's record is not the one this bridge's job finished
        def list_model_versions(self, prefix: str, size: int, bookmark: str) -> Any:
            return NS(records=[NS(name="model", version="1", registered_tx_id="tx-2")], bookmark="", fetched=1)

    outbox.clock = lambda: 9e9  # (a later scan)
    report = reconcile(TaggedAnchored(), OtherTransaction(), outbox)  # type: ignore[arg-type]
    assert report.revived == ["model/1"] and outbox.get("model", "1").state == "pending"


@pytest.mark.parametrize("status", ["anchored", "approved", "rejected", "deployed", "revoked"])
def test_a_version_whose_tag_follows_the_ledger_counts_as_anchored(tmp_path: Any, status: str) -> None:
    class Mirrored(TaggedAnchored):  # after anchoring, the ledger follower wrote the ledger's status
        def search_model_versions(self, max_results: int, page_token: str | None = None) -> Page:
            page = super().search_model_versions(max_results, page_token)
            page[0].tags["ledger.status"] = status
            return page

    outbox = Outbox(tmp_path / "outbox.db")
    outbox.enqueue("model", "1", "webhook")
    outbox.complete(outbox.lease("w", 60), tx_id="tx-1", block=3)
    report = reconcile(Mirrored(), LedgerOfModel1(), outbox)  # type: ignore[arg-type]
    assert report.enqueued == [] and report.revived == [] and outbox.get("model", "1").state == "done"

"""The receiver over a real loopback HTTP server: every answer, and what reaches the outbox."""

from __future__ import annotations

import http.client
import http.server
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from modelledger.mlops.bridge.mlflow_api import registry_has_version
from modelledger.mlops.bridge.mlflow_credentials import MlflowCredentials
from modelledger.mlops.bridge.outbox import Outbox
from modelledger.mlops.bridge.receiver import Receiver, make_server, serve_in_thread
from modelledger.mlops.bridge.webhooks import sign

SECRET = "receiver-secret"
KNOWN = {("fraud", "1"), ("fraud", "2")}


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "outbox.db")


@pytest.fixture
def woken() -> list[int]:
    return []


@pytest.fixture
def asked() -> list[tuple[str, str]]:
    """The versions the receiver asked the registry about."""
    return []


@pytest.fixture
def port(outbox: Outbox, woken: list[int], asked: list[tuple[str, str]]) -> Iterator[int]:
    def exists(name: str, version: str) -> bool | None:
        asked.append((name, version))
        return None if name == "unknowable" else (name, version) in KNOWN

    receiver = Receiver(SECRET, outbox, exists, max_body=4096, freshness=300, on_accept=lambda: woken.append(1))
    server = make_server(receiver, "127.0.0.1", 0)
    serve_in_thread(server)
    yield server.server_address[1]
    server.shutdown()


def post(port: int, body: bytes, headers: dict[str, str], path: str = "/webhooks/mlflow") -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("POST", path, body=body, headers=headers)
    resp = conn.getresponse()
    return resp.status, json.loads(resp.read() or b"{}")


def signed(name: str, version: str, delivery_id: str, event: tuple[str, str] = ("model_version", "created")):
    body = json.dumps({"entity": event[0], "action": event[1], "data": {"name": name, "version": version}}).encode()
    ts = str(int(time.time()))
    return body, {
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": ts,
        "X-MLflow-Signature": sign(SECRET, delivery_id, ts, body),
        "Content-Type": "application/json",
    }


def test_a_valid_delivery_is_committed_then_acknowledged(port: int, outbox: Outbox, woken: list[int]) -> None:
    status, body = post(port, *signed("fraud", "1", "d-1"))
    assert (status, body) == (202, {"status": "accepted", "job": "fraud/1"})
    assert outbox.get("fraud", "1").state == "pending" and outbox.delivery_seen("d-1")
    assert woken == [1]  # the workers were woken for it


def test_a_replayed_delivery_is_refused_and_changes_nothing(port: int, outbox: Outbox) -> None:
    body, headers = signed("fraud", "1", "d-1")
    assert post(port, body, headers)[0] == 202
    status, answer = post(port, body, headers)
    assert status == 409 and "duplicate delivery id" in answer["error"]
    assert len(outbox.jobs()) == 1


def test_a_version_the_registry_lacks_is_refused(port: int, outbox: Outbox, woken: list[int]) -> None:
    status, answer = post(port, *signed("example_model", "1", "d-x"))
    assert status == 422 and answer["error"] == "model version example_model/1 is not in the registry"
    assert outbox.jobs() == [] and not outbox.delivery_seen("d-x") and woken == []


@pytest.mark.parametrize(
    ("name", "version", "error"),
    [
        ("team/fraud", "1", "data.name: must not contain '/' or ':'"),
        ("fraud:v2", "1", "data.name: must not contain '/' or ':'"),
        ("fraud", "1234567890123456789", "data.version: must be a positive decimal integer without leading zeros"),
        ("fraud", "12345678901", "data.version: must be a positive decimal integer without leading zeros"),
        ("fraud\u200b", "1", "data.name: must not contain Unicode format characters (Cf"),
        ("\u202efraud", "1", "data.name: must not contain Unicode format characters (Cf"),
        ("fraud ", "1", "data.name: must not start or end with a space"),
        ("\u00a0fraud", "1", "data.name: must not start or end with a space"),
    ],
)
def test_a_name_or_version_the_ledger_refuses_is_refused_at_once(
    port: int, outbox: Outbox, woken: list[int], asked: list[tuple[str, str]], name: str, version: str, error: str
) -> None:
    status, answer = post(port, *signed(name, version, "d-n"))
    assert status == 400 and answer["error"].startswith(error), answer
    assert answer["error"].endswith("(the ledger's rule: this version cannot be anchored)")
    # Nothing enqueued, the delivery not recorded, no worker woken, the registry not even asked.
    assert outbox.jobs() == [] and not outbox.delivery_seen("d-n") and woken == [] and asked == []


def test_when_the_registry_cannot_be_asked_the_delivery_is_kept(port: int, outbox: Outbox) -> None:
    assert post(port, *signed("unknowable", "4", "d-u"))[0] == 202
    assert outbox.get("unknowable", "4") is not None


def test_tag_events_are_acknowledged_and_ignored(port: int, outbox: Outbox) -> None:
    status, answer = post(port, *signed("fraud", "2", "d-t", ("model_version_tag", "set")))
    assert (status, answer["status"]) == (202, "ignored") and outbox.jobs() == []


def test_forged_and_stale_deliveries_are_refused(port: int, outbox: Outbox) -> None:
    body, headers = signed("fraud", "1", "d-f")
    assert (
        post(port, body, {**headers, "X-MLflow-Signature": sign("wrong", "d-f", headers["X-MLflow-Timestamp"], body)})[
            0
        ]
        == 401
    )
    old = str(int(time.time()) - 3600)
    stale = {**headers, "X-MLflow-Timestamp": old, "X-MLflow-Signature": sign(SECRET, "d-f", old, body)}
    status, answer = post(port, body, stale)
    assert status == 400 and answer["error"].startswith("stale delivery")
    assert outbox.jobs() == []


def test_oversized_unsized_and_misdirected_requests_are_refused(port: int, outbox: Outbox) -> None:
    body, headers = signed("fraud", "1", "d-big")
    big = body + b" " * 5000
    assert post(port, big, headers)[0] == 413
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.putrequest("POST", "/webhooks/mlflow")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    conn.send(b"0\r\n\r\n")
    assert conn.getresponse().status == 411
    assert post(port, body, headers, path="/other")[0] == 404
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("PUT", "/webhooks/mlflow", body=b"{}")
    assert conn.getresponse().status == 405
    assert outbox.jobs() == []


def test_health_reports_the_outbox(port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/health")
    resp = conn.getresponse()
    assert resp.status == 200 and json.loads(resp.read())["outbox"]["pending"] == 0


class _Registry(http.server.BaseHTTPRequestHandler):
    """MLflow 3.17's answers to a user who is not an admin: 403 for a version of a model that does not exist."""

    models: ClassVar[dict[str, set[str]]] = {"m1": {"1"}}

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        if url.path.endswith("/model-versions/get"):
            if q["name"] not in self.models:
                self._answer(403, b"Permission denied")
            elif q["version"] in self.models[q["name"]]:
                self._answer(200, b"{}")
            else:
                self._answer(404, b'{"error_code": "RESOURCE_DOES_NOT_EXIST"}')
        elif url.path.endswith("/registered-models/get"):
            self._answer(200, b"{}") if q["name"] in self.models else self._answer(404, b"{}")
        else:
            self._answer(500, b"")

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_the_registry_check_tells_a_missing_model_from_a_refusal_for_a_user_who_is_not_an_admin() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    uri, user = f"http://127.0.0.1:{server.server_address[1]}", MlflowCredentials("bridge", "pw")
    try:
        assert registry_has_version(uri, "m1", "1", user) is True
        assert registry_has_version(uri, "m1", "2", user) is False
        assert registry_has_version(uri, "example_model", "1", user) is False  # 403, then the model: 404
    finally:
        server.shutdown()
    assert registry_has_version(uri, "m1", "1", user, timeout=0.5) is None  # nobody answers: cannot tell


NAME_VECTORS = Path(__file__).resolve().parents[2] / "chaincode" / "registry" / "testdata" / "name_vectors.json"


def test_the_receiver_refuses_exactly_what_the_chaincode_refuses(tmp_path: Path) -> None:
    """Every name and version of the vectors the chaincode's Go test registers: refused by the chaincode, refused
    here with its rule before the registry is asked or anything is enqueued (so before any download); accepted by
    the chaincode, accepted here."""
    vectors = json.loads(NAME_VECTORS.read_text(encoding="utf-8"))
    cases = [(c["name"], "1", "data.name", c["error"]) for c in vectors["names"]]
    cases += [("fraud", c["version"], "data.version", c["error"]) for c in vectors["versions"]]
    assert len(cases) >= 55 and sum(1 for c in cases if c[3]) >= 30
    outbox = Outbox(tmp_path / "outbox.db")
    asked: list[tuple[str, str]] = []
    receiver = Receiver(SECRET, outbox, lambda n, v: asked.append((n, v)) or True, max_body=4096, freshness=300)
    enqueued: set[tuple[str, str]] = set()
    for i, (name, version, field, error) in enumerate(cases):
        body, headers = signed(name, version, f"d-{i}")
        answer = receiver.handle(headers, body)
        if error:
            assert answer.status == 400, (name, version, answer)
            assert answer.body["error"] == f"{field}: {error} (the ledger's rule: this version cannot be anchored)"
            assert asked == [] and not outbox.delivery_seen(f"d-{i}")
        else:
            assert (answer.status, answer.body["status"]) == (202, "accepted"), (name, version, answer)
            assert asked.pop() == (name, version) and outbox.get(name, version) is not None
            enqueued.add((name, version))
        assert {(j.name, j.version) for j in outbox.jobs()} == enqueued
